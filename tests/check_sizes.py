#!/usr/bin/env python3
"""Checks the size rules of the project's code (README.md, "Layout"): no source file outside
tests/ and bench/ longer than MAX_FILE_LINES lines, no function longer than MAX_FUNCTION_LINES.

  tests/check_sizes.py SOURCE_DIR

Functions are found by lizard (PyPI, in the project's .venv), which parses C++ without the
headers; a function's length runs from its signature's first line to its closing brace, blank
lines and comments included. The files are those git tracks plus the untracked ones it does
not ignore, so a new file counts before its first commit. A room past a limit is split by
concern (see trainer/trainer.cc and trainer/trainer_state.cc) rather than the limit raised.
"""
import os
import subprocess
import sys

import lizard

MAX_FILE_LINES = 600
MAX_FUNCTION_LINES = 80
EXEMPT_PREFIXES = ("tests/", "bench/")


def sources(root):
    listed = subprocess.run(
        ["git", "-C", root, "ls-files", "--cached", "--others", "--exclude-standard",
         "*.cc", "*.h", "*.cu", "*.cuh"],
        check=True, capture_output=True, text=True).stdout.split()
    return sorted(f for f in listed
                  if not f.startswith(EXEMPT_PREFIXES) and os.path.exists(os.path.join(root, f)))


def problems(root):
    found = []
    for rel in sources(root):
        path = os.path.join(root, rel)
        with open(path, encoding="utf-8") as f:
            lines = sum(1 for _ in f)
        if lines > MAX_FILE_LINES:
            found.append(f"{rel}: {lines} lines, more than {MAX_FILE_LINES}")
        for fn in lizard.analyze_file(path).function_list:
            if fn.length > MAX_FUNCTION_LINES:
                found.append(f"{rel}:{fn.start_line}: {fn.name} is {fn.length} lines, more "
                             f"than {MAX_FUNCTION_LINES}")
    return found


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    root = sys.argv[1]
    found = problems(root)
    for p in found:
        print(f"check_sizes: {p}")
    if found:
        print(f"check_sizes: FAILED: {len(found)} problem(s)")
        return 1
    print(f"check_sizes: {len(sources(root))} files within {MAX_FILE_LINES} lines, every "
          f"function within {MAX_FUNCTION_LINES}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
