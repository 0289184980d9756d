#!/usr/bin/env python3
"""The clang build of the torch-free targets with -Wthread-safety -Werror: Clang's static
analysis of the lock annotations (ABSL_GUARDED_BY, ABSL_EXCLUSIVE_LOCKS_REQUIRED, ...), which
GCC parses but never checks.

  tests/check_thread_safety.py BUILD_DIR [-j JOBS]

It takes every project translation unit of BUILD_DIR's compile_commands.json that does not
include LibTorch (outside tests/ and bench/), swaps the compiler for clang++, drops what is
GCC's own (the precompiled header, dependency files) and runs it with -fsyntax-only: the
analysis is Sema's, so no code is generated. Any warning fails the check.
"""
import argparse
import concurrent.futures
import json
import os
import shlex
import shutil
import subprocess
import sys

CLANG_FLAGS = ["-fsyntax-only", "-Wthread-safety", "-Wthread-safety-beta", "-Werror",
               "-Wno-unknown-warning-option"]


def clang_command(entry, clang):
    args = entry.get("arguments") or shlex.split(entry["command"])
    # Drop the launchers (cmake -E env ... ccache) in front of the compiler.
    while args and not os.path.basename(args[0]).startswith(("c++", "g++", "gcc", "clang")):
        args = args[1:]
    out, skip = [clang], 0
    for i, a in enumerate(args[1:], 1):
        if skip:
            skip -= 1
            continue
        if a in ("-o", "-MF", "-MT", "-MQ", "-include"):
            skip = 1
            continue
        if a in ("-c", "-MD", "-MMD", "-fpch-preprocess", "-Winvalid-pch") or a.startswith("-fopenmp-simd"):
            continue
        out.append(a)
    return out + CLANG_FLAGS


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("build_dir")
    parser.add_argument("-j", "--jobs", type=int, default=2)
    args = parser.parse_args()
    clang = shutil.which("clang++")
    if clang is None:
        sys.exit("check_thread_safety: clang++ not found (scripts/setup.sh installs clang)")
    source_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    entries = json.load(open(os.path.join(args.build_dir, "compile_commands.json")))
    units = []
    for e in entries:
        rel = os.path.relpath(e["file"], source_dir)
        command = e.get("command") or " ".join(e.get("arguments", []))
        if rel.startswith(("tests/", "bench/", "..")) or "torch" in command:
            continue
        if os.path.relpath(e["file"], os.path.abspath(args.build_dir)).startswith(".."):
            units.append((rel, e))
    if not units:
        sys.exit(f"check_thread_safety: no torch-free project sources in {args.build_dir}")

    def check(unit):
        rel, e = unit
        run = subprocess.run(clang_command(e, clang), cwd=e["directory"], capture_output=True,
                             text=True)
        return rel, run.returncode, run.stderr

    failed = 0
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        for rel, rc, err in pool.map(check, sorted(units)):
            if rc != 0 or err.strip():
                failed += 1
                print(f"--- {rel}\n{err}")
    if failed:
        print(f"check_thread_safety: FAILED: {failed} of {len(units)} translation units")
        return 1
    print(f"check_thread_safety: {len(units)} torch-free translation units pass clang "
          f"-Wthread-safety -Werror")
    return 0


if __name__ == "__main__":
    sys.exit(main())
