#!/usr/bin/env python3
"""Writes strict_golden.jsonl: responses and ground truths graded by reference_grader.py.

  python3 tests/data/grader/make_strict_golden.py > tests/data/grader/strict_golden.jsonl

Each line is {"case", "response", "answer", "correct", "pred", "gt"}: "case" names what the
record exercises, the last three are the oracle's verdict and normalised strings. The cases
are hand-made groups, one per normalisation rule and per extraction corner, then random
adversarial strings from a fixed seed. The output is deterministic.
"""

import json
import random
import sys
import unicodedata

import reference_grader as ref

SEED = 20251125
records = []


def add(case, response, answer):
    correct, pred, gt = ref.grade(response, answer)
    records.append({"case": case, "response": response, "answer": answer,
                    "correct": correct, "pred": pred, "gt": gt})


def boxed(inner, before="Adding the parts gives "):
    return before + "\\boxed{" + inner + "}"


def add_box(case, inner, answers):
    """One record per ground truth for a response whose last box holds `inner`."""
    for answer in answers:
        add(case, boxed(inner), answer)


# ---- 3b: each literal rewrite, in several contexts ------------------------------------------
for old, new in ref.REWRITES:
    for context in ("{r}", "7{r}", "{r}7", "x{r}{r}y", "\\text{{{r}}}9", "$1{r}2$"):
        inner = context.format(r=old)
        add_box("rewrite " + json.dumps(old), inner, [inner, inner.replace(old, new)])
add_box("rewrite order: an before a", "an a b", ["b", "ab", "anab"])
add_box("rewrite: 'a b c' -> 'bc'", "a b c", ["bc", "a b c", "abc"])
add_box("rewrite: a at the end", "pizza ", ["pizz", "pizza"])
add_box("rewrite: dollar sign then space", "\\$ 5", ["5", "$5"])
add_box("rewrite: .$ then $ unwrap", "$5.$", ["5", "5."])
add_box("rewrite: mbox becomes text, then unwrapped", "5\\mbox{ apples}", ["5apples", "5"])
add_box("rewrite: \\text{and} in a list", "1\\text{ and }2", ["1,2", "12"])
add_box("rewrite: ,\\text{and}", "1, \\text{and} 2", ["1,2", "12"])
add_box("rewrite: \\text{m} unit", "5\\text{m}", ["5", "5m"])
add_box("rewrite: \\text{m}^2 unit", "5\\text{m}^2", ["5", "5^2"])
add_box("rewrite: \\text{m}^3 unit", "5 \\text{m}^3", ["5", "5^3"])

# ---- 3c: each deletion ----------------------------------------------------------------------
for literal in ref.DELETIONS:
    for context in ("12{d}", "{d}12", "1{d}2{d}"):
        inner = context.format(d=literal)
        add_box("delete " + json.dumps(literal), inner, [inner, inner.replace(literal, "")])
add_box("delete: sue inside a word", "issue", ["is", "issue"])
add_box("delete: cm inside a word", "acme", ["ae", "acme"])
add_box("delete: deleted word makes a new one", "squsquareare", ["", "square"])
add_box("delete: km before m", "5km", ["5", "5k"])
add_box("delete: units word", "12 square units", ["12"])
add_box("delete: degrees symbol", "90^\\circ", ["90", "90^\\circ"])
add_box("delete: degrees braced", "90^{\\circ}", ["90"])
add_box("delete: \\text{}^2 after \\text{m}", "4\\text{m}^2", ["4"])
add_box("delete: quotes", '"yes"', ["yes"])
add_box("delete: thousands {,}", "1{,}000", ["1000", "1,000"])
add_box("delete: thousands ,\\!", "1,\\!000", ["1000"])
add_box("delete: \\; thin space", "1\\;000", ["1000"])
add_box("delete: \\ldots and \\dots", "1,2,\\ldots,10\\dots", ["1210", "1,2,,10"])
add_box("delete: \\mathrm{th}", "5\\mathrm{th}", ["5"])
add_box("delete: \\text{s}", "3\\text{s}", ["3"])
add_box("delete: \\text{.}", "3\\text{.}", ["3"])
add_box("delete: \\text{ with newline s}", "3\\text{\ns}", ["3"])
add_box("delete: \\text{ with newline}", "3\\text{\n}", ["3"])

