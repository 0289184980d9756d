#!/usr/bin/env bash
# Runs clang-tidy (config: .clang-tidy) over project sources, using the build folder's
# compile_commands.json. Torch translation units are slow to analyse; pass files to narrow:
#   scripts/tidy.sh                         every .cc of the project that does not use torch
#   scripts/tidy.sh common/core/config.cc   one file
# Debian's clang 14 cannot parse LibTorch 1.13's headers in C++20 mode (c10::IValue is
# incomplete where std::vector needs it), so translation units that include torch are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${BUILD_DIR:-build}"
[[ -f "$build_dir/compile_commands.json" ]] || { echo "tidy: run a build first ($build_dir)" >&2; exit 1; }
if (($# > 0)); then
  files=("$@")
else
  mapfile -t files < <(find actor bench cache_service cli common learner -name '*.cc' 2>/dev/null |
    xargs grep -L -E '#include [<"](ATen/|torch/|c10/|common/model/torch_pch.h)' | sort)
fi
# clang cannot read GCC's precompiled header: analyse with the PCH flags removed (every torch
# translation unit also includes common/model/torch_pch.h itself).
db=$(mktemp -d)
trap 'rm -rf "$db"' EXIT
sed -E 's# -include [^ ]*cmake_pch\.hxx##g; s# -Winvalid-pch##g; s# -fpch-preprocess##g' \
  "$build_dir/compile_commands.json" > "$db/compile_commands.json"
status=0
for f in "${files[@]}"; do
  clang-tidy -p "$db" --quiet "$f" 2>/dev/null || status=1
done
exit $status
