#!/usr/bin/env bash
# `llmserve bench serve --seed-client` against `llmserve serve`: the tutorial's client behaviour
# (env configuration, the 15 prompts in turn, one request at a time, "completed in", Prompt /
# Response blocks), and its exits: 1 without TRTLLM_MODEL_NAME, 255 after more than 30 failures.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BIN=${LLMSERVE:?path of the llmserve binary}
SRC=${LLMSERVE_SOURCE_DIR:?}
export LLMSERVE_DEFAULT_MODEL=${LLMSERVE_DEFAULT_MODEL:-$SRC/models/default}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$(free_port)
"$BIN" serve --http-port "$PORT" --grpc-port -1 --metrics-port -1 --host 127.0.0.1 --num-kv-blocks 64 \
  --model-alias gpt2 > "$WORK/server.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 300); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "127.0.0.1:$PORT/v2/health/ready")" == 200 ] && break
  sleep 0.2
done

start=$(date +%s.%N)
TRTLLM_MODEL_NAME=gpt2 TRTLLM_TRITON_URL="127.0.0.1:$PORT" TRTLLM_MAX_TOKENS=8 \
  "$BIN" bench serve --seed-client --num-requests 3 > "$WORK/out" 2> "$WORK/err"
rc=$?
elapsed=$(python3 -c "import time; print(time.time() - $start)")
check "3 requests then exit 0" [ $rc == 0 ]
check "prints the curl command line" grep -qF "> curl -X POST -s 127.0.0.1:$PORT/v2/models/gpt2/generate -d {\"text_input\": \"What is the market capitalization of NVIDIA?\", \"max_tokens\": 8} " "$WORK/out"
check "prompts in the script's order" [ "$(grep -A1 '^Prompt:' "$WORK/out" | grep -v -e '^Prompt:' -e '^--' | head -3 | tr -d '\n')" == \
  "  What is the market capitalization of NVIDIA?  What is the largest company in the world?  Who was the first president of France?" ]
check "three responses" [ "$(grep -c '^Response:' "$WORK/out")" == 3 ]
check "three 'completed in' lines" [ "$(grep -c '^  completed in .* seconds\.$' "$WORK/out")" == 3 ]
check "no failures" [ ! -s "$WORK/err" ]
check "250 ms pause after each request" python3 -c "import sys; sys.exit(0 if $elapsed >= 0.75 else 1)"
check "server saw the requests" [ "$(curl -s "127.0.0.1:$PORT/v2/models/gpt2/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["model_stats"][0]["inference_stats"]["success"]["count"])')" -ge 3 ]

TRTLLM_MODEL_NAME=gpt2 TRTLLM_TRITON_URL="127.0.0.1:$PORT" TRTLLM_MAX_TOKENS=x \
  "$BIN" bench serve --seed-client --num-requests 1 > "$WORK/out2" 2> "$WORK/err2"
check "bad TRTLLM_MAX_TOKENS is reported and ignored" grep -q "TRTLLM_MAX_TOKENS=x is not valid and will be ignored" "$WORK/err2"
check "  ... default 512 used" grep -q '"max_tokens": 512}' "$WORK/out2"

TRTLLM_TRITON_URL="127.0.0.1:$PORT" "$BIN" bench serve --seed-client --num-requests 1 > /dev/null 2> "$WORK/err3"
check "missing TRTLLM_MODEL_NAME exits 1" [ $? == 1 ]
check "  ... naming the variable" grep -q "TRTLLM_MODEL_NAME" "$WORK/err3"

# A model the server does not have: every reply lacks text_output; the 31st failure exits 255.
TRTLLM_MODEL_NAME=nope TRTLLM_TRITON_URL="127.0.0.1:$PORT" "$BIN" bench serve --seed-client > /dev/null 2> "$WORK/err4"
check "more than 30 failures exit 255" [ $? == 255 ]
check "  ... counting each failure" grep -q "Inference command has failed 31 time(s)." "$WORK/err4"
check "  ... and saying so" grep -q "fatal: Quitting after 30 failures." "$WORK/err4"

finish