# ---- 3d: $...$ ------------------------------------------------------------------------------
for inner, answers in (
    ("$5$", ["5"]),
    ("the value is $5$", ["5"]),
    ("$x$ and $5$", ["x", "5"]),
    ("$5", ["5"]),
    ("5$", ["5"]),
    ("$$5$$", ["5"]),
    ("$$5$", ["5"]),
    ("a$b$c$d$e", ["b", "bd"]),
    ("$1$\n$2$", ["1\n2", "12"]),
    ("$1$ and $3$\n$2$ or $4$", ["1\n2", "1\n3"]),
    ("$1\n2$", ["1\n2"]),
    ("$1\n$2$", ["1\n2", "1"]),
    ("$\n$", [""]),
    ("$$", [""]),
    ("$", [""]),
    ("$\\frac{1}{2}$", ["\\frac12", "1/2"]),
    ("$x = 5$", ["5"]),
    ("\\$5", ["5"]),
    ("\\$\\$5", ["5"]),
    ("$5.$", ["5"]),
    ("$5.$ dollars", ["5"]),
    ("$1$\r$2$", ["1", "1\r2"]),
    ("$1$\x85$2$", ["1"]),
    ("$1$\u2028$2$", ["1"]),
    ("$1$\u2029$2$", ["1"]),
    ("$1$\x0b$2$\x0c$3$", ["1"]),
    ("$\u00e9$", ["\u00e9"]),
    ("$\U0001F600$ $2$", ["\U0001F600"]),
):
    add_box("dollars", inner, answers)
add("dollars: ground truth in dollars", boxed("5"), "$5$")
add("dollars: ground truth with text around", boxed("5"), "so $x=5$ here")

# ---- 3d: \text{}, \textbf{}, \overline{}, \boxed{} -------------------------------------------
for inner, answers in (
    ("\\text{5}", ["5"]),
    ("\\text{5} \\text{apples}", ["5apples"]),
    ("\\text{{5}}", ["{5}", "5"]),
    ("\\text{a{b}c}", ["a{bc}", "abc"]),
    ("\\text{5\n}", ["5"]),
    ("\\text{\n5}", ["5", "\n5"]),
    ("\\text{1\n2}", ["1\n2"]),
    ("\\text{}", [""]),
    ("\\text{", [""]),
    ("\\text{5", ["\\text{5"]),
    ("\\textbf{7}", ["7"]),
    ("\\textbf{\\text{7}}", ["7", "7}"]),
    ("\\text{\\textbf{7}}", ["7"]),
    ("\\textbf{a}\\textbf{b}", ["ab"]),
    ("\\textbf{7\n}", ["7"]),
    ("\\overline{3}", ["3"]),
    ("0.\\overline{3}", ["0.3", "0.\\overline{3}"]),
    ("0.\\overline{142857}", ["0.142857"]),
    ("\\overline{AB}", ["AB"]),
    ("\\overline{\\text{AB}}", ["AB}", "AB"]),
    ("\\boxed{5}", ["5"]),
    ("\\boxed{\\boxed{5}}", ["5"]),
    ("\\boxed{5}+\\boxed{6}", ["5}+\\boxed{6", "5+6"]),
    ("\\boxed{5\n}", ["5"]),
    ("\\boxed{1}\n\\boxed{2}", ["1\n2"]),
    ("\\textit{5}", ["\\textit{5}", "5"]),
    ("\\mathrm{5}", ["\\mathrm{5}", "5"]),
    ("\\mathbf{5}", ["\\mathbf{5}", "5"]),
    ("\\text{ 5 }", ["5"]),
    ("\\mbox{5}", ["5"]),
    ("\\text{(A)}", ["(A)", "A"]),
    ("\\textbf{(C)}\\ 12", ["(C)12", "C"]),
):
    add_box("unwrap", inner, answers)
