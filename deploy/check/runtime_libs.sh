#!/usr/bin/env bash
# Keeps the runtime stage of deploy/Dockerfile complete: every shared library the deepsearch
# binary links directly (its ELF NEEDED entries) must come from a Debian package that the
# stage installs (between its runtime-packages-begin/-end markers), and so must OpenBLAS.
#
# A binary built against a pip torch (the CUDA build) is checked against deploy/Dockerfile.cuda,
# which copies the wheel's libraries into /opt/deepsearch/lib: BUNDLED names the folder they
# come from here (the Python environment's site-packages), and the libraries under it count
# as shipped by that copy instead of by a package.
#
#   deploy/check/runtime_libs.sh build/cli/deepsearch [deploy/Dockerfile]
#   deploy/check/runtime_libs.sh build-cuda/cli/deepsearch deploy/Dockerfile.cuda BUNDLED
set -euo pipefail
binary=$1
dockerfile=${2:-$(dirname "$0")/../Dockerfile}
bundled=${3:+$(realpath "$3")}
if [[ -n "$bundled" ]] && ! grep -q "/opt/deepsearch/lib" "$dockerfile"; then
  echo "runtime_libs: $dockerfile copies no libraries into /opt/deepsearch/lib" >&2
  exit 1
fi
listed=$(sed -n '/runtime-packages-begin/,/runtime-packages-end/p' "$dockerfile" |
  grep -oE '^ +[a-z0-9][a-z0-9.+-]+ *\\?$' | tr -d ' \\' | sort -u)
[[ -n "$listed" ]] || { echo "runtime_libs: no package list between the markers of $dockerfile" >&2; exit 1; }

missing=0
bundled_n=0
needed=$(readelf -d "$binary" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
libs=$(ldd "$binary")
paths=()
for lib in $needed; do
  path=$(awk -v l="$lib" '$1 == l && $3 ~ /^\// {print $3}' <<<"$libs")
  [[ -n "$path" ]] && paths+=("$path" "$(realpath "$path")")
done
# One dpkg query for all of them: dpkg knows a file by the path its package installed it at,
# /lib or /usr/lib (usrmerge), so both forms are asked. Lines are "package[:arch]: path".
owners=$(dpkg -S "${paths[@]}" 2>/dev/null || true)
for lib in $needed; do
  path=$(awk -v l="$lib" '$1 == l && $3 ~ /^\// {print $3}' <<<"$libs")
  [[ -n "$path" ]] || continue  # the dynamic loader and the vDSO
  if [[ -n "$bundled" && "$(realpath "$path")" == "$bundled"/* ]]; then
    bundled_n=$((bundled_n + 1))
    continue
  fi
  package=$(awk -F': ' -v a="$path" -v b="$(realpath "$path")" '$2 == a || $2 == b {print $1; exit}' \
    <<<"$owners" | cut -d: -f1)
  [[ -n "$package" ]] || { echo "runtime_libs: $lib ($path) belongs to no Debian package" >&2; missing=1; continue; }
  case "$package" in libc6|libgcc-s1|libstdc++6) continue ;; esac  # in every Debian image
  if ! grep -qx "$package" <<<"$listed"; then
    echo "runtime_libs: $lib comes from $package, which $dockerfile does not install" >&2
    missing=1
  fi
done
# Debian's LibTorch calls the system BLAS; a wheel's LibTorch brings its own.
if [[ -z "$bundled" ]]; then
  grep -qx libopenblas0-openmp <<<"$listed" ||
    { echo "runtime_libs: $dockerfile does not install libopenblas0-openmp" >&2; missing=1; }
fi
((missing == 0)) && echo "runtime_libs: the $(wc -l <<<"$listed") packages of $dockerfile" \
  "${bundled:+and its $bundled_n bundled libraries }cover the $(wc -w <<<"$needed") libraries $binary links"
exit $missing
