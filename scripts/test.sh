#!/usr/bin/env bash
# The test command: on a fresh Debian 12 (as root, or with sudo) it installs what the project
# needs, then builds and tests the project in its two configurations:
#
#   cpu   build/       Debian's LibTorch 1.13 (CPU): the run command's build.
#   cuda  build-cuda/  the LibTorch 2.11 (CUDA 13.0) of the pip torch in .venv, DEEPSEARCH_CUDA
#                      on (c10d NCCL, the CUDA code paths). It needs the CUDA toolkit (nvcc);
#                      on a machine without one it is skipped with a line saying so. Without a
#                      GPU its CUDA tests skip and the whole suite runs on the CPU, against
#                      LibTorch 2.x.
#
# Later runs reuse the build folders and ccache, so they take seconds plus what changed.
#
#   scripts/test.sh                          setup + both configurations
#   DEEPSEARCH_CONFIGS=cpu scripts/test.sh   one configuration (cpu, cuda or "cpu cuda")
#   BUILD_DIR=out CUDA_BUILD_DIR=out-cuda scripts/test.sh   other build folders
set -euo pipefail
cd "$(dirname "$0")/.."
configs="${DEEPSEARCH_CONFIGS:-cpu cuda}"

phase_start=$SECONDS
times=()
phase_done() {  # phase_done NAME: records how long the phase since the last one took
  times+=("$1 $((SECONDS - phase_start)) s")
  phase_start=$SECONDS
}

./scripts/setup.sh
phase_done setup

# build_and_test NAME DIR CMAKE_ARGS...
build_and_test() {
  local name=$1 dir=$2
  shift 2
  echo "test.sh: [$name] configure and build in $dir"
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
  # Two cores: two compile jobs keep memory well below the machine's (a torch TU takes ~1.5 GB).
  cmake --build "$dir" --parallel 2
  phase_done "$name-build"
  echo "test.sh: [$name] tests"
  ctest --test-dir "$dir" --output-on-failure --parallel 2 --timeout 600
  phase_done "$name-tests"
}

for config in $configs; do
  case "$config" in
    cpu)
      build_and_test cpu "${BUILD_DIR:-build}"
      ;;
    cuda)
      nvcc=$(command -v nvcc || true)
      if [[ -z "$nvcc" && -x /usr/local/cuda/bin/nvcc ]]; then nvcc=/usr/local/cuda/bin/nvcc; fi
      torch_dir=""
      if [[ -x .venv/bin/python ]]; then
        torch_dir=$(.venv/bin/python -c 'import os, torch; print(os.path.dirname(torch.__file__))')
      fi
      if [[ -z "$nvcc" ]]; then
        echo "test.sh: [cuda] skipped: no CUDA toolkit here (no nvcc on PATH or in" \
          "/usr/local/cuda/bin); the CUDA LibTorch's CMake config needs one to configure"
        times+=("cuda skipped (no nvcc)")
      elif [[ -z "$torch_dir" ]]; then
        echo "test.sh: [cuda] skipped: no .venv with torch (scripts/setup.sh --system made none)"
        times+=("cuda skipped (no .venv)")
      else
        # LibTorch's CMake config finds the toolkit through nvcc on PATH.
        PATH="$(dirname "$nvcc"):$PATH" build_and_test cuda "${CUDA_BUILD_DIR:-build-cuda}" \
          -DCMAKE_PREFIX_PATH="$torch_dir"
      fi
      ;;
    *)
      echo "test.sh: unknown configuration '$config' in DEEPSEARCH_CONFIGS (cpu, cuda)" >&2
      exit 2
      ;;
  esac
done

printf -v summary '%s, ' "${times[@]}"
echo "test.sh: passed; ${summary%, }; total $((SECONDS)) s"
