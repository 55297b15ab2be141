#!/usr/bin/env bash
# Cold start: process start → /v2/health/ready answers 200, for a checkpoint and for the engine
# `llmserve build` makes of it, alternating, RUNS times each (weights in the page cache: each file
# is read once before the first run). Prints every run, the medians, and the engine-ready breakdown
# line of the last run of each. Works for any device:
#   scripts/bench_start.sh BIN MODEL_DIR [RUNS] [-- serve/build flags, e.g. --device cuda]
#   scripts/bench_start.sh build/release/llmserve /tmp/gpt2-124m 5 -- --device cpu
set -euo pipefail
BIN=$1 MODEL=$2 RUNS=${3:-5}
shift $(( $# >= 3 ? 3 : $# ))
[ "${1:-}" == "--" ] && shift
FLAGS=("$@")
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
ENGINE=$WORK/engine
"$BIN" build --model "$MODEL" --output "$ENGINE" --progress none "${FLAGS[@]}" > /dev/null
cat "$MODEL"/*.safetensors "$ENGINE"/*.safetensors > /dev/null  # both in the page cache
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

start_once() {  # start_once DIR LOG -> seconds to ready
  local t0 t1 pid
  t0=$(date +%s.%N)
  "$BIN" serve --model "$1" --host 127.0.0.1 --http-port "$port" --grpc-port -1 --metrics-port -1 "${FLAGS[@]}" \
    > "$2" 2>&1 &
  pid=$!
  until [ "$(curl -s -o /dev/null -w '%{http_code}' "127.0.0.1:$port/v2/health/ready")" == 200 ]; do
    kill -0 $pid 2> /dev/null || { cat "$2" >&2; exit 1; }
    sleep 0.01
  done
  t1=$(date +%s.%N)
  kill -TERM $pid; wait $pid || true
  python3 -c "print(f'{$t1 - $t0:.3f}')"
}

declare -a ckpt eng
for i in $(seq "$RUNS"); do
  ckpt+=("$(start_once "$MODEL" "$WORK/ckpt.log")")
  eng+=("$(start_once "$ENGINE" "$WORK/engine.log")")
  echo "run $i: checkpoint ${ckpt[-1]} s, engine ${eng[-1]} s"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
echo "median start -> ready: checkpoint $(median "${ckpt[@]}") s, engine $(median "${eng[@]}") s"
echo "checkpoint: $(grep -o 'engine ready in.*' "$WORK/ckpt.log")"
echo "engine:     $(grep -o 'engine ready in.*' "$WORK/engine.log")"
