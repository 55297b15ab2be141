#!/usr/bin/env bash
# CPU figures of docs/performance.md, in one run on the build machine:
#  1. single-stream prefill and decode tok/s of a GPT-2-124M-shaped model (random fp16 weights);
#  2. offline throughput with in-flight batching against the same requests one at a time.
# Usage: scripts/bench_cpu.sh [BUILD_DIR]   (default build/release; builds the model in /tmp)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build/release}/llmserve
MODEL=/tmp/llmserve-gpt2-124m
[ -f $MODEL/model.safetensors ] || /usr/bin/python3 scripts/make_random_model.py --preset gpt2-124m --dtype f16 --out $MODEL
echo "== machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(date -u +%F)"
PROMPT=$(/usr/bin/python3 -c "print('the quick brown fox jumps over the lazy dog ' * 56)")  # 505 tokens
echo "== 1. GPT-2-124M shape, one request: 505-token prompt, 128 tokens out, greedy"
for i in 1 2; do
  $BIN --log-level warn generate --model $MODEL --prompt "$PROMPT" --max-tokens 128 --ignore-eos --temperature 0 >/dev/null
done
echo "== 1b. same, short prompt (decode at small context)"
$BIN --log-level warn generate --model $MODEL --prompt "Hello" --max-tokens 128 --ignore-eos --temperature 0 >/dev/null
echo "== 2. offline, default model: 64 requests x 64 in / 64 out, batched vs one at a time"
$BIN --log-level warn bench offline --num-requests 64 --input-len 64 --output-len 64 --baseline-sequential
echo "== 3. offline, GPT-2-124M shape: 16 requests x 128 in / 32 out, batched vs one at a time"
$BIN --log-level warn bench offline --model $MODEL --num-requests 16 --input-len 128 --output-len 32 --baseline-sequential
