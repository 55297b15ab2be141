#!/usr/bin/env bash
# Fails when a C++/CUDA source of the tree differs from clang-format's output (.clang-format at the
# root); `make format` fixes it. Run by `make test` as the ctest `format_check`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v clang-format > /dev/null || { echo "clang-format not installed (scripts/install_deps.sh --test)"; exit 1; }
if git rev-parse --is-inside-work-tree > /dev/null 2>&1; then
  mapfile -t files < <(git ls-files 'src/*.h' 'src/*.cpp' 'src/*.cu' 'src/*.cuh' 'tests/*.h' 'tests/*.cpp')
else
  mapfile -t files < <(find src tests -name '*.h' -o -name '*.cpp' -o -name '*.cu' -o -name '*.cuh' | grep -v node_modules)
fi
bad=()
for f in "${files[@]}"; do
  [ -f "$f" ] || continue
  clang-format --dry-run --Werror "$f" > /dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -gt 0 ]; then
  echo "${#bad[@]} of ${#files[@]} files are not clang-formatted (run: make format):"
  printf '  %s\n' "${bad[@]}"
  exit 1
fi
echo "all ${#files[@]} files clang-formatted"
