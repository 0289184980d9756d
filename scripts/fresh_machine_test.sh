#!/usr/bin/env bash
# Checks one of the README's two commands the way a new user meets it: a freshly
# bootstrapped Debian 12 (minbase) root filesystem with nothing else installed, a clone of
# this repository's HEAD, and the command run inside it as root.
#
#   sudo scripts/fresh_machine_test.sh [ROOT_DIR] [test|run]
#     test (default): ./scripts/test.sh       run: ./scripts/run.sh (the embedded default run)
#   ROOT_DIR defaults to /tmp/deepsearch-fresh.
#
# Needs root, debootstrap (apt-get install debootstrap) and Debian's package archive: the one
# this machine's apt uses (scripts/apt_archive.sh), and PyPI as this machine's pip reaches it
# (its /etc/pip.conf and PIP_* settings, its certificate authorities and proxy, copied in).
#
# The root has no CUDA toolkit, so test.sh skips the CUDA configuration there and says so; the
# CPU configuration, setup (.venv included) and the whole suite run as on any machine.
# Prints the time of each phase; the exit code is the command's. The log is ROOT_DIR.log.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
root=${1:-/tmp/deepsearch-fresh}
which=${2:-test}
case "$which" in
  test) command=./scripts/test.sh ;;
  run) command=./scripts/run.sh ;;
  *) echo "unknown command '$which' (test or run)" >&2; exit 2 ;;
esac
log="$root.log"
[[ $(id -u) -eq 0 ]] || { echo "run as root" >&2; exit 2; }
command -v debootstrap >/dev/null || { echo "install debootstrap first" >&2; exit 2; }

rm -rf "$root"
mkdir -p "$root"
t0=$(date +%s)
archive=$("$repo/scripts/apt_archive.sh" bookworm)
debootstrap --variant=minbase bookworm "$root" "$archive" > "$log" 2>&1
echo "debootstrap: $(($(date +%s) - t0)) s"
git clone -q "$repo" "$root/root/deepsearch"
cp /etc/resolv.conf "$root/etc/resolv.conf"
# The host's own certificate authorities (a network proxy's, say), so HTTPS through the same
# network (pip's downloads) works inside too; setup's ca-certificates picks them up. And pip's
# configuration: its file, and the PIP_* and proxy settings of this environment.
extra_env=()
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
fi
[[ -f /etc/pip.conf ]] && cp /etc/pip.conf "$root/etc/pip.conf"
while IFS= read -r var; do
  case "$var" in
    PIP_FIND_LINKS=*) ;;  # a folder of this machine, absent inside
    PIP_*=* | [Hh][Tt][Tt][Pp]_[Pp][Rr][Oo][Xx][Yy]=* | [Hh][Tt][Tt][Pp][Ss]_[Pp][Rr][Oo][Xx][Yy]=* | [Nn][Oo]_[Pp][Rr][Oo][Xx][Yy]=*)
      extra_env+=("$var") ;;
  esac
done < <(env)
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount --bind /dev "$root/dev"
cleanup() { umount "$root/dev" "$root/sys" "$root/proc" 2>/dev/null || true; }
trap cleanup EXIT

t0=$(date +%s)
set +e
chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin "${extra_env[@]}" \
  bash -c "cd /root/deepsearch && $command" >> "$log" 2>&1
rc=$?
set -e
echo "$which command: exit $rc after $(($(date +%s) - t0)) s (log: $log)"
grep -E "tests passed|tests failed|^test.sh:|held-out|^deepsearch run" "$log" | tail -6 || true
exit $rc