add("unwrap: ground truth boxed", boxed("5"), "\\boxed{5}")
add("unwrap: ground truth boxed twice on a line", boxed("5"), "\\boxed{1} or \\boxed{5}")

# ---- 3d: \frac and \sqrt shorthands ----------------------------------------------------------
for inner, answers in (
    ("\\frac12", ["\\frac{1}{2}", "\\frac12"]),
    ("\\frac123", ["\\frac{1}{2}3", "\\frac{1}{23}"]),
    ("\\frac{1}{2}", ["\\frac12", "\\frac{1}{2}"]),
    ("\\frac{12}{34}", ["\\frac{12}{34}", "\\frac1234"]),
    ("\\fracab", ["\\frac{a}{b}"]),
    ("\\fracabc", ["\\frac{a}{b}c"]),
    ("\\frac1{2}", ["\\frac{1}{{}2}", "\\frac12"]),
    ("\\frac{1}2", ["\\frac{1}2"]),
    ("\\frac 1 2", ["\\frac{1}{2}"]),
    ("\\frac\n12", ["\\frac{\n}{1}2"]),
    ("\\frac1\n2", ["\\frac1\n2"]),
    ("\\frac12\\frac34", ["\\frac{1}{2}\\frac{3}{4}"]),
    ("\\dfrac12", ["\\dfrac{1}{2}", "\\frac12"]),
    ("\\tfrac12", ["\\tfrac{1}{2}"]),
    ("frac12", ["frac{1}{2}"]),
    ("\\frac", ["\\frac"]),
    ("\\frac1", ["\\frac1"]),
    ("\\fracfrac12", ["\\frac{f}{r}ac12", "\\frac{f}{r}ac{1}{2}"]),
    ("\\frac\\pi2", ["\\frac{\\}{p}i2"]),
    ("-\\frac12", ["-\\frac{1}{2}"]),
    ("\\sqrt2", ["\\sqrt{2}"]),
    ("\\sqrt23", ["\\sqrt{2}3"]),
    ("\\sqrt{2}", ["\\sqrt2", "\\sqrt{2}"]),
    ("2\\sqrt3", ["2\\sqrt{3}"]),
    ("\\sqrt\n2", ["\\sqrt{\n}2"]),
    ("\\sqrt[3]{2}", ["\\sqrt{[}3]{2}"]),
    ("\\sqrt", ["\\sqrt"]),
    ("\\sqrtsqrt2", ["\\sqrt{s}qrt{2}"]),
    ("\\frac{\\sqrt3}2", ["\\frac{\\sqrt{3}}2"]),
    ("\\frac\\sqrt32", ["\\frac{\\}{s}qrt{3}2"]),
    ("\\frac{1}{2}\u00e9", ["\\frac{1}{2}\u00e9"]),
    ("\\frac\u00e9\u00e8", ["\\frac{\u00e9}{\u00e8}"]),
    ("\\frac1\U0001F600", ["\\frac{1}{\U0001F600}"]),
):
    add_box("frac/sqrt", inner, answers)

# ---- 3f: commas in digit strings -------------------------------------------------------------
for inner, answers in (
    ("1,000", ["1000", "1,000"]),
    ("1,000,000", ["1000000"]),
    ("1,2,3", ["123", "1,2,3"]),
    (",", [",", ""]),
    (",,", [",,", ""]),
    ("1,", ["1"]),
    (",1", ["1"]),
    ("1,000.5", ["1000.5", "1,000.5"]),
    ("-1,000", ["-1000", "-1,000"]),
    ("1, 000", ["1000"]),
    ("(1,2)", ["(1,2)", "(12)"]),
    ("1,a", ["1a", "1,a"]),
    ("\uff11,\uff10\uff10\uff10", ["\uff11\uff10\uff10\uff10", "1000"]),
    ("\u00b2,\u00b3", ["\u00b2\u00b3"]),
    ("1\uff0c000", ["1\uff0c000", "1000"]),
    ("\u0661,\u0662", ["\u0661\u0662", "12"]),
    ("1,\u00bd", ["1,\u00bd", "1\u00bd"]),
    ("1,\u2155", ["1,\u2155"]),
    ("1,\u2160", ["1,\u2160"]),
    ("1,\u3007", ["1,\u3007"]),
    ("1,\u4e00", ["1,\u4e00"]),
    ("1,\u0f33", ["1,\u0f33"]),
    ("\u2460,\u2461", ["\u2460\u2461"]),
    ("1,0\n", ["10"]),
    ("\n1,0", ["10"]),
    ("1,\n0", ["1,\n0"]),
    ("1,0 ", ["10"]),
    ("1,0\u3000", ["1,0"]),
):
    add_box("commas", inner, answers)
