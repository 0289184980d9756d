#!/usr/bin/env python3
"""The project's byte-level BPE tokenizer against Hugging Face tokenizers (the Rust library)
on the committed Qwen tokenizer.json.

The corpus: the 668 strings of tests/data/tokenizers/qwen3/golden.jsonl and 12,000 strings
drawn from a seeded generator (below) that mixes ASCII prose, digits, contractions in every
case, runs of every kind of whitespace and line break, code and LaTeX, letters and marks of
many scripts (composed and decomposed, so NFC has work to do), emoji sequences, control
characters, the Qwen special and added tokens, their look-alikes and fragments.

Checked through the `deepsearch tokenize` command, in one process per mode:
* encode with special tokens recognised (tokenizers' default) and as plain text
  (tokenizers' `encode_special_tokens = True`): the ids are equal;
* decode of those ids, keeping and skipping special tokens: the text is equal;
* decode of 3,000 random id sequences (any vocabulary or added token, so byte sequences
  that are not UTF-8 on their own): equal to tokenizers' lossy decode.

Random code points come only from characters assigned by Unicode 3.2 (Python's
unicodedata.ucd_3_2_0), so the Unicode versions of the libraries involved (PCRE2's 14,
utf8proc's 15, tokenizers' regex and normalisation tables) cannot disagree on them; emoji
and scripts beyond that come from fixed lists of long-assigned characters.
"""

import json
import os
import random
import unicodedata

from tokenizers import Tokenizer

import reference_common as rc

SEED = 20261206
RANDOM_STRINGS = 12000
RANDOM_DECODES = 3000
GOLDEN = os.path.join(rc.REPO, "tests", "data", "tokenizers", "qwen3", "golden.jsonl")

WORDS = ("the quick brown fox jumps over lazy dog Let's compute answer step solve equation "
         "integer prime sum product remainder Therefore hence thus boxed think").split()
CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"]
SPACES = [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", "\r", " \n", "\n ", "\u00a0", "\u3000",
          "\u2009", "\u200b", "\u2028", "\u0085", "\ufeff", "\x0b", "\x0c", "  \n\n  ", "\t\t\n"]
CODE = ["def f(x):\n    return x**2", "int main() { return 0; }", "SELECT * FROM t WHERE a=1;",
        '{"key": [1, 2, 3]}', "for i in range(10):\n\tprint(i)", "fn main() -> Result<(), E> {}",
        "#include <vector>", "x = y if z else w  # comment", "a->b; c::d; e && f || !g"]
LATEX = [r"\boxed{42}", r"\frac{1}{2}", r"\sqrt{x^2+y^2}", r"$\sum_{i=1}^{n} i^2$",
         r"\left(\begin{matrix}1&0\\0&1\end{matrix}\right)", r"\int_0^\infty e^{-x}\,dx"]
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>", "<tool_call>",
           "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|vision_start|>", "<|box_end|>",
           "<tool_response>", "<|repo_name|>"]
LOOKALIKES = ["<|im_", "im_end|>", "<|im_end", "< |im_end|>", "<|IM_END|>", "<think", "think>",
              "<<think>>", "</think", "<|endoftext|", "|>", "<|"]
