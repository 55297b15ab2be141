#!/usr/bin/env bash
# Differential test of llmserve's tokenizer against js-tiktoken, gpt-3-encoder and Hugging Face
# tokenizers (see tests/tokenizer_diff/README.md): tokenizer_diff.mjs (byte-level BPE), then
# sentencepiece_diff.mjs (SentencePiece-style tokenizer.json files). Exits 0 when every id, decode
# and token byte matches in both.
#
# The C++ side is tests/tokenizer_diff/tokenize_driver: $TOKENIZE_DRIVER if set, else the one in
# the build tree that holds $LLMSERVE (built there on demand). npm packages are installed from
# the lockfile on first use. Extra arguments go to the node script (--seed N, --random N, --bench).
set -euo pipefail

src="${LLMSERVE_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
diff_dir="$src/tests/tokenizer_diff"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "tokenizer_diff_test: node and npm are required" >&2
  exit 1
fi

driver="${TOKENIZE_DRIVER:-}"
if [[ -z "$driver" ]]; then
  if [[ -z "${LLMSERVE:-}" ]]; then
    echo "tokenizer_diff_test: set TOKENIZE_DRIVER or LLMSERVE (the llmserve binary in a build tree)" >&2
    exit 1
  fi
  build_dir="$(dirname "$LLMSERVE")"
  driver="$build_dir/tests/tokenizer_diff/tokenize_driver"
  if [[ ! -x "$driver" && -f "$build_dir/CMakeCache.txt" ]]; then
    cmake --build "$build_dir" --target tokenize_driver >&2
  fi
fi
if [[ ! -x "$driver" ]]; then
  echo "tokenizer_diff_test: no tokenize_driver at $driver (build target tokenize_driver)" >&2
  exit 1
fi

if [[ ! -d "$diff_dir/node_modules/js-tiktoken" || ! -d "$diff_dir/node_modules/gpt-3-encoder" ||
      ! -d "$diff_dir/node_modules/tokenizers" ]]; then
  (cd "$diff_dir" && { npm ci --no-audit --no-fund || npm install --no-audit --no-fund; }) >&2
fi

status=0
node "$diff_dir/tokenizer_diff.mjs" --driver "$driver" "$@" || status=1
node "$diff_dir/sentencepiece_diff.mjs" --driver "$driver" "$@" || status=1
exit "$status"