add("commas: ground truth with commas", boxed("1000"), "1,000")
add("commas: ground truth 1,2,3", boxed("123"), "1, 2, 3")

# ---- 3a: the last '=' -----------------------------------------------------------------------
for inner, answers in (
    ("x=5", ["5", "x=5"]),
    ("x = 5", ["5"]),
    ("a=b=3", ["3"]),
    ("5=", [""]),
    ("=5", ["5"]),
    ("==", [""]),
    ("x=\\frac12", ["\\frac{1}{2}"]),
    ("f(x)=x^2", ["x^2"]),
    ("x=5,y=6", ["6", "5,6"]),
    ("x\\geq5", ["x\\geq5"]),
    ("x\\neq5", ["x\\neq5"]),
    ("x\\le 5", ["x\\le5"]),
    ("$x=5$", ["5"]),
    ("\\text{x=5}", ["5"]),
    ("5 \\text{ (since } x=5)", ["5)"]),
    ("\u2260 5", ["\u22605"]),
):
    add_box("equals", inner, answers)
add("equals: ground truth with '='", boxed("5"), "y = 5")
add("equals: ground truth with two '='", boxed("5"), "a = b = 5")

# ---- units ----------------------------------------------------------------------------------
for inner, answers in (
    ("5 cm", ["5"]),
    ("5\\text{ cm}", ["5"]),
    ("5\\mbox{ cm}", ["5"]),
    ("5 \\text{ meters}", ["5"]),
    ("5\\text{ m}", ["5", "5m"]),
    ("5 \\text{m}^2", ["5"]),
    ("5 mph", ["5"]),
    ("10 km", ["10"]),
    ("3 square units", ["3"]),
    ("12 inches", ["12"]),
    ("\\$5", ["5"]),
    ("5 dollars", ["5"]),
    ("50 cents", ["50"]),
    ("2 hours", ["2"]),
    ("30 minutes", ["30"]),
    ("3 feet", ["3"]),
    ("7 points", ["7"]),
    ("4 students", ["4"]),
    ("9 ways", ["9"]),
    ("5 kg", ["5kg", "5"]),
    ("5 seconds", ["5seconds", "5"]),
    ("5\\%", ["5\\%", "5"]),
    ("5%", ["5%"]),
    ("5 \\text{ pounds}", ["5"]),
    ("3 gm", ["3"]),
    ("20 edges", ["20"]),
    ("6 meals", ["6"]),
    ("8 digits", ["8"]),
    ("2 multiples", ["2"]),
    ("45^\\circ", ["45"]),
    ("45 degrees", ["45"]),
    ("1,000 dollars", ["1000"]),
    ("\\$1,000.50", ["1000.50", "1,000.50"]),
    ("5\\,\\text{cm}", ["5\\,"]),
):
    add_box("units", inner, answers)

# ---- Unicode digits: every str.isdigit range, its ends and neighbours -----------------------
digit_points = []
previous = False
for cp in range(0x110000):
    is_digit = chr(cp).isdigit()
    if is_digit != previous:
        digit_points.append(cp if is_digit else cp - 1)  # first and last of a range
        digit_points.append(cp - 1 if is_digit else cp)  # the neighbour outside it
    previous = is_digit
