#!/usr/bin/env bash
# The runtime stage of deploy/Dockerfile without a container daemon: a fresh Debian 12
# bookworm minbase root (what debian:bookworm-slim is), the stage's package list (read from
# the Dockerfile's runtime-packages markers), its user, and the binary; then, as that user
# with the image's environment, `deepsearch version`, a model created and sampled from, and a
# cache service that answers its health check.
#
#   sudo deploy/check/emulate_runtime_stage.sh build/cli/deepsearch [ROOT_DIR]
#
# Needs root, debootstrap and Debian's package archive (the one this machine's apt uses,
# scripts/apt_archive.sh). ROOT_DIR defaults to /tmp/deepsearch-runtime-stage.
set -euo pipefail
binary=$(realpath "$1")
root=${2:-/tmp/deepsearch-runtime-stage}
dockerfile=$(cd "$(dirname "$0")/.." && pwd)/Dockerfile
archive=$("$(dirname "$0")/../../scripts/apt_archive.sh" bookworm)
[[ $(id -u) -eq 0 ]] || { echo "run as root" >&2; exit 2; }
packages=$(sed -n '/runtime-packages-begin/,/runtime-packages-end/p' "$dockerfile" |
  grep -oE '^ +[a-z0-9][a-z0-9.+-]+ *\\?$' | tr -d ' \\' | tr '\n' ' ')

rm -rf "$root"
mkdir -p "$root"
t0=$(date +%s)
debootstrap --variant=minbase bookworm "$root" "$archive" >"$root.log" 2>&1
cp /etc/resolv.conf "$root/etc/resolv.conf"
mount -t proc proc "$root/proc"
trap 'umount "$root/proc" 2>/dev/null || true' EXIT
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
in_root bash -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
  --no-install-recommends $packages >/dev/null" >>"$root.log" 2>&1
in_root bash -c 'groupadd --gid 10001 deepsearch && useradd --uid 10001 --gid 10001 \
  --home-dir /var/lib/deepsearch --create-home --shell /usr/sbin/nologin deepsearch'
install -m 755 "$binary" "$root/usr/local/bin/deepsearch"
echo "runtime root: $(($(date +%s) - t0)) s, $(du -sh --exclude=proc "$root" | cut -f1), packages: $packages"

as_user() {
  chroot --userspec=10001:10001 "$root" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin \
    HOME=/var/lib/deepsearch GLIBC_TUNABLES=glibc.malloc.hugetlb=1 bash -c "cd /var/lib/deepsearch; $1"
}
as_user 'deepsearch version'
as_user 'deepsearch model init --preset tiny --out model && deepsearch generate --model model --prompt "<bos>12+34=" --max-tokens 4 --seed 1 | tail -2'
as_user 'deepsearch cache --listen 127.0.0.1:50952 --store-dir cache >cache.log 2>&1 & pid=$!
  for i in $(seq 50); do deepsearch health 127.0.0.1:50952 --timeout 1 2>/dev/null && break; sleep 0.2; done
  kill -TERM $pid; wait $pid; rc=$?; echo "cache stopped by SIGTERM: exit $rc"; exit $rc'
echo "emulate_runtime_stage: OK"
