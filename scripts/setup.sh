#!/usr/bin/env bash
# Installs every Debian 12 package this project needs to build, test and run.
#
# Idempotent: when everything is present it checks and exits in about a second
# (no apt-get update). Run as root, or as a user with sudo.
#
#   scripts/setup.sh            install what is missing
#   scripts/setup.sh --check    report what is missing, install nothing (exit 1 if any)
set -euo pipefail
cd "$(dirname "$0")/.."

# One line per concern; keep each list sorted. A package the code starts using
# goes here in the same change.
PACKAGES=(
  # Toolchain and build.
  build-essential ccache cmake git ninja-build pkg-config
  # Formatting and static analysis (the format check runs in the test suite).
  clang-format clang-tidy
  # LibTorch (CPU) with a fast BLAS; without OpenBLAS LibTorch falls back to the
  # reference BLAS, ~16x slower. Gloo headers are for c10d's ProcessGroupGloo.
  libgloo-dev libopenblas0-openmp libtorch-dev
  # gRPC, Protobuf, Abseil.
  libabsl-dev libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  # Tests and benchmarks.
  libbenchmark-dev libgmock-dev libgtest-dev
  # The multi-host test: network namespaces and veth pairs (ip), job results as JSON (jq).
  iproute2 jq
  # Parsing, CLI, logging, hashing.
  libcli11-dev libspdlog-dev libxxhash-dev libyaml-cpp-dev nlohmann-json3-dev
  # Text: PCRE2 for the Qwen2 pre-tokenizer regex, utf8proc for NFC normalisation.
  libpcre2-dev libutf8proc-dev
  # Compression of weight deltas.
  libzstd-dev
  # The cache service's durable solution store.
  libsqlite3-dev
  # `deepsearch run` draws its plots (PNG) with gnuplot.
  gnuplot-nox
  # The services' Prometheus endpoints (HTTP).
  libcpp-httplib-dev
)

# Commands that may already come from elsewhere (a newer kubectl, another Node.js): the
# Debian package is installed only when the command is missing. "command:package".
COMMANDS=(
  # deploy/: the Kubernetes manifests are rendered with `kubectl kustomize` and validated
  # offline by a Node.js checker (deploy/check).
  kubectl:kubernetes-client node:nodejs npm:npm
)

check_only=0
if [[ "${1:-}" == "--check" ]]; then check_only=1; fi

missing=()
for p in "${PACKAGES[@]}"; do
  # dpkg-query prints "install ok installed" for a package that is fully set up.
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
for c in "${COMMANDS[@]}"; do
  command -v "${c%%:*}" >/dev/null || missing+=("${c#*:}")
done

if ((${#missing[@]} > 0)); then
  if ((check_only)); then
    echo "setup: missing packages: ${missing[*]}" >&2
    exit 1
  fi
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "setup: not root and no sudo; run as root" >&2; exit 1; }
    SUDO="sudo"
  fi
  echo "setup: installing ${#missing[@]} package(s): ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Trap: LibTorch must resolve libblas.so.3 to OpenBLAS, not the reference BLAS.
blas=$(update-alternatives --query libblas.so.3-x86_64-linux-gnu 2>/dev/null | awk '/^Value:/{print $2}')
if [[ "$blas" != *openblas* ]]; then
  echo "setup: libblas.so.3 resolves to '${blas:-nothing}', expected OpenBLAS" >&2
  exit 1
fi

# The manifest checker's npm packages, pinned by deploy/check/package-lock.json (the npm
# registry is the one source besides Debian's archive). Installed again only when the lock
# file changes.
lock=deploy/check/package-lock.json
stamp=deploy/check/node_modules/.deepsearch-lock
if ! cmp -s "$lock" "$stamp"; then
  if ((check_only)); then
    echo "setup: deploy/check/node_modules is missing or older than its package-lock.json" >&2
    exit 1
  fi
  echo "setup: installing the manifest checker's npm packages (deploy/check)"
  (cd deploy/check && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  cp "$lock" "$stamp"
fi
echo "setup: all ${#PACKAGES[@]} packages and ${#COMMANDS[@]} commands present; BLAS = $blas"
