#!/usr/bin/env bash
# Differential test of llmserve's chat-template renderer against Python's jinja2 configured as
# Hugging Face transformers configures it (see tests/chat_template/chat_template_diff.py). Exits 0
# when every template x conversation renders byte-for-byte the same (or fails the same way).
#
# The C++ side is tests/chat_template/chat_template_driver: $CHAT_TEMPLATE_DRIVER if set, else
# the one in the build tree that holds $LLMSERVE (built there on demand). The reference is
# /usr/bin/python3 with Debian's python3-jinja2 ($PYTHON overrides). Extra arguments go to the
# Python script (-v lists every case).
set -euo pipefail

src="${LLMSERVE_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
python="${PYTHON:-/usr/bin/python3}"

if ! "$python" -c 'import jinja2' 2>/dev/null; then
  echo "chat_template_diff_test: $python with jinja2 is required (apt-get install python3-jinja2)" >&2
  exit 1
fi

driver="${CHAT_TEMPLATE_DRIVER:-}"
if [[ -z "$driver" ]]; then
  if [[ -z "${LLMSERVE:-}" ]]; then
    echo "chat_template_diff_test: set CHAT_TEMPLATE_DRIVER or LLMSERVE (the llmserve binary in a build tree)" >&2
    exit 1
  fi
  build_dir="$(dirname "$LLMSERVE")"
  driver="$build_dir/tests/chat_template/chat_template_driver"
  if [[ ! -x "$driver" && -f "$build_dir/CMakeCache.txt" ]]; then
    cmake --build "$build_dir" --target chat_template_driver >&2
  fi
fi
if [[ ! -x "$driver" ]]; then
  echo "chat_template_diff_test: no chat_template_driver at $driver (build target chat_template_driver)" >&2
  exit 1
fi

exec "$python" "$src/tests/chat_template/chat_template_diff.py" --driver "$driver" --source-dir "$src" "$@"
