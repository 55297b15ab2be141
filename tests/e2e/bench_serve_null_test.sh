#!/usr/bin/env bash
# `serve --device null` (no model compute, zero logits) under `bench serve` with many streams:
# greedy output is token 0 repeated, every one of 256 concurrent streams runs to max_tokens, and
# the generator reports its own CPU use.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BIN=${LLMSERVE:?path of the llmserve binary}
SRC=${LLMSERVE_SOURCE_DIR:?}
export LLMSERVE_DEFAULT_MODEL=${LLMSERVE_DEFAULT_MODEL:-$SRC/models/default}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT
ok() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); p=d['points']; sys.exit(0 if ($2) else 1)" "$1"; }

PORT=$(free_port)
"$BIN" serve --device null --http-port "$PORT" --grpc-port -1 --metrics-port -1 --host 127.0.0.1 \
  --num-kv-blocks 4096 --max-batch-size 256 --max-num-tokens 4096 > "$WORK/server.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 300); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "127.0.0.1:$PORT/v2/health/ready")" == 200 ] && break
  sleep 0.2
done

# GPT-2's token 0 is "!".
got=$(curl -s "127.0.0.1:$PORT/v2/models/default/generate" -d '{"text_input": "hi", "max_tokens": 8, "temperature": 0}' |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["text_output"])')
check "greedy output of zero logits is token 0" [ "$got" == "!!!!!!!!" ]

"$BIN" --log-level warn bench serve --port "$PORT" --no-progress --concurrency 256 --num-requests 512 \
  --input-len 16 --output-len 16 --temperature 0 --json "$WORK/n.json" > "$WORK/n.out" 2>&1
check "256 streams: no errors" ok "$WORK/n.json" "p[0]['num_errors'] == 0 and p[0]['num_ok'] == 512"
check "256 streams: all in flight at once" ok "$WORK/n.json" "p[0]['max_in_flight'] == 256"
check "256 streams: every token, usage-exact" ok "$WORK/n.json" \
  "p[0]['num_output_tokens'] == 512 * 16 and p[0]['num_output_len_mismatches'] == 0 and p[0]['num_input_len_mismatches'] == 0"
check "generator CPU reported" ok "$WORK/n.json" "0 < p[0]['client_cpu_s'] and 0 < p[0]['client_cpu_util']"

finish
