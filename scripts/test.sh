#!/usr/bin/env bash
# The test command: on a fresh Debian 12 (as root, or with sudo) it installs what the project
# needs, builds everything and runs the whole suite. Later runs reuse the build folder and
# ccache, so they take seconds plus what changed.
#
#   scripts/test.sh                 setup + build + every test
#   BUILD_DIR=out scripts/test.sh   another build folder
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${BUILD_DIR:-build}"

start=$SECONDS
./scripts/setup.sh
setup_s=$((SECONDS - start))
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release
# Two cores: two compile jobs keep memory well below the machine's (a torch TU takes ~1.5 GB).
cmake --build "$build_dir" --parallel 2
build_s=$((SECONDS - start - setup_s))
ctest --test-dir "$build_dir" --output-on-failure --parallel 2 --timeout 600
echo "test.sh: setup ${setup_s} s, configure + build ${build_s} s," \
  "tests $((SECONDS - start - setup_s - build_s)) s"
