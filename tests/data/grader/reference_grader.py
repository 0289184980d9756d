#!/usr/bin/env python3
"""The strict math grader of DeepSearch, rewritten in Python as a test oracle.

DeepSearch trains with `compute_score_boxed` from its fork of veRL
(verl/utils/reward_score/math_dapo.py of github.com/smiles724/DeepSearch). This module is a
separate implementation of that function's behaviour, written from the description in the
project's specification and checked against the reference source; it shares no code with it.
Python is the point: the reference runs on Python strings, so code points, `re`, `str.isdigit`
and `str.strip` here are the real thing, and the C++ grader (common/tasks/math_grader.cc) is
tested against the answers of this file (strict_golden.jsonl, made by make_strict_golden.py).

What the grader does, step by step:

1. Window. Only the last 300 code points of the response are looked at.
2. Box. The last occurrence of the seven characters `\\boxed{` starts the box. Scanning from
   there, every `{` opens and every `}` closes (escaped braces count too); the box ends at the
   `}` that brings the count back to zero. When there is no `\\boxed{`, or the count never
   returns to zero before the window ends, the prediction is the literal `[INVALID]`.
   Otherwise the prediction is what lies between `\\boxed{` and that closing brace.
3. Normalisation, the same for the prediction and the ground truth:
   a. only the text after the last `=` is kept;
   b. ten literal rewrites, in a fixed order (REWRITES below), each over the whole string;
   c. forty-one literal deletions, in a fixed order (DELETIONS below);
   d. seven regular-expression rewrites, in a fixed order (PATTERNS below). In all of them
      `.` stands for any code point except the line feed, so none crosses a line;
   e. every `$` is deleted;
   f. when deleting the commas leaves a non-empty string of digits (anything `str.isdigit`
      accepts: Unicode decimal digits, superscripts, circled digits, ...), the commas go;
   g. leading and trailing whitespace (`str.strip`: Unicode whitespace) is removed.
4. The verdict is the equality of the two normalised strings: reward +1 or -1.

Usage:
  reference_grader.py [FILE]   reads JSON Lines of {"response", "answer"} (stdin without FILE)
                               and writes each record back with "correct", "pred" and "gt".
"""

import json
import re
import sys

WINDOW_CODE_POINTS = 300
BOX_OPENER = "\\boxed{"
NO_ANSWER = "[INVALID]"

# Step 3b: (old, new) literal rewrites, in order. Backslashes are doubled: "\\$" is the two
# characters backslash and dollar.
REWRITES = (
    ("an ", ""),
    ("a ", ""),
    (".$", "$"),
    ("\\$", ""),
    ("\\ ", ""),
    (" ", ""),
    ("mbox", "text"),
    (",\\text{and}", ","),
    ("\\text{and}", ","),
    ("\\text{m}", "\\text{}"),
)

# Step 3c: literals deleted, in order. Units and filler words first, then TeX leftovers;
# "\\text{\ns}" and "\\text{\n}" hold a real line feed.
DELETIONS = (
    "square", "ways", "integers", "dollars", "mph", "inches", "hours", "km", "units",
    "\\ldots", "sue", "points", "feet", "minutes", "digits", "cents", "degrees", "cm", "gm",
    "pounds", "meters", "meals", "edges", "students", "childrentickets", "multiples",
    "\\text{s}", "\\text{.}", "\\text{\ns}", "\\text{}^2", "\\text{}^3", "\\text{\n}",
    "\\text{}", "\\mathrm{th}", "^\\circ", "^{\\circ}", "\\;", ",\\!", "{,}", '"', "\\dots",
)


def _keep_between_dollars(m):
    # A line with two dollars keeps only what the first pair encloses (dollars included;
    # they go in step 3e). The lazy prefix makes it the first pair of the line.
    return "$" + m.group(3) + "$"


def _keep_group_2(m):
    return m.group(2)


def _brace_frac(m):
    # \fracab -> \frac{a}{b}: the first character after "frac" (not "{", may be a line feed)
    # and the next one (not a line feed).
    return "frac{" + m.group(2) + "}{" + m.group(3) + "}"


def _brace_sqrt(m):
    return "sqrt{" + m.group(2) + "}"


# Step 3d, in order. re.sub replaces every non-overlapping match, left to right.
PATTERNS = (
    (re.compile(r"(.*?)(\$)(.*?)(\$)(.*)"), _keep_between_dollars),
    # \text{...}, \textbf{...}, \overline{...}: up to the first "}" on the same line.
    (re.compile(r"(\\text\{)(.*?)(\})"), _keep_group_2),
    (re.compile(r"(\\textbf\{)(.*?)(\})"), _keep_group_2),
    (re.compile(r"(\\overline\{)(.*?)(\})"), _keep_group_2),
    # \boxed{...}: up to the last "}" on the same line.
    (re.compile(r"(\\boxed\{)(.*)(\})"), _keep_group_2),
    (re.compile(r"(frac)([^{])(.)"), _brace_frac),
    (re.compile(r"(sqrt)([^{])"), _brace_sqrt),
)


def window(response):
    """Step 1: the last 300 code points."""
    return response[-WINDOW_CODE_POINTS:]


def last_box(text):
    """Step 2: the text inside the last brace-balanced \\boxed{...}, or None."""
    start = text.rfind(BOX_OPENER)
    if start < 0:
        return None
    depth = 0
    for position in range(start, len(text)):
        ch = text[position]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start + len(BOX_OPENER):position]
    return None


def normalize(answer):
    """Step 3: normalize_final_answer."""
    s = answer.rsplit("=", 1)[-1]
    for old, new in REWRITES:
        s = s.replace(old, new)
    for literal in DELETIONS:
        s = s.replace(literal, "")
    for pattern, replacement in PATTERNS:
        s = pattern.sub(replacement, s)
    s = s.replace("$", "")
    without_commas = s.replace(",", "")
    if without_commas.isdigit():
        s = without_commas
    return s.strip()


def grade(response, ground_truth):
    """Steps 1-4. Returns (correct, normalised prediction, normalised ground truth)."""
    boxed = last_box(window(response))
    pred = normalize(NO_ANSWER if boxed is None else boxed)
    gt = normalize(ground_truth)
    return pred == gt, pred, gt


def main(argv):
    source = open(argv[1], encoding="utf-8") if len(argv) > 1 else sys.stdin
    for line in source:
        if not line.strip():
            continue
        record = json.loads(line)
        correct, pred, gt = grade(record["response"], record["answer"])
        record.update(correct=correct, pred=pred, gt=gt)
        sys.stdout.write(json.dumps(record, ensure_ascii=True) + "\n")


if __name__ == "__main__":
    main(sys.argv)
