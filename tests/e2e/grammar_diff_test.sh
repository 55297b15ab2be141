#!/usr/bin/env bash
# Differential test of llmserve's grammar engine against ajv and JavaScript's RegExp (see
# tests/grammar_diff/grammar_diff.mjs). Exits 0 when every generated document validates and
# every valid document is accepted.
#
# The C++ side is tests/grammar_diff/grammar_driver: $GRAMMAR_DRIVER if set, else the one in the
# build tree that holds $LLMSERVE (built there on demand). npm packages are installed from the
# lockfile on first use. Extra arguments go to the node script (--seed N, --count N).
set -euo pipefail

src="${LLMSERVE_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
diff_dir="$src/tests/grammar_diff"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "grammar_diff_test: node and npm are required" >&2
  exit 1
fi

driver="${GRAMMAR_DRIVER:-}"
if [[ -z "$driver" ]]; then
  if [[ -z "${LLMSERVE:-}" ]]; then
    echo "grammar_diff_test: set GRAMMAR_DRIVER or LLMSERVE (the llmserve binary in a build tree)" >&2
    exit 1
  fi
  build_dir="$(dirname "$LLMSERVE")"
  driver="$build_dir/tests/grammar_diff/grammar_driver"
  if [[ ! -x "$driver" && -f "$build_dir/CMakeCache.txt" ]]; then
    cmake --build "$build_dir" --target grammar_driver >&2
  fi
fi
if [[ ! -x "$driver" ]]; then
  echo "grammar_diff_test: no grammar_driver at $driver (build target grammar_driver)" >&2
  exit 1
fi

if [[ ! -d "$diff_dir/node_modules/ajv" || ! -d "$diff_dir/node_modules/json-schema-faker" ]]; then
  (cd "$diff_dir" && { npm ci --no-audit --no-fund || npm install --no-audit --no-fund; }) >&2
fi

# Under CI (CI set, the sanitizer build) 20 documents per schema instead of 40: the driver runs
# ~10x slower under ASan and this was CI's longest test (151 s); every schema is still covered.
count=()
if [[ -n "${CI:-}" && " $* " != *" --count "* ]]; then count=(--count 20); fi
exec node "$diff_dir/grammar_diff.mjs" --driver "$driver" --model "$src/models/default" "${count[@]}" "$@"
