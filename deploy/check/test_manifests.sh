#!/usr/bin/env bash
# The offline validation of deploy/k8s, as a test: every shipped kustomization must pass
# check_manifests.py, and every deliberately broken one in broken/ must fail with the
# message its kustomization.yaml names on its first line.
#
#   deploy/check/test_manifests.sh build/cli/deepsearch
set -euo pipefail
deepsearch=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.."
python=${DEEPSEARCH_PYTHON:-$here/../../.venv/bin/python}
command -v kubectl >/dev/null ||
  { echo "test_manifests: kubectl is missing (scripts/setup.sh installs it)" >&2; exit 1; }
"$python" -c "import kubernetes_validate, yaml" 2>/dev/null ||
  { echo "test_manifests: $python lacks kubernetes-validate (scripts/setup.sh makes .venv)" >&2; exit 1; }

check() { "$python" "$here/check_manifests.py" --deepsearch "$deepsearch" "$@"; }

check deploy/k8s/base deploy/k8s/overlays/local deploy/k8s/overlays/gpu-cluster

# The broken overlays in one run of the checker (it caches what they share with the others);
# each must be refused with its own message, on lines that name its directory.
broken=("$here"/broken/*/)
if out=$(check "${broken[@]}" 2>&1); then
  echo "FAIL: the checker passed every overlay in broken/" >&2; exit 1
fi
failures=0
for dir in "${broken[@]}"; do
  expected=$(head -1 "$dir/kustomization.yaml" | sed -n 's/.*must report "\(.*\)"\.$/\1/p')
  [[ -n "$expected" ]] || { echo "test_manifests: $dir names no expected message" >&2; exit 1; }
  if ! grep -F -- "$dir" <<<"$out" | grep -qF -- "$expected"; then
    echo "FAIL: $dir: expected \"$expected\", got:" >&2
    grep -F -- "$dir" <<<"$out" >&2 || true
    failures=$((failures + 1))
  else
    echo "broken/$(basename "$dir"): refused as expected ($expected)"
  fi
done
exit $((failures > 0))
