#!/usr/bin/env bash
# The GPU check: builds the torch targets against the machine's own CUDA LibTorch (a pip torch),
# runs the CUDA tests and the GPU engine benchmark, and writes every figure under $OUT.
#
# It is made for the lent GPU machine (the library's `device` entry): an NVIDIA GPU, nvcc, CMake,
# ninja and a python3 with torch, but no Debian -dev packages, no gRPC and no network. So the
# build is DEEPSEARCH_WITH_GRPC=OFF, and the libraries the torch targets need besides torch
# (Abseil, spdlog, fmt, yaml-cpp, CLI11, PCRE2, ...) travel with the call as Debian 12 packages,
# unpacked into a folder of their own:
#
#   scripts/gpu_check.sh --prepare    here, with the network: the packages into .gpu-check/debs
#                                     (~8 MB, from this machine's own apt sources)
#   scripts/gpu_check.sh              there: run(command="scripts/gpu_check.sh",
#                                     carry=[".gpu-check"], timeout_s=540)
#   scripts/gpu_check.sh --dry-run    here: the same build (CUDA on, against .venv's torch, the
#                                     unpacked packages only), the CUDA tests (which skip without
#                                     a GPU) and a small CPU run of the benchmark
#
# Budget: under 8 minutes on a 16-core GPU machine (build ~3 min, tests ~1, benchmark ~2).
# Results: $OUT/summary.txt (also printed last), $OUT/*.log, $OUT/cuda_test.xml,
# $OUT/engine_bench_*.txt. Without $OUT (here) they go to build-gpu-check/out. Only the packages
# travel (.gpu-check/debs); the unpacked packages and the build are in build-gpu-check/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
mode=run
case "${1:-}" in
  "") ;;
  --prepare) mode=prepare ;;
  --dry-run) mode=dry-run ;;
  *) echo "gpu_check: unknown argument '$1' (--prepare, --dry-run, or none)" >&2; exit 2 ;;
esac

debs=$root/.gpu-check/debs
scratch=$root/build-gpu-check
# What the torch targets link besides torch, and what the build needs to find it (pkgconf), as
# Debian 12 packages: headers and CMake/pkg-config files (-dev) with their shared libraries.
# Gloo: only headers (c10d's ProcessGroupGloo.hpp includes them; the code is in libtorch_cpu).
PACKAGES=(
  libabsl-dev libabsl20220623
  libbenchmark-dev libbenchmark1debian libgmock-dev libgtest-dev
  libcli11-dev nlohmann-json3-dev
  libfmt-dev libfmt9 libspdlog-dev libspdlog1.10
  libgloo-dev
  libpcre2-16-0 libpcre2-32-0 libpcre2-8-0 libpcre2-dev libpcre2-posix3
  libsqlite3-0 libsqlite3-dev
  libutf8proc-dev libutf8proc2
  libxxhash-dev libxxhash0
  libyaml-cpp-dev libyaml-cpp0.7
  libzstd-dev libzstd1
  libpkgconf3 pkgconf pkgconf-bin
)

