#!/usr/bin/env bash
# `llmserve bench offline` on a fixture model: every request completes with exactly the asked
# number of tokens, latencies are ordered (TTFT <= e2e), and the JSON export has every field.
set -euo pipefail
BIN=${LLMSERVE:?}
SRC=${LLMSERVE_SOURCE_DIR:?}
out=$("$BIN" --log-level warn bench offline --model "$SRC/tests/data/models/llama-tiny" --num-requests 12 \
      --input-len 20 --output-len 8 --max-batch-size 4 --max-num-tokens 32 --num-kv-blocks 40 \
      --baseline-sequential --json - | sed -n '/^{/,$p')
python3 - "$out" <<'PY'
import json, sys
doc = json.loads(sys.argv[1])
modes = {r["mode"]: r for r in doc["results"]}
assert set(modes) == {"batched", "sequential"}, modes.keys()
for r in modes.values():
    assert r["num_errors"] == 0, r
    assert r["num_output_tokens"] == 12 * 8, r
    assert r["num_input_tokens"] == 12 * 20, r
    assert 0 < r["ttft"]["p50_ms"] <= r["e2e"]["p50_ms"], r
    assert r["ttft"]["p99_ms"] <= r["e2e"]["p99_ms"] + 1e-9, r
    assert r["itl"]["p50_ms"] > 0 and r["output_tokens_per_s"] > 0, r
    assert abs(r["total_tokens_per_s"] - r["output_tokens_per_s"] * 28 / 8) < 1e-6 * r["total_tokens_per_s"], r
print("bench offline: ok")
PY
err=$("$BIN" bench offline --model "$SRC/tests/data/models/llama-tiny" --num-requests 0 2>&1 >/dev/null) && exit 1
grep -q -- "--num-requests" <<<"$err"
echo "1 passed, 0 failed"