# Digits that later Unicode versions add (Kawi, Nag Mundari: Unicode 15; Garay, Sunuwar,
# Gurung Khema, Kirat Rai, Ol Onal, Outlined Digits: Unicode 16).
digit_points += [0x11F50, 0x11F59, 0x1E4F0, 0x1E4F9, 0x10D40, 0x11BF0, 0x16130, 0x16D70,
                 0x1E5F1, 0x1CCF0]
for cp in sorted(set(digit_points)):
    if 0xD800 <= cp <= 0xDFFF:
        continue
    ch = chr(cp)
    add("unicode digit U+%04X" % cp, boxed("1," + ch), "1" + ch)
add_box("unicode digits: superscripts", "x^2 = 2\u00b3", ["2\u00b3", "8"])
add_box("unicode digits: full-width number", "\uff14\uff12", ["42", "\uff14\uff12"])
add_box("unicode digits: mixed scripts", "4\u0662,\u09e8", ["4\u0662\u09e8"])

# ---- Unicode whitespace around and inside answers ------------------------------------------
spaces = [cp for cp in range(0x110000) if chr(cp).isspace()]
not_spaces = [0x200B, 0x180E, 0xFEFF, 0x2060, 0x00AD, 0x200C, 0x200D, 0x0000, 0x0008, 0x001B,
              0x007F, 0x1160, 0x3164, 0xFFA0]
for cp in spaces + not_spaces:
    ch = chr(cp)
    kind = "space" if cp in spaces else "not a space"
    add("whitespace U+%04X (%s)" % (cp, kind), boxed(ch + "5" + ch), "5")
    add("whitespace U+%04X inside (%s)" % (cp, kind), boxed("1" + ch + "2"), "12")
add("whitespace: ground truth padded", boxed("5"), "\u3000 5 \u2003\n")
add("whitespace: many kinds", boxed(" \t\n\r\u00a0\u20005\u2028\u2029\u3000 "), "5")

# ---- newlines inside answers ----------------------------------------------------------------
for inner, answers in (
    ("5\n", ["5"]),
    ("\n5", ["5"]),
    ("1\n2", ["1\n2", "12"]),
    ("1\r\n2", ["1\r\n2"]),
    ("1\r2", ["1\r2"]),
    ("\\text{a\nb}", ["\\text{a\nb}", "a\nb"]),
    ("\\text{a\rb}", ["a\rb"]),
    ("\\text{a\x85b}", ["a\x85b"]),
    ("\\text{a\u2028b}", ["a\u2028b"]),
    ("\\overline{1\n2}", ["\\overline{1\n2}"]),
    ("\\textbf{1\r2}", ["1\r2"]),
    ("x=1\ny=2", ["2"]),
    ("5\n\n\n", ["5"]),
):
    add_box("newlines", inner, answers)

# ---- the 300-code-point window ------------------------------------------------------------
box42 = "\\boxed{42}"
for filler in ("x", "\u00e9", "\u4e2d", "\U0001F600", "\n"):
    for distance in (297, 298, 299, 300, 301, 302, 303, 305, 310, 320):
        # The box starts `distance` code points before the end of the response.
        tail = box42 + filler * (distance - len(box42))
        response = filler * 50 + tail
        add("window: box starts %d from the end (filler U+%04X)" % (distance, ord(filler)),
            response, "42")
for filler in ("x", "\u00e9", "\U0001F600"):
    # Box content crossing the window's start.
    add("window: box content cut", "\\boxed{" + filler * 400 + "}", filler * 293)
    add("window: box content cut, inner box survives",
        "\\boxed{" + filler * 400 + "\\boxed{7}" + filler * 20 + "}", "7")
    add("window: opener at the window start",
        filler * 100 + "\\boxed{" + filler * 292 + "}", filler * 292)
    add("window: opener one past the window start",
        filler * 100 + "\\boxed{" + filler * 293 + "}", filler * 293)
    add("window: earlier box outside, later box inside",
        "\\boxed{1}" + filler * 400 + "\\boxed{2}", "2")
    add("window: only box outside", "\\boxed{1}" + filler * 300, "1")
    add("window: only box outside, [INVALID]", "\\boxed{1}" + filler * 300, "[INVALID]")
    add("window: box closes after the window's last character", filler * 500 + "\\boxed{9",
        "[INVALID]")
