#!/usr/bin/env bash
# The run command: on a fresh Debian 12 (as root, or with sudo) it installs what the project
# needs, builds the `deepsearch` binary (not the tests or benchmarks) and runs `deepsearch run`
# on its embedded default: a tiny model warm-started on Countdown, then the cache service, the
# learner and an actor as processes on 127.0.0.1, DeepSearch training with held-out evaluation.
# Arguments go to `deepsearch run` (`--help` lists them). Running it again resumes the run in
# deepsearch-run/ (or --dir); Ctrl-C stops every process cleanly.
#
#   scripts/run.sh                  setup + build + deepsearch run
#   scripts/run.sh --set learner.program.max_steps=200
#   BUILD_DIR=out scripts/run.sh    another build folder
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${BUILD_DIR:-build}"

./scripts/setup.sh
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build_dir" --parallel 2 --target deepsearch
# malloc's large blocks on transparent huge pages: only the environment can ask glibc for it,
# and it makes the weight fan-out 2-3x faster here (docs/BENCHMARKS.md, "Cache service").
export GLIBC_TUNABLES="${GLIBC_TUNABLES:-glibc.malloc.hugetlb=1}"
exec "$build_dir/cli/deepsearch" run "$@"