if [[ $mode == prepare ]]; then
  command -v apt-get >/dev/null || { echo "gpu_check: --prepare needs apt-get (Debian)" >&2; exit 1; }
  rm -rf "$debs"
  mkdir -p "$debs"
  (cd "$debs" && apt-get download -qq "${PACKAGES[@]}" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
  n=$(find "$debs" -name '*.deb' | wc -l)
  if ((n != ${#PACKAGES[@]})); then
    echo "gpu_check: downloaded $n of ${#PACKAGES[@]} packages into $debs" >&2
    exit 1
  fi
  echo "gpu_check: $n packages, $(du -sh "$debs" | cut -f1), in $debs; carry .gpu-check"
  exit 0
fi

start=$SECONDS
out=${OUT:-$scratch/out}
mkdir -p "$out"
summary=$out/summary.txt
: >"$summary"
note() { echo "$*" | tee -a "$summary"; }
# step NAME TIMEOUT COMMAND...: runs a step with its output in $out/NAME.log; a failure is noted
# and the check goes on, so one call returns every result it can.
failures=0
step() {
  local name=$1 limit=$2
  shift 2
  local t0=$SECONDS rc=0
  echo "gpu_check: [$name] $*"
  timeout "$limit" "$@" >"$out/$name.log" 2>&1 || rc=$?
  if ((rc == 0)); then
    note "$name: ok in $((SECONDS - t0)) s"
  else
    failures=$((failures + 1))
    note "$name: FAILED (exit $rc$( ((rc == 124)) && echo ", over ${limit} s")) in $((SECONDS - t0)) s; tail of $name.log:"
    tail -n 25 "$out/$name.log" | sed 's/^/    /' | tee -a "$summary"
  fi
  return 0
}

# The Python that holds torch: the machine's python3 there, .venv's here.
python=python3
if ! "$python" -c 'import torch' 2>/dev/null; then python=$root/.venv/bin/python; fi
if ! "$python" -c 'import torch' 2>/dev/null; then
  echo "gpu_check: no python with torch (python3 or .venv/bin/python)" >&2
  exit 1
fi
torch_dir=$("$python" -c 'import os, torch; print(os.path.dirname(torch.__file__))')
note "gpu_check ($mode) at $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
note "torch $("$python" -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda)') at $torch_dir"
if command -v nvidia-smi >/dev/null; then
  note "gpu: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -1)"
fi
note "nvcc: $(nvcc --version 2>/dev/null | tail -1 || echo none); cores: $(nproc)"

# The packages, unpacked (dpkg-deb where there is one, else ar + tar).
n=$(find "$debs" -name '*.deb' 2>/dev/null | wc -l)
if ((n != ${#PACKAGES[@]})); then
  echo "gpu_check: $debs holds $n of ${#PACKAGES[@]} packages: run scripts/gpu_check.sh --prepare" \
    "here and carry .gpu-check" >&2
  exit 1
fi
sysroot=$scratch/sysroot
rm -rf "$sysroot"
mkdir -p "$sysroot"
for deb in "$debs"/*.deb; do
  if command -v dpkg-deb >/dev/null; then
    dpkg-deb -x "$deb" "$sysroot"
  else
    (cd "$sysroot" && ar p "$deb" "$(ar t "$deb" | grep '^data\.tar')" | tar -xJ)
  fi
done
arch=x86_64-linux-gnu
libdir=$sysroot/usr/lib/$arch
export LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export PKG_CONFIG_LIBDIR=$libdir/pkgconfig:$sysroot/usr/share/pkgconfig
export PKG_CONFIG_SYSROOT_DIR=$sysroot
note "packages: ${#PACKAGES[@]} unpacked into $sysroot"

# The build: the torch targets, CUDA on (the LibTorch is CUDA's), gRPC off. Warnings are not
# errors there: the machine's compiler may be newer than Debian 12's g++ 12, which CI holds to
# -Werror; a new warning must not cost the lent time.
build=$scratch/build
jobs=$(nproc)
# A torch translation unit takes ~1.5 GB to compile: no more jobs than memory allows.
mem_gb=$(awk '/MemTotal/ {print int($2 / 1048576)}' /proc/meminfo)
((jobs > mem_gb / 2)) && jobs=$((mem_gb / 2))
((jobs < 1)) && jobs=1
targets=(cuda_test engine_bench)
step configure 120 cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DDEEPSEARCH_WITH_GRPC=OFF -DDEEPSEARCH_USE_CCACHE=OFF -DDEEPSEARCH_WERROR=OFF \
  -DCMAKE_PREFIX_PATH="$sysroot/usr;$torch_dir" -DPKG_CONFIG_EXECUTABLE="$sysroot/usr/bin/pkgconf"
# Every library besides torch must come from the unpacked packages: a path into the system's
# copy would mean the check passed here only because this machine has them installed.
if [[ -f $build/build.ninja ]]; then
  leaks=$(grep -oE "(^| |-I|-isystem )/usr/(include|lib/$arch)/(absl|spdlog|fmt|yaml-cpp|gtest|gmock|benchmark|gloo|CLI|nlohmann|lib(absl|spdlog|fmt|yaml-cpp|gtest|gmock|benchmark|pcre2|utf8proc|zstd|xxhash|sqlite3))[^ ]*" \
    "$build/build.ninja" | sort -u | head -5 || true)
  if [[ -n $leaks ]]; then
    failures=$((failures + 1))
    note "configure: FAILED: the build uses the system's copies, not the packages': $leaks"
  fi
fi
# 420 s is the 16-core machine's budget; two cores here take several times longer.
build_limit=420
[[ $mode == dry-run ]] && build_limit=3600
step build "$build_limit" cmake --build "$build" --parallel "$jobs" --target "${targets[@]}"

# The CUDA tests: CPU vs CUDA logits and sampling, the engine on CUDA, a Tree-GRPO step on CUDA
# vs CPU, a 1-rank NCCL reduction. Without a GPU they skip, except the one that checks that.
step cuda_test 240 "$build/tests/cuda_test" --gtest_output="xml:$out/cuda_test.xml"
if [[ -f $out/cuda_test.log ]]; then
  note "cuda_test: $(grep -E '^\[  (PASSED|SKIPPED|FAILED)  ? *\] [0-9]+ tests?' "$out/cuda_test.log" | tr '\n' ' ')"
fi

# The engine benchmark. On the GPU: a Qwen2.5-1.5B-shaped random bf16 model, the MCTS-shaped
# workload, then plain batched decoding at batch 256, as a share of the copy bandwidth measured
# in the same run. Here: the small CPU model, to check the flow.
if [[ $mode == run ]]; then
  bench_args=(--device cuda --dtype bfloat16 --preset qwen2.5-1.5b --vocab 151936
    --trees 64 --width 8 --depth 16 --step 32 --expansions 16 --prompt 64
    --kv-budget-mb 16384 --max-batch 256 --plain-batch 256)
else
  bench_args=(--device cpu --dtype float32 --preset tiny --trees 4 --width 4 --depth 4 --step 8
    --expansions 4 --prompt 16 --plain-batch 8)
fi
step engine_bench 300 "$build/bench/engine_bench" "${bench_args[@]}"
if [[ -f $out/engine_bench.log ]]; then
  cp "$out/engine_bench.log" "$out/engine_bench_${mode}.txt"
  grep -E 'copy bandwidth|sgemm ceiling|^model:|engine / plain|reads .* per step|tokens computed /' \
    "$out/engine_bench.log" | sed 's/^/  /' | tee -a "$summary" || true
fi

note "gpu_check: $failures failure(s), $((SECONDS - start)) s in all; results in $out"
((failures == 0))