add("window: exactly 300 code points", "y" * 290 + "\\boxed{5}" + "z", "5")
add("window: response shorter than the window", "\\boxed{5}", "5")
add("window: partial opener at the cut", "x" * 100 + "\\boxed{3}" + "x" * 292, "3")

# ---- braces -------------------------------------------------------------------------------
for inner, answers in (
    ("\\frac{1}{2}", ["\\frac{1}{2}"]),
    ("{5}", ["{5}", "5"]),
    ("{{{5}}}", ["{{{5}}}"]),
    ("a{b}c", ["a{b}c"]),
    ("\\{1,2\\}", ["\\{1,2\\}", "{1,2}"]),
    ("\\left\\{1,2\\right\\}", ["\\left\\{1,2\\right\\}"]),
    ("\\begin{pmatrix}1\\\\2\\end{pmatrix}", ["\\begin{pmatrix}1\\\\2\\end{pmatrix}"]),
    ("x^{2}", ["x^{2}", "x^2"]),
):
    add_box("braces", inner, answers)
add("braces: extra closing brace after the box", "\\boxed{5}}", "5")
add("braces: escaped closing brace closes the box", "\\boxed{\\}}", "\\")
add("braces: box of an opening brace", "\\boxed{{}", "[INVALID]")
add("braces: box of two closing braces", "\\boxed{}}", "")
add("braces: deep nesting", "\\boxed{" + "{" * 40 + "7" + "}" * 40 + "}",
    "{" * 40 + "7" + "}" * 40)

# ---- unclosed, several, none, empty -------------------------------------------------------
add("unclosed box", "so \\boxed{5", "[INVALID]")
add("unclosed box, ground truth 5", "so \\boxed{5", "5")
add("unclosed last box hides a closed one", "\\boxed{5} and \\boxed{6", "[INVALID]")
add("unclosed last box hides a closed one, ground truth 5", "\\boxed{5} and \\boxed{6", "5")
add("opener only", "\\boxed{", "[INVALID]")
add("no brace after boxed", "\\boxed 5", "[INVALID]")
add("space before the brace", "\\boxed {5}", "[INVALID]")
add("unbalanced inner brace", "\\boxed{{5}", "[INVALID]")
add("several boxes: the last", "\\boxed{1} then \\boxed{2}", "2")
add("several boxes: not the first", "\\boxed{1} then \\boxed{2}", "1")
add("several boxes adjacent", "\\boxed{1}\\boxed{2}", "2")
add("box inside a box: the inner one", "\\boxed{1 + \\boxed{2}}", "2")
add("box inside a box, outer content", "\\boxed{1 + \\boxed{2}}", "1+\\boxed{2}")
add("no box, ground truth [INVALID]", "The answer is 5.", "[INVALID]")
add("no box, ground truth 5", "The answer is 5.", "5")
add("no box, ground truth [invalid]", "The answer is 5.", "[invalid]")
add("no box, \\fbox", "\\fbox{5}", "5")
add("no box, Boxed", "\\Boxed{5}", "5")
add("no box, empty response", "", "[INVALID]")
add("no box, empty response and empty ground truth", "", "")
add("box holding [INVALID]", "\\boxed{[INVALID]}", "[INVALID]")
add("empty box, empty ground truth", "\\boxed{}", "")
add("empty box, blank ground truth", "\\boxed{}", "  ")
add("empty box, ground truth 0", "\\boxed{}", "0")
add("blank box", "\\boxed{ \n }", "")
add("box of dollars", "\\boxed{$$}", "")