EMOJI = ["😀", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷", "🇯🇵", "1️⃣", "❤️", "🏳️‍🌈", "🧑🏿‍💻", "🤖", "🎉", "✅"]
SCRIPTS = ["数学是科学的皇后", "こんにちは世界", "カタカナ", "한국어 문장", "Привет, мир",
           "Γειά σου κόσμε", "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया", "สวัสดีชาวโลก",
           "Tiếng Việt có dấu", "ąęłńóśźż", "ſ'S'ſ", "ﬁ ﬂ", "Å Å Å", "e\u0301 é", "\u1100\u1161\u11a8",
           "Ａ１２３", "①②③", "¼½¾", "x²³", "٣٤٥", "𝐀𝐁𝐂", "𐍈𐌰"]


def assigned_3_2(lo, hi):
    return [chr(c) for c in range(lo, hi)
            if unicodedata.ucd_3_2_0.category(chr(c)) not in ("Cn", "Cs", "Co")]


# Code points assigned by Unicode 3.2: Latin and its marks, Greek, Cyrillic, Hebrew, Arabic,
# Devanagari, Thai, Hangul Jamo, general punctuation, symbols, CJK, Hangul syllables, full width.
POOL = (assigned_3_2(0x20, 0x250) + assigned_3_2(0x300, 0x370) + assigned_3_2(0x370, 0x530)
        + assigned_3_2(0x590, 0x700) + assigned_3_2(0x900, 0x980) + assigned_3_2(0xE00, 0xE80)
        + assigned_3_2(0x1100, 0x1200) + assigned_3_2(0x2000, 0x2070) + assigned_3_2(0x2100, 0x2400)
        + assigned_3_2(0x3000, 0x3100) + assigned_3_2(0x4E00, 0x4F00) + assigned_3_2(0xAC00, 0xAD00)
        + assigned_3_2(0xFF00, 0xFFF0))
CONTROLS = [chr(c) for c in list(range(0, 32)) + [127]]


def piece(rng):
    kind = rng.randrange(14)
    if kind == 0:
        word = rng.choice(WORDS)
        return rng.choice([word, word.upper(), word.capitalize()])
    if kind == 1:
        c = rng.choice(CONTRACTIONS)
        return rng.choice(WORDS) + rng.choice([c, c.upper(), c[:2].upper() + c[2:]])
    if kind == 2:
        return "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 25)))
    if kind == 3:
        return rng.choice(SPACES) * rng.randint(1, 3)
    if kind == 4:
        return rng.choice(CODE)
    if kind == 5:
        return rng.choice(LATEX)
    if kind == 6:
        return rng.choice(SPECIAL)
    if kind == 7:
        return rng.choice(LOOKALIKES)
    if kind == 8:
        return "".join(rng.choice(EMOJI) for _ in range(rng.randint(1, 3)))
    if kind == 9:
        return rng.choice(SCRIPTS)
    if kind == 10:
        return "".join(rng.choice(POOL) for _ in range(rng.randint(1, 12)))
    if kind == 11:
        # A letter with combining marks, in decomposed order (NFC composes what it can).
        return rng.choice("aeiouAEIOUnNcCsSzZ") + "".join(
            chr(rng.randrange(0x300, 0x370)) for _ in range(rng.randint(1, 3)))
    if kind == 12:
        return rng.choice(CONTROLS)
    return rng.choice(".,;:!?()[]{}+-*/=<>_'\"`~@#$%^&|\\")


def corpus():
    texts = []
    with open(GOLDEN, encoding="utf-8") as f:
        texts += [json.loads(line)["text"] for line in f]
    rng = random.Random(SEED)
    seen = set(texts)
    target = len(texts) + RANDOM_STRINGS
    while len(texts) < target:
        parts = [piece(rng) for _ in range(rng.randint(1, 10))]
        text = "".join(p + (rng.choice(["", " "]) if rng.random() < 0.5 else "") for p in parts)
        if text not in seen:
            seen.add(text)
            texts.append(text)
    return texts


class TokenizerParityTest(rc.ScratchTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cli = rc.binary("DEEPSEARCH_CLI")
        cls.texts = corpus()
        cls.hf = Tokenizer.from_file(rc.QWEN_TOKENIZER)
        cls.hf_plain = Tokenizer.from_file(rc.QWEN_TOKENIZER)
        cls.hf_plain.encode_special_tokens = True

    def ours(self, lines, *flags):
        done = rc.run([self.cli, "tokenize", "--tokenizer", rc.QWEN_TOKENIZER, *flags],
                      stdin="".join(line + "\n" for line in lines))
        # Lines end at "\n" only: the texts hold U+2028, U+0085 and other line breaks.
        out = [json.loads(line) for line in done.stdout.split("\n")[:-1]]
        self.assertEqual(len(out), len(lines))
        return out

    def compare(self, what, inputs, ours, theirs):
        wrong = [(i, o, t) for i, (o, t) in enumerate(zip(ours, theirs)) if o != t]
        for i, o, t in wrong[:5]:
            print(f"{what}: input {inputs[i]!r}\n  ours   {o!r}\n  theirs {t!r}")
        self.assertEqual(len(wrong), 0, f"{what}: {len(wrong)} of {len(inputs)} differ")
        print(f"{what}: {len(inputs)} equal")

    def test_corpus_size(self):
        self.assertGreaterEqual(len(self.texts), 10000)
        self.assertTrue(any("\n" in t for t in self.texts))
        self.assertTrue(any("<|im_end|>" in t for t in self.texts))

    def test_encode_and_decode(self):
        lines = [json.dumps(t) for t in self.texts]
        for flags, hf, name in ((["--allow-special"], self.hf, "special tokens recognised"),
                                ([], self.hf_plain, "special tokens as text")):
            theirs = [e.ids for e in hf.encode_batch(self.texts, add_special_tokens=False)]
            ours = self.ours(lines, "--json", *flags)
            self.compare(f"encode, {name}", self.texts, ours, theirs)
            id_lines = [json.dumps(ids) for ids in theirs]
            for skip in (False, True):
                decoded = self.hf.decode_batch(theirs, skip_special_tokens=skip)
                ours_text = self.ours(id_lines, "--decode", *(["--skip-special"] if skip else []))
                self.compare(f"decode ({name}, skip_special={skip})", id_lines, ours_text, decoded)

    def test_decode_random_ids(self):
        rng = random.Random(SEED + 1)
        vocab = self.hf.get_vocab_size(with_added_tokens=True)
        sequences = [[rng.randrange(vocab) for _ in range(rng.randint(1, 16))]
                     for _ in range(RANDOM_DECODES)]
        # Byte-level pieces that split UTF-8 sequences: the single-byte tokens 0..255.
        sequences += [[rng.randrange(256) for _ in range(rng.randint(1, 8))] for _ in range(500)]
        lines = [json.dumps(s) for s in sequences]
        for skip in (False, True):
            theirs = self.hf.decode_batch(sequences, skip_special_tokens=skip)
            ours = self.ours(lines, "--decode", *(["--skip-special"] if skip else []))
            self.compare(f"decode of random ids (skip_special={skip})", lines, ours, theirs)


if __name__ == "__main__":
    rc.main()
