#!/usr/bin/env bash
# Installs every Debian 12 package this project needs to build, test and run, and the
# project's Python environment (.venv: the tools and the reference tests, python/).
#
# Idempotent: when everything is present it checks and exits in about a second
# (no apt-get update, no pip). Run as root, or as a user with sudo.
#
#   scripts/setup.sh            install what is missing
#   scripts/setup.sh --check    report what is missing, install nothing (exit 1 if any)
#   scripts/setup.sh --system   the Debian packages only, no .venv (container images)
set -euo pipefail
cd "$(dirname "$0")/.."

# One line per concern; keep each list sorted. A package the code starts using
# goes here in the same change.
PACKAGES=(
  # Toolchain and build.
  build-essential ccache cmake git ninja-build pkg-config
  # Formatting and static analysis (the format check and clang's -Wthread-safety analysis
  # run in the test suite), and libFuzzer with the sanitizers' runtimes (the fuzz smoke run).
  clang clang-format clang-tidy libclang-rt-14-dev
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
  # The project's Python environment (.venv) is made with Debian's Python 3.11; pip fetches
  # its wheels over HTTPS.
  ca-certificates python3-venv
  # docs/DEPLOY.md's certificate commands (tests/deploy/deploy_commands_test.py).
  openssl
  # The services' Prometheus endpoints (HTTP).
  libcpp-httplib-dev
)

# Commands that may already come from elsewhere (a newer kubectl): the Debian package is
# installed only when the command is missing. "command:package".
COMMANDS=(
  # deploy/: the Kubernetes manifests are rendered with `kubectl kustomize` and validated
  # offline (deploy/check, with the Python environment's kubernetes-validate).
  kubectl:kubernetes-client
)

check_only=0
python_env=1
for arg in "$@"; do
  case "$arg" in
    --check) check_only=1 ;;
    --system) python_env=0 ;;
    *) echo "setup: unknown argument '$arg' (--check, --system)" >&2; exit 2 ;;
  esac
done

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

# The Python environment: Debian's python3 -m venv, then exactly the packages of the lock file
# python/requirements.txt (versions and sha256 hashes; python/lock.py makes it from
# python/requirements.in), from the index pip's own configuration names. Made again only when
# the lock file changes. Most of its ~5 GB is torch 2.11 with its CUDA 13.0 libraries: the
# LibTorch of the CUDA build (scripts/test.sh) and the reference implementation of the
# parity tests (tests/reference).
venv=.venv
lock=python/requirements.txt
stamp=$venv/.deepsearch-requirements
python_note="no .venv (--system)"
if ((python_env)); then
  if ! cmp -s "$lock" "$stamp"; then
    if ((check_only)); then
      echo "setup: $venv is missing or older than $lock" >&2
      exit 1
    fi
    echo "setup: making the Python environment $venv from $lock (the first time: ~4 GB of wheels)"
    t0=$SECONDS
    rm -rf "$venv"
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --no-input --disable-pip-version-check --require-hashes \
      --no-deps -r "$lock"
    cp "$lock" "$stamp"
    echo "setup: $venv ready in $((SECONDS - t0)) s"
  fi
  python_note="$venv from $lock"
fi
echo "setup: all ${#PACKAGES[@]} packages and ${#COMMANDS[@]} commands present; BLAS = $blas; $python_note"