# ---- long responses and non-ASCII text ------------------------------------------------------
rng = random.Random(SEED)
words = ["so", "we", "get", "the", "sum", "is", "x", "=", "3", "+", "4", "\n", "\\frac{1}{2}",
         "therefore", "\u5f97", "\u0438", "\u00e9t\u00e9", "\U0001F914"]
for length in (1000, 5000, 20000):
    body = " ".join(rng.choice(words) for _ in range(length // 4))
    add("long response (%d words)" % (length // 4), body + " so \\boxed{7}.", "7")
    add("long response with early box (%d words)" % (length // 4),
        "\\boxed{7} " + body, "7")
for before in ("\u041e\u0442\u0432\u0435\u0442: ", "\u7b54\u6848\u662f ", "\U0001F389 ",
               "\u05ea\u05e9\u05d5\u05d1\u05d4: ", "e\u0301e\u0301 ", "\ufeff", "\u00e9" * 295,
               "\U0001F600" * 295):
    add("non-ASCII before the box", boxed("5", before), "5")
add("non-ASCII inside the box", boxed("\u03c0/2"), "\u03c0/2")
add("non-ASCII: NUL before the box", "\x00\\boxed{5}", "5")
add("non-ASCII: NUL in the box", "\\boxed{5\x00}", "5\x00")

# ---- ground truths that need the regexes ----------------------------------------------------
add("ground truth: long with one dollar", boxed("5"), "x" * 3000 + "$" + "y" * 3000)
add("ground truth: long with dollars", boxed("5"), "x" * 2000 + "$5$" + "y" * 2000)
add("ground truth: \\text{} around", boxed("5"), "\\text{5}")
add("ground truth: \\frac shorthand", boxed("\\frac{3}{4}"), "\\frac34")
add("ground truth: degrees", boxed("30"), "30^\\circ")
add("ground truth: empty", boxed("5"), "")

# ---- random adversarial strings -------------------------------------------------------------
TOKENS = (["\\", "{", "}", "$", "=", ",", ".", " ", "\n", "a", "b", "x", "n", "t", "e", "c",
           "m", "s", "(", ")", "^", "-", "+", "/", "\\boxed{", "\\text{", "\\textbf{",
           "\\overline{", "\\frac", "\\sqrt", "\\mbox", "an ", "a ", "\\$", "\\ ", ".$", "cm",
           "\\%", "^\\circ", "^{\\circ}", "\\;", ",\\!", "{,}", '"', "\\dots", "\\ldots",
           "\\text{and}", "\\text{m}", "\\text{}", "\\mathrm{th}", "square", "units", "sue",
           "\u00b2", "\uff11", "\u3000", "\t", "\r", "\u00e9", "\u2028", "\x85", "\u0663"]
          + [str(d) for d in range(10)] * 3)


def random_text(max_tokens):
    return "".join(rng.choice(TOKENS) for _ in range(rng.randint(0, max_tokens)))


for i in range(400):
    inner = random_text(25)
    shape = i % 5
    if shape == 0:
        response = random_text(40) + "\\boxed{" + inner + "}" + random_text(5)
    elif shape == 1:
        response = random_text(60)
    elif shape == 2:
        response = "\\boxed{" + inner + "}"
    elif shape == 3:
        response = "x" * rng.randint(250, 310) + "\\boxed{" + inner + "}" + random_text(20)
    else:
        response = random_text(30) + "\\boxed{" + random_text(10) + "\\boxed{" + inner + "}"
    choice = rng.random()
    if choice < 0.35:
        answer = inner  # often correct
    elif choice < 0.6:
        answer = ref.grade(response, "")[1]  # the normalised prediction itself
    elif choice < 0.8:
        answer = random_text(15)
    else:
        answer = rng.choice(["[INVALID]", "5", "", "\\frac{1}{2}", "1000"])
    add("random %d" % i, response, answer)

for record in records:
    sys.stdout.write(json.dumps(record, ensure_ascii=True) + "\n")
correct = sum(r["correct"] for r in records)
sys.stderr.write("%d records, %d correct, %d wrong (Unicode %s)\n"
                 % (len(records), correct, len(records) - correct, unicodedata.unidata_version))
