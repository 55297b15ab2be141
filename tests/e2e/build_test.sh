#!/usr/bin/env bash
# `llmserve build` end to end on the embedded default model: the engine directory serves the same
# greedy text as the checkpoint (generate and serve), a re-run is "up to date", a different build
# over it is refused without --force, progress goes to stderr as log lines, a tp=2 engine takes
# its split from the manifest, `--engine-cache` builds once when three processes start together
# and reuses it after, and engines for another target or builder version are refused with how to
# rebuild.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BIN=${LLMSERVE:?path of the llmserve binary}
SRC=${LLMSERVE_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
MODEL=$SRC/models/default
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT

gen() { "$BIN" generate --device cpu --num-kv-blocks 64 --prompt "ROMEO:" --max-tokens 24 --temperature 0 --ignore-eos "$@" 2>>"${GEN_LOG:-$WORK/gen.log}"; }
want=$(gen --model "$MODEL")
check "the checkpoint generates" [ -n "$want" ]

# ---------- build ----------
out=$("$BIN" build --model "$MODEL" --output "$WORK/engine" --device cpu --progress log 2> "$WORK/build.log")
rc=$?
check "build exits 0" [ $rc == 0 ]
check "build prints the engine directory" [ "$out" == "$WORK/engine" ]
check "  ... with a manifest, a rank file and the tokenizer" \
  [ -f "$WORK/engine/llmserve-engine.json" ] && [ -f "$WORK/engine/rank-0.safetensors" ] && [ -f "$WORK/engine/vocab.json" ]
check "  ... progress as log lines on stderr" grep -q "wrote rank-0.safetensors" "$WORK/build.log"
check "  ... manifest: target, dtype, quantization, parallel, checkpoint hash" python3 - "$WORK/engine/llmserve-engine.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
assert m["format"] == "llmserve-engine" and m["builder_version"] >= 1, m
assert m["target"] == {"device": "cpu", "gpu_arch": ""}, m["target"]
assert m["dtype"] == "F32" and m["quantization"]["method"] == "none"
assert m["parallel"] == {"tp": 1, "pp": 1}
assert len(m["source"]["checkpoint_hash"]) == 64 and len(m["key"]) == 64
assert m["ranks"][0]["file"] == "rank-0.safetensors" and m["ranks"][0]["num_tensors"] > 0
assert "config.json" in m["copied_files"] and "model.safetensors" not in m["copied_files"]
PY
check "the engine generates the checkpoint's text" [ "$(gen --model "$WORK/engine")" == "$want" ]
"$BIN" build --model "$MODEL" --output "$WORK/engine" --device cpu 2> "$WORK/again.log" > /dev/null
check "a re-run is up to date" grep -q "is up to date" "$WORK/again.log"
"$BIN" build --model "$MODEL" --output "$WORK/engine" --device cpu --quantization int8-wo > /dev/null 2> "$WORK/refused.log"
rc=$?
check "another build over it is refused (exit 1)" [ $rc == 1 ]
check "  ... saying --force" grep -q "holds another engine.*--force" "$WORK/refused.log"
"$BIN" build --model "$MODEL" --output "$WORK/engine" --device cpu --dtype float16 > /dev/null 2> "$WORK/dtype.log"
check "cpu --dtype float16 is refused naming --dtype" grep -q "error: --dtype" "$WORK/dtype.log"
"$BIN" build --model "$WORK/engine" --output "$WORK/engine2" --device cpu > /dev/null 2> "$WORK/twice.log"
check "building from an engine is refused" grep -q "is a built engine already" "$WORK/twice.log"

# ---------- a tp=2 engine: two rank files, the split taken from the manifest ----------
"$BIN" build --model "$MODEL" --output "$WORK/tp2" --device cpu --tp 2 --progress none > /dev/null 2>&1
check "tp=2 build writes two rank files" [ -f "$WORK/tp2/rank-0.safetensors" ] && [ -f "$WORK/tp2/rank-1.safetensors" ]
check "tp=2 engine generates the same text (no --tp given)" [ "$(gen --model "$WORK/tp2")" == "$want" ]
gen --model "$WORK/tp2" --tp 4 > /dev/null
check "tp=2 engine refuses --tp 4" grep -q "built for --tp 2" "$WORK/gen.log"

# ---------- serve an engine ----------
PORT=$(free_port)
"$BIN" serve --model "$WORK/engine" --device cpu --host 127.0.0.1 --http-port "$PORT" --grpc-port 0 --metrics-port 0 \
  --num-kv-blocks 64 > "$WORK/serve.log" 2>&1 &
PIDS+=($!)
wait_ready "127.0.0.1:$PORT" $! || { cat "$WORK/serve.log"; exit 1; }
got=$(curl -s -X POST "127.0.0.1:$PORT/v2/models/engine/generate" \
  -d '{"text_input": "ROMEO:", "max_tokens": 24, "temperature": 0, "ignore_eos": true}' | json "d['text_output']")
check "serve --model ENGINE_DIR answers generate with the checkpoint's text" [ "$got" == "$want" ]
check "  ... and logs what the engine was built for" grep -q "built by llmserve .* for cpu F32" "$WORK/serve.log"

# ---------- --engine-cache: three processes at once build once ----------
cache_pids=()
for i in 1 2 3; do
  GEN_LOG=$WORK/cached$i.log gen --model "$MODEL" --engine-cache "$WORK/cache" > "$WORK/cached$i.out" &
  cache_pids+=($!)
done
wait "${cache_pids[@]}"
built=$(grep -l "built engine '" "$WORK"/cached{1,2,3}.log | wc -l)
check "three processes sharing a cache: one builds ($built)" [ "$built" == 1 ]
same=yes
for i in 1 2 3; do [ "$(cat "$WORK/cached$i.out")" == "$want" ] || same=no; done
check "  ... all three generate the checkpoint's text" [ $same == yes ]
check "  ... one engine directory in the cache" [ "$(find "$WORK/cache" -mindepth 1 -maxdepth 1 -type d | wc -l)" == 1 ]
GEN_LOG=$WORK/cached4.log gen --model "$MODEL" --engine-cache "$WORK/cache" > /dev/null
check "a later start reuses the cached engine" grep -q "engine cache: using" "$WORK/cached4.log"

# ---------- engines for another target or builder version ----------
"$BIN" build --model "$MODEL" --output "$WORK/cuda" --device cuda --gpu-arch sm_90 --progress none > /dev/null 2>&1
check "a cuda engine builds without a GPU" [ -f "$WORK/cuda/rank-0.safetensors" ]
gen --model "$WORK/cuda" > /dev/null
check "  ... and is refused on the cpu with how to rebuild" grep -q "built for --device cuda, not cpu; rebuild it: llmserve build" "$WORK/gen.log"
python3 - "$WORK/engine/llmserve-engine.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1])); m["builder_version"] = 999; json.dump(m, open(sys.argv[1], "w"))
PY
gen --model "$WORK/engine" > /dev/null
check "an engine of another builder version is refused with how to rebuild" \
  grep -q "engine format 999.*rebuild it: llmserve build" "$WORK/gen.log"
finish build
