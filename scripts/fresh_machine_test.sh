#!/usr/bin/env bash
# Checks the README's test command the way a new user meets it: a freshly bootstrapped
# Debian 12 (minbase) root filesystem with nothing else installed, a clone of this
# repository's HEAD, and `./scripts/test.sh` run inside it as root.
#
#   sudo scripts/fresh_machine_test.sh [ROOT_DIR]      (default /tmp/deepsearch-fresh)
#
# Needs root, debootstrap (apt-get install debootstrap) and Debian's package archive.
# Prints the time of each phase; the exit code is the test command's. The log is
# ROOT_DIR.log.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
root=${1:-/tmp/deepsearch-fresh}
log="$root.log"
[[ $(id -u) -eq 0 ]] || { echo "run as root" >&2; exit 2; }
command -v debootstrap >/dev/null || { echo "install debootstrap first" >&2; exit 2; }

rm -rf "$root"
mkdir -p "$root"
t0=$(date +%s)
debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian > "$log" 2>&1
echo "debootstrap: $(($(date +%s) - t0)) s"
git clone -q "$repo" "$root/root/deepsearch"
cp /etc/resolv.conf "$root/etc/resolv.conf"
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
cleanup() { umount "$root/dev" "$root/proc" 2>/dev/null || true; }
trap cleanup EXIT

t0=$(date +%s)
set +e
chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin \
  bash -c 'cd /root/deepsearch && ./scripts/test.sh' >> "$log" 2>&1
rc=$?
set -e
echo "test command: exit $rc after $(($(date +%s) - t0)) s (log: $log)"
grep -E "tests passed|tests failed|^test.sh:" "$log" | tail -2 || true
exit $rc
