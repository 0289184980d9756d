#!/usr/bin/env python3
"""Builds the libFuzzer targets of fuzz/ with clang (ASan, UBSan, coverage) in a scratch
build, replays every input in fuzz/regressions/<target>, then fuzzes each target for a short
while from its seeds. Any crash, leak, sanitizer report or timeout fails the check, and the
input that caused it is kept under SCRATCH/artifacts.

  tests/check_fuzz.py SOURCE_DIR SCRATCH [--seconds S] [--runs N] [--only NAME ...]

--seconds bounds each target's run (the suite's smoke run: a few seconds); --runs N runs N
inputs per target instead (the long runs of docs/RELIABILITY.md). The seeds: the project's
test data and configurations, and what fuzz/make_seeds.cc writes with the project's own
encoders.
"""
import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import time

# Seeds beyond make_seeds' (paths relative to the source directory; globs).
SEEDS = {
    "fuzz_safetensors": ["tests/data/safetensors/*/*.safetensors"],
    "fuzz_model_config": [],
    "fuzz_tokenizer": [],  # the task tokenizer (make_seeds); the 11 MB Qwen3 file is too slow
    "fuzz_problems": [],
    "fuzz_grader": [],  # written below from tests/data/grader/strict_golden.jsonl
    "fuzz_config": ["configs/*.yaml", "tests/data/config/*"],
    "fuzz_weight_stream": [],
    "fuzz_requests": [],
}


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def build(source, scratch):
    build_dir = os.path.join(scratch, "build")
    if not os.path.exists(os.path.join(build_dir, "CMakeCache.txt")):
        env = dict(os.environ, CC="clang", CXX="clang++")
        run(["cmake", "-S", source, "-B", build_dir, "-G", "Ninja",
             "-DCMAKE_BUILD_TYPE=RelWithDebInfo", "-DDEEPSEARCH_FUZZ=ON",
             "-DDEEPSEARCH_BUILD_TESTS=OFF", "-DDEEPSEARCH_BUILD_BENCHMARKS=OFF",
             "-DDEEPSEARCH_USE_PCH=OFF", "-DDEEPSEARCH_WERROR=OFF"],
            env=env, stdout=subprocess.DEVNULL)
    run(["cmake", "--build", build_dir, "--target", "deepsearch_fuzzers", "--", "-j2"],
        stdout=subprocess.DEVNULL)
    return os.path.join(build_dir, "fuzz")


def seeds(source, scratch, bin_dir):
    out = os.path.join(scratch, "seeds")
    shutil.rmtree(out, ignore_errors=True)
    run([os.path.join(bin_dir, "fuzz_make_seeds"), out], stdout=subprocess.DEVNULL)
    grader = os.path.join(out, "fuzz_grader")
    os.makedirs(grader, exist_ok=True)
    with open(os.path.join(source, "tests/data/grader/strict_golden.jsonl"), encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i >= 64:
                break
            d = json.loads(line)
            with open(os.path.join(grader, f"golden_{i}"), "wb") as g:
                g.write(d["response"].encode() + b"\0" + d["answer"].encode())
    for name, patterns in SEEDS.items():
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        for pattern in patterns:
            for path in glob.glob(os.path.join(source, pattern)):
                shutil.copy(path, os.path.join(d, os.path.basename(path)))
    return out


def fuzz(name, binary, source, scratch, seed_dir, seconds, runs):
    artifacts = os.path.join(scratch, "artifacts")
    corpus = os.path.join(scratch, "corpus", name)
    os.makedirs(artifacts, exist_ok=True)
    os.makedirs(corpus, exist_ok=True)
    regressions = sorted(glob.glob(os.path.join(source, "fuzz/regressions", name, "*")))
    if regressions:
        replay = subprocess.run([binary] + regressions, capture_output=True, text=True)
        if replay.returncode != 0:
            return {"name": name, "ok": False, "why": "a regression input fails again",
                    "log": replay.stderr[-3000:]}
    limit = [f"-runs={runs}"] if runs else [f"-max_total_time={seconds}"]
    start = time.time()
    p = subprocess.run([binary, *limit, "-rss_limit_mb=2048", "-timeout=10", "-max_len=65536",
                        "-print_final_stats=1", f"-artifact_prefix={artifacts}/{name}-",
                        corpus, seed_dir], capture_output=True, text=True)
    units = re.search(r"stat::number_of_executed_units:\s*(\d+)", p.stderr)
    return {"name": name, "ok": p.returncode == 0, "seconds": time.time() - start,
            "runs": int(units.group(1)) if units else 0, "regressions": len(regressions),
            "corpus": len(os.listdir(corpus)), "why": "" if p.returncode == 0 else "a crash",
            "log": "" if p.returncode == 0 else p.stderr[-3000:]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("scratch")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=0)
    parser.add_argument("--only", nargs="*", default=[])
    args = parser.parse_args()
    if shutil.which("clang++") is None:
        sys.exit("check_fuzz: clang++ not found (scripts/setup.sh installs clang)")
    source = os.path.abspath(args.source)
    scratch = os.path.abspath(args.scratch)
    os.makedirs(scratch, exist_ok=True)
    t0 = time.time()
    bin_dir = build(source, scratch)
    print(f"check_fuzz: built the fuzzers in {time.time() - t0:.0f} s", flush=True)
    seed_root = seeds(source, scratch, bin_dir)
    failed = 0
    for name in SEEDS:
        if args.only and name not in args.only:
            continue
        r = fuzz(name, os.path.join(bin_dir, name), source, scratch,
                 os.path.join(seed_root, name), args.seconds, args.runs)
        if r["ok"]:
            print(f"check_fuzz: {name}: {r['runs']} inputs in {r['seconds']:.0f} s "
                  f"({r['runs'] / max(r['seconds'], 1e-9):.0f}/s), {r['regressions']} "
                  f"regression input(s) pass, corpus {r['corpus']}, no crash", flush=True)
        else:
            failed += 1
            print(f"check_fuzz: {name}: FAILED ({r['why']}); inputs kept in "
                  f"{scratch}/artifacts\n{r['log']}", flush=True)
    if failed:
        print(f"check_fuzz: FAILED: {failed} target(s)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
