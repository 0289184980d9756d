#!/usr/bin/env python3
"""How different the leaves of one problem are: search trees against direct samples.

Reads the output of `deepsearch solve --trajectories` (one JSON line per problem, every leaf's
text) for one or more LABEL=FILE pairs and prints one Markdown row per file:

  * distinct first lines: how many different first lines (the first step of the worked
    solution) the K leaves of a problem hold, averaged over problems;
  * distinct last steps: the same for the last line before the boxed answer (in Countdown
    the step that reaches the target);
  * distinct texts: different whole responses;
  * correct leaves, and on the problems with a correct leaf the distinct correct texts (a tree
    that found one solution and re-sampled its suffix holds copies of it).

    bench/leaf_diversity.py rollout=rollouts.jsonl tree=search.jsonl
"""

import argparse
import json
import sys


def lines_of(text):
    lines = [line for line in text.split("\n") if line.strip()]
    steps = [line for line in lines if not line.lstrip().startswith("\\boxed")]
    return steps


def summarise(path):
    problems = 0
    leaves = 0
    correct = 0
    first = last = texts = 0
    solved = 0
    distinct_correct = 0
    with open(path, encoding="utf-8") as f:
        for number, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                result = json.loads(raw)
            except json.JSONDecodeError as e:
                sys.exit(f"leaf_diversity: {path}:{number}: not JSON: {e}")
            trajectories = result.get("trajectories")
            if not trajectories:
                sys.exit(f"leaf_diversity: {path}:{number}: no 'trajectories' "
                         "(run `deepsearch solve` with --trajectories)")
            problems += 1
            leaves += len(trajectories)
            steps = [lines_of(t["text"]) for t in trajectories]
            first += len({s[0] if s else "" for s in steps})
            last += len({s[-1] if s else "" for s in steps})
            texts += len({t["text"] for t in trajectories})
            good = {t["text"] for t in trajectories if t["correct"]}
            correct += sum(1 for t in trajectories if t["correct"])
            if good:
                solved += 1
                distinct_correct += len(good)
    if problems == 0:
        sys.exit(f"leaf_diversity: {path}: no problems")
    return {
        "problems": problems,
        "k": leaves / problems,
        "first": first / problems,
        "last": last / problems,
        "texts": texts / problems,
        "correct": correct / leaves,
        "solved": solved / problems,
        "distinct_correct": distinct_correct / solved if solved else 0.0,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", metavar="LABEL=FILE",
                        help="a label and a `deepsearch solve --trajectories` output")
    args = parser.parse_args()
    print("| leaves of | problems | leaves each | distinct first lines | distinct last steps "
          "| distinct texts | correct leaves | solved | distinct correct texts per solved problem |")
    print("|---|---|---|---|---|---|---|---|---|")
    for item in args.files:
        label, sep, path = item.partition("=")
        if not sep:
            parser.error(f"'{item}' is not LABEL=FILE")
        s = summarise(path)
        print(f"| {label} | {s['problems']} | {s['k']:.1f} | {s['first']:.2f} | {s['last']:.2f} "
              f"| {s['texts']:.2f} | {100 * s['correct']:.1f}% | {100 * s['solved']:.0f}% "
              f"| {s['distinct_correct']:.2f} |")


if __name__ == "__main__":
    main()
