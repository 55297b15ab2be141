#!/usr/bin/env bash
# Runs on the GPU machine (see scripts/gpu_dist.sh): the GPU tests, then the decode benchmarks
# of docs/performance.md — ours and the HF transformers baseline in the same call, same GPU.
# Writes logs and JSON under $OUT and prints a summary table last.
#
#   bash scripts/gpu_check.sh [tests] [gpt2] [llama8b] [variants] [profile] [batch] [ttft] [throughput] [overlap] [quant] [ncu] [gemv] [gemm] [moe] [moe-model] [families] [ncu-gemv] [kvfp8] [tprofile] [spec] [decode-ab] [idle] [sass] [nsys] [startup] [sanitize] [tp]
#   (default: tests gpt2 startup; tp needs a machine with 2+ GPUs, e.g. kind nvidia-h100-x2)
# Environment: GTEST_FILTER narrows the tests; OUTPUT_LEN (default 512) the decode length;
# GPU_CHECK_BUDGET_S (e.g. 480 under run's 600 s limit) skips the steps that would start after
# that many seconds, so the logs are still packed and come back.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
OUT=${OUT:-$root/out}
mkdir -p "$OUT"
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(tests gpt2 startup)
tar -C /tmp -xJf "$root/gpu_dist/dist.tar.xz" || { echo "no gpu_dist/dist.tar.xz: run scripts/gpu_dist.sh and carry gpu_dist"; exit 2; }
dist=/tmp/gpu_dist
export LD_LIBRARY_PATH=$dist/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
# NCCL is not shipped in gpu_dist (200 MiB): take the GPU machine's, from CUDA or PyTorch's wheel.
if [ ! -e /usr/local/cuda/lib64/libnccl.so.2 ] && ! ldconfig -p | grep -q libnccl.so.2; then
  nccl_dir=$(python3 -c "import nvidia.nccl, os; print(os.path.join(list(nvidia.nccl.__path__)[0], 'lib'))" 2>/dev/null)
  [ -e "$nccl_dir/libnccl.so.2" ] || nccl_dir=$(dirname "$(find / -name libnccl.so.2 -not -path '/proc/*' 2>/dev/null | head -1)")
  export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$nccl_dir
  echo "NCCL from $nccl_dir"
fi
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# The binaries were built in /work/main; tests find their data there.
if [ ! -e /work/main/tests/data ] && [ "$root" != /work/main ]; then mkdir -p /work && ln -sfn "$root" /work/main; fi
LLMSERVE=$dist/llmserve
summary=$OUT/summary.txt
: >"$summary"
note() { echo "$*" | tee -a "$summary"; }

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv,noheader | tee "$OUT/gpu.txt"

decode_ours() {  # model dir, label, output len, extra flags
  local model=$1 label=$2 n=$3
  shift 3
  # One request at a time (the batch-1 figure): sequential requests, each decoding n tokens.
  "$LLMSERVE" bench offline --device cuda --model "$model" --num-requests 3 --warmup 1 --input-len 32 \
    --output-len "$n" --max-batch-size 1 --json "$OUT/bench_$label.json" "$@" >"$OUT/bench_$label.log" 2>&1 || {
    note "$label: llmserve bench failed"; tail -20 "$OUT/bench_$label.log"; return; }
  python3 - "$OUT/bench_$label.json" "$label" "$n" <<'PY' | tee -a "$summary"
import json, sys
d = json.load(open(sys.argv[1])); r = d["results"][0]; n = int(sys.argv[3])
decode = 1e3 * (n - 1) / (r["e2e"]["mean_ms"] - r["ttft"]["mean_ms"])
print(f"{sys.argv[2]:<28} llmserve decode {decode:9.1f} tok/s  (ttft {r['ttft']['mean_ms']:.1f} ms, itl p50 {r['itl']['p50_ms']:.3f} ms)")
PY
}

llama_engine() {  # quantization (none, fp8, ...): prints the Llama-3-8B model dir, building the engine once
  local m=/tmp/llama-3-8b
  [ "$1" = none ] && { echo "$m"; return; }
  if [ ! -d "$m-$1" ]; then
    "$LLMSERVE" build --model "$m" --output "$m-$1" --device cuda --quantization "$1" >"$OUT/build_$1.log" 2>&1 ||
      { note "build --quantization $1 failed" >&2; tail -3 "$OUT/build_$1.log" >&2; return 1; }
  fi
  echo "$m-$1"
}

decode_hf() {  # model dir, label, dtype, output len
  python3 scripts/bench_hf.py --model "$1" --dtype "$3" --output-len "$4" >"$OUT/hf_$2.json" 2>"$OUT/hf_$2.log" || {
    note "$2: HF baseline failed"; tail -5 "$OUT/hf_$2.log"; return; }
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(f\"{sys.argv[2]:<28} hf       decode {d['decode_tok_s']:9.1f} tok/s  (torch {d['torch']})\")" \
    "$OUT/hf_$2.json" "$2" | tee -a "$summary"
}

startup() {  # model dir, label: process start -> /v2/health/ready answering 200
  local port=18000
  local t0
  t0=$(date +%s.%N)
  "$LLMSERVE" serve --device cuda --model "$1" --http-port $port --grpc-port -1 --metrics-port -1 \
    >"$OUT/serve_$2.log" 2>&1 &
  local pid=$!
  python3 - "$port" "$t0" "$2" <<'PY' | tee -a "$summary"
import sys, time, urllib.request
port, t0, label = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
deadline = time.time() + 120
while time.time() < deadline:
    try:
        if urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1).status == 200:
            print(f"{label:<28} start -> ready {time.time() - t0:6.2f} s"); break
    except Exception:
        time.sleep(0.01)
else:
    print(f"{label:<28} not ready within 120 s")
PY
  kill $pid 2>/dev/null || { echo "serve exited early:"; tail -8 "$OUT/serve_$2.log"; } | tee -a "$summary"
  wait $pid 2>/dev/null
  grep -E "weights|graphs|KV cache|ready|listening" "$OUT/serve_$2.log" | head -6 | tee -a "$summary"
}

for step in "${steps[@]}"; do
  if [ -n "${GPU_CHECK_BUDGET_S:-}" ] && [ "$SECONDS" -ge "$GPU_CHECK_BUDGET_S" ]; then
    note "$step: skipped, ${SECONDS} s of GPU_CHECK_BUDGET_S=$GPU_CHECK_BUDGET_S spent"
    continue
  fi
  case "$step" in
    tests)
      "$dist/cuda_tests" --gtest_color=no ${GTEST_FILTER:+--gtest_filter=$GTEST_FILTER} >"$OUT/cuda_tests.log" 2>&1
      rc=$?
      grep -E "^\[  (FAILED|PASSED) |^\[ note \]|Failure|error|tests ran" "$OUT/cuda_tests.log" | head -40
      note "cuda_tests exit $rc: $(grep -cE '^\[       OK \]' "$OUT/cuda_tests.log") ok, $(grep -cE '^\[  FAILED  \]' "$OUT/cuda_tests.log") failed lines"
      ;;
    gpt2)
      python3 scripts/make_random_model.py --preset gpt2-124m --dtype f16 --out /tmp/gpt2-124m >/dev/null
      decode_ours /tmp/gpt2-124m gpt2-124m-fp16 "${OUTPUT_LEN:-512}"
      decode_ours /tmp/gpt2-124m gpt2-124m-fp16-eager "${OUTPUT_LEN:-512}" --enforce-eager
      LLMSERVE_CUDA_PDL=0 decode_ours /tmp/gpt2-124m gpt2-124m-fp16-no-pdl "${OUTPUT_LEN:-512}"
      LLMSERVE_GEMV=persistent decode_ours /tmp/gpt2-124m gpt2-124m-fp16-gemv-persistent "${OUTPUT_LEN:-512}"
      decode_ours /tmp/gpt2-124m gpt2-124m-fp16-sampled "${OUTPUT_LEN:-512}" --temperature 0.8
      decode_hf /tmp/gpt2-124m gpt2-124m-fp16 float16 "${OUTPUT_LEN:-512}"
      ;;
    variants)  # GEMV variants at batch-1 decode (LLMSERVE_GEMV / LLMSERVE_GEMV_UNROLL), same call
      [ -d /tmp/gpt2-124m ] || python3 scripts/make_random_model.py --preset gpt2-124m --dtype f16 --out /tmp/gpt2-124m >/dev/null
      [ -d /tmp/llama-3-8b ] || python3 scripts/make_random_model.py --preset llama-3-8b --dtype bf16 --fast --out /tmp/llama-3-8b >/dev/null
      for v in flat preload:4 preload:8 preload:16; do
        LLMSERVE_GEMV=${v%%:*} LLMSERVE_GEMV_UNROLL=${v#*:} decode_ours /tmp/gpt2-124m "gpt2-124m-gemv-${v/:/-u}" "${OUTPUT_LEN:-512}"
        LLMSERVE_GEMV=${v%%:*} LLMSERVE_GEMV_UNROLL=${v#*:} decode_ours /tmp/llama-3-8b "llama-3-8b-gemv-${v/:/-u}" "${OUTPUT_LEN:-512}" --max-model-len 4096
      done
      ;;
    profile)  # per-op GPU time of eager decode steps (serialised; shares, not speed)
      for m in /tmp/gpt2-124m /tmp/llama-3-8b; do
        [ -d "$m" ] || continue
        LLMSERVE_CUDA_PROFILE=1 "$LLMSERVE" bench offline --device cuda --model "$m" --num-requests 1 --warmup 0 \
          --input-len 32 --output-len 64 --max-batch-size 1 --enforce-eager --max-model-len 1024 \
          >"$OUT/profile_$(basename "$m").log" 2>&1
        echo "== per-op profile $(basename "$m")" | tee -a "$summary"
        sed -n '/per-op GPU time/,$p' "$OUT/profile_$(basename "$m").log" | head -20 | tee -a "$summary"
      done
      ;;
    batch)  # in-flight batching throughput against one-at-a-time, same call
      for m in /tmp/gpt2-124m /tmp/llama-3-8b; do
        [ -d "$m" ] || continue
        n=256; [ "$m" = /tmp/llama-3-8b ] && n=64
        "$LLMSERVE" bench offline --device cuda --model "$m" --num-requests $n --input-len 128 --output-len 128 \
          --max-batch-size $n --max-model-len 1024 --json "$OUT/batch_$(basename "$m").json" \
          >"$OUT/batch_$(basename "$m").log" 2>&1
        echo "== batched x$n $(basename "$m")" | tee -a "$summary"
        tail -2 "$OUT/batch_$(basename "$m").log" | tee -a "$summary"
      done
      ;;
    sanitize)  # compute-sanitizer memcheck over the op tests and one model fixture (SANITIZE_FILTER narrows)
      timeout 150 compute-sanitizer --tool memcheck --report-api-errors no --error-exitcode 9 "$dist/cuda_tests" \
        --gtest_filter="${SANITIZE_FILTER:-Dtypes/CudaOps.*:Fixtures/CudaModel.GraphReplayMatchesEager/*}" >"$OUT/memcheck.log" 2>&1
      note "compute-sanitizer memcheck exit $?: $(grep -E 'ERROR SUMMARY' "$OUT/memcheck.log" | tail -1)"
      ;;
    llama8b)
      python3 scripts/make_random_model.py --preset llama-3-8b --dtype bf16 --fast --out /tmp/llama-3-8b >/dev/null
      decode_ours /tmp/llama-3-8b llama-3-8b-bf16 "${OUTPUT_LEN:-512}" --max-model-len 4096
      LLMSERVE_GEMV=persistent decode_ours /tmp/llama-3-8b llama-3-8b-bf16-gemv-persistent "${OUTPUT_LEN:-512}" --max-model-len 4096
      decode_hf /tmp/llama-3-8b llama-3-8b-bf16 bfloat16 "${OUTPUT_LEN:-512}"
      ;;
    ttft)  # time to first token of one 2,048-token prompt (Llama-3-8B): one request per run, so no
      # request waits behind another; then the per-op GPU time of that prefill
      [ -d /tmp/llama-3-8b ] || python3 scripts/make_random_model.py --preset llama-3-8b --dtype bf16 --fast --out /tmp/llama-3-8b >/dev/null
      for i in 1 2 3; do
        "$LLMSERVE" bench offline --device cuda --model /tmp/llama-3-8b --num-requests 1 --warmup 2 --input-len 2048 \
          --output-len 1 --max-batch-size 1 --max-model-len 4096 --max-num-tokens 8192 --no-prefix-caching --seed $i \
          --json "$OUT/ttft_llama_$i.json" >"$OUT/ttft_llama_$i.log" 2>&1 || { note "ttft: bench failed"; tail -5 "$OUT/ttft_llama_$i.log"; }
      done
      python3 - "$OUT"/ttft_llama_*.json <<'PY' | tee -a "$summary"
import json, sys
t = sorted(json.load(open(f))["results"][0]["ttft"]["mean_ms"] for f in sys.argv[1:])
print(f"llama-3-8b ttft 2048-token prompt  runs {', '.join(f'{x:.1f}' for x in t)} ms  median {t[len(t) // 2]:.1f} ms")
PY
      LLMSERVE_CUDA_PROFILE=1 "$LLMSERVE" bench offline --device cuda --model /tmp/llama-3-8b --num-requests 1 --warmup 1 \
        --input-len 2048 --output-len 1 --max-batch-size 1 --max-model-len 4096 --max-num-tokens 8192 --no-prefix-caching \
        --enforce-eager >"$OUT/profile_prefill.log" 2>&1
      echo "== per-op profile of 2 prefills of 2048 tokens (llama-3-8b, eager)" | tee -a "$summary"
      sed -n '/per-op GPU time/,$p' "$OUT/profile_prefill.log" | head -14 | tee -a "$summary"
      ;;
    throughput)  # the issue's offline workloads: 1,000 x 128/128 (Llama-3-8B), 2,000 x 128/128 (GPT-2)
      [ -d /tmp/llama-3-8b ] || python3 scripts/make_random_model.py --preset llama-3-8b --dtype bf16 --fast --out /tmp/llama-3-8b >/dev/null
      [ -d /tmp/gpt2-124m ] || python3 scripts/make_random_model.py --preset gpt2-124m --dtype f16 --out /tmp/gpt2-124m >/dev/null
      # LLAMA_BATCH / GPT2_BATCH may list several max batch sizes ("256 1024"), one run each.
      for spec in "llama-3-8b 1000 ${LLAMA_BATCH:-256}" "gpt2-124m 2000 ${GPT2_BATCH:-512}"; do
        set -- $spec
        model=$1 num=$2
        shift 2
        for b in "$@"; do
          "$LLMSERVE" bench offline --device cuda --model /tmp/$model --num-requests $num --warmup 8 --input-len 128 \
            --output-len 128 --max-batch-size $b --cuda-graph-max-batch-size $b --max-model-len 256 --max-num-tokens 8192 \
            --no-prefix-caching --step-timing ${THROUGHPUT_FLAGS:-} --json "$OUT/throughput_${model}_b$b.json" \
            >"$OUT/throughput_${model}_b$b.log" 2>&1 || { note "throughput $model: bench failed"; tail -5 "$OUT/throughput_${model}_b$b.log"; }
          echo "== throughput $model: $num x 128/128, max batch $b ${THROUGHPUT_FLAGS:-}" | tee -a "$summary"
          grep -E "^batched" "$OUT/throughput_${model}_b$b.log" | tee -a "$summary"
          grep -E "recorded|KV cache" "$OUT/throughput_${model}_b$b.log" | head -2 | tee -a "$summary"
        done
      done
      ;;
    overlap)  # offline throughput with the output thread off and on (--output-thread), alternating, same call
      [ -d /tmp/llama-3-8b ] || python3 scripts/make_random_model.py --preset llama-3-8b --dtype bf16 --fast --out /tmp/llama-3-8b >/dev/null
      [ -d /tmp/gpt2-124m ] || python3 scripts/make_random_model.py --preset gpt2-124m --dtype f16 --out /tmp/gpt2-124m >/dev/null
      for round in 1 2; do
        for spec in "llama-3-8b 1000 256" "gpt2-124m 2000 512"; do
          set -- $spec
          for o in off on; do
            "$LLMSERVE" bench offline --device cuda --model /tmp/$1 --num-requests $2 --warmup 8 --input-len 128 \
              --output-len 128 --max-batch-size $3 --cuda-graph-max-batch-size $3 --max-model-len 256 --max-num-tokens 8192 \
              --no-prefix-caching --step-timing --output-thread $o --json "$OUT/overlap_$1_${o}_$round.json" \
              >"$OUT/overlap_$1_${o}_$round.log" 2>&1 || { note "overlap $1 $o: bench failed"; tail -5 "$OUT/overlap_$1_${o}_$round.log"; }
            echo "== $1 $2 x 128/128, max batch $3, --output-thread $o (round $round)" | tee -a "$summary"
            grep -E "^batched" "$OUT/overlap_$1_${o}_$round.log" | tee -a "$summary"
          done
        done
      done
      ;;
    quant)  # Llama-3-8B quantized against bf16, same call: batch-1 decode (bf16, fp8, int8-wo), the
      # 1,000 x 128/128 offline throughput and the 2,048-token TTFT (bf16, fp8). Quantized runs load
      # engines built once here (quantizing an 8B checkpoint at load takes ~25 s). QUANT_SCHEMES narrows.
      [ -d /tmp/llama-3-8b ] || python3 scripts/make_random_model.py --preset llama-3-8b --dtype bf16 --fast --out /tmp/llama-3-8b >/dev/null
      quant_model() { [ "$1" = none ] && echo /tmp/llama-3-8b || echo "/tmp/llama-3-8b-$1"; }
      for q in ${QUANT_SCHEMES:-none fp8 int8-wo int4-wo}; do
        if [ "$q" != none ] && [ ! -d "$(quant_model "$q")" ]; then
          "$LLMSERVE" build --model /tmp/llama-3-8b --output "$(quant_model "$q")" --device cuda --quantization "$q" \
            >"$OUT/build_$q.log" 2>&1 || { note "build --quantization $q failed"; tail -3 "$OUT/build_$q.log"; }
          grep -h "built engine" "$OUT/build_$q.log" | tee -a "$summary"
        fi
        # QUANT_TC_VARIANTS="0 2 7": the decode once per tensor-core GEMV tile variant (gemv.h);
        # "default fused": the defaults without and with the decode fusions; "int4v4": int4-wo's
        # decode with the int4 GEMV's variant 4 (other schemes skip it); "lmhead": with
        # --quantize-lm-head
        for v in ${QUANT_TC_VARIANTS:-default}; do
          if [ "$v" = best ]; then  # the gemv step's fastest variant for this format
            if [ "$q" = fp8 ]; then v=${GEMV_BEST_FP8:-0}; else v=${GEMV_BEST_INT8:-0}; fi
          fi
          if [ "$v" = default ]; then
            decode_ours "$(quant_model "$q")" "llama-3-8b-decode-$q" "${OUTPUT_LEN:-256}" --max-model-len 4096
          elif [ "${v#int4v}" != "$v" ]; then  # int4v5: int4-wo with the int4 GEMV's variant 5
            [ "$q" = int4-wo ] || continue
            LLMSERVE_GEMV_INT4_VARIANT=${v#int4v} decode_ours "$(quant_model "$q")" "llama-3-8b-decode-$q-$v" "${OUTPUT_LEN:-256}" --max-model-len 4096
          elif [ "$v" = lmhead ]; then  # with --quantize-lm-head (the lm_head in int8-wo): engines
            # built with it (a checkpoint takes the flag at load for scheme none)
            m="$(quant_model "$q")"
            if [ "$q" = none ]; then
              decode_ours "$m" "llama-3-8b-decode-$q-lmhead" "${OUTPUT_LEN:-256}" --max-model-len 4096 --quantize-lm-head
            else
              [ -d "$m-lmhead" ] || "$LLMSERVE" build --model /tmp/llama-3-8b --output "$m-lmhead" --device cuda \
                --quantization "$q" --quantize-lm-head >"$OUT/build_$q-lmhead.log" 2>&1 ||
                { note "build --quantization $q --quantize-lm-head failed"; tail -3 "$OUT/build_$q-lmhead.log"; }
              decode_ours "$m-lmhead" "llama-3-8b-decode-$q-lmhead" "${OUTPUT_LEN:-256}" --max-model-len 4096
            fi
          elif [ "$v" = fused ]; then  # with the decode fusions (int8-wo and bf16 take them)
            LLMSERVE_DECODE_FUSION=1 decode_ours "$(quant_model "$q")" "llama-3-8b-decode-$q-fused" "${OUTPUT_LEN:-256}" --max-model-len 4096
          else
            LLMSERVE_GEMV_TC_VARIANT=$v decode_ours "$(quant_model "$q")" "llama-3-8b-decode-$q-v$v" "${OUTPUT_LEN:-256}" --max-model-len 4096
          fi
        done
      done
      [ -n "${QUANT_DECODE_ONLY:-}" ] && continue
      for q in ${QUANT_SCHEMES:-none fp8}; do
        [ "$q" = int8-wo ] && continue
        m=$(quant_model "$q")
        for b in ${QUANT_BATCH:-256}; do  # max batch sizes of the throughput run, one run each
          "$LLMSERVE" bench offline --device cuda --model "$m" --num-requests 1000 --warmup 8 --input-len 128 \
            --output-len 128 --max-batch-size $b --cuda-graph-max-batch-size $b --max-model-len 256 --max-num-tokens 8192 \
            --no-prefix-caching --step-timing --json "$OUT/quant_throughput_${q}_b$b.json" >"$OUT/quant_throughput_${q}_b$b.log" 2>&1 ||
            { note "throughput $q: bench failed"; tail -5 "$OUT/quant_throughput_${q}_b$b.log"; }
          echo "== throughput llama-3-8b --quantization $q: 1000 x 128/128, max batch $b" | tee -a "$summary"
          grep -E "^batched" "$OUT/quant_throughput_${q}_b$b.log" | tee -a "$summary"
        done
        "$LLMSERVE" bench offline --device cuda --model "$m" --num-requests 1 --warmup 2 --input-len 2048 \
          --output-len 1 --max-batch-size 1 --max-model-len 4096 --max-num-tokens 8192 --no-prefix-caching \
          --json "$OUT/quant_ttft_$q.json" >"$OUT/quant_ttft_$q.log" 2>&1 ||
          { note "ttft $q: bench failed"; tail -5 "$OUT/quant_ttft_$q.log"; }
        python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results'][0]; print(f\"llama-3-8b ttft 2048-token prompt --quantization {sys.argv[2]}: {r['ttft']['mean_ms']:.1f} ms\")" \
          "$OUT/quant_ttft_$q.json" "$q" 2>/dev/null | tee -a "$summary"
      done
      ;;
    ncu)  # per-kernel GPU time and DRAM traffic (Nsight Compute, clocks left alone) of one decode step at
      # batch 1 (GPT-2, Llama-3-8B), one at batch 256 (Llama-3-8B) and the 2,048-token prefill
      ncu_bin=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
      [ -n "$ncu_bin" ] || { note "ncu: not found"; continue; }
      [ -d /tmp/gpt2-124m ] || python3 scripts/make_random_model.py --preset gpt2-124m --dtype f16 --out /tmp/gpt2-124m >/dev/null
      [ -d /tmp/llama-3-8b ] || python3 scripts/make_random_model.py --preset llama-3-8b --dtype bf16 --fast --out /tmp/llama-3-8b >/dev/null
      ncu_run() {  # label, launches to skip, launches to profile, bench flags...
        local label=$1 skip=$2 count=$3
        shift 3
        timeout 240 "$ncu_bin" --clock-control none --csv --print-units base --launch-skip "$skip" --launch-count "$count" \
          --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum,sm__warps_active.avg.pct_of_peak_sustained_active,launch__registers_per_thread \
          "$LLMSERVE" bench offline --device cuda --warmup 0 --enforce-eager --no-prefix-caching "$@" \
          >"$OUT/ncu_$label.csv" 2>"$OUT/ncu_$label.log" || note "ncu $label: exit $?"
        python3 scripts/ncu_summary.py "$OUT/ncu_$label.csv" "$label" 2>&1 | head -24 | tee -a "$summary"
      }
      # Prefill of a 32-token prompt is one step (~115 kernels GPT-2, ~325 Llama); then decode steps.
      ncu_run gpt2-decode-b1 300 115 --model /tmp/gpt2-124m --num-requests 1 --input-len 32 --output-len 8 --max-batch-size 1
      ncu_run llama-decode-b1 700 330 --model /tmp/llama-3-8b --num-requests 1 --input-len 32 --output-len 8 --max-batch-size 1 --max-model-len 1024
      ncu_run llama-prefill-2048 0 326 --model /tmp/llama-3-8b --num-requests 1 --input-len 2048 --output-len 1 --max-batch-size 1 --max-model-len 4096
      # 256 x 128-token prompts = 4 prefill steps of 8,192 tokens, then decode steps of 256
      # 512 x 128-token prompts = 8 prefill steps of ~115 kernels, then decode steps of 512
      ncu_run gpt2-decode-b512 1000 130 --model /tmp/gpt2-124m --num-requests 512 --input-len 128 --output-len 4 --max-batch-size 512 --max-model-len 256
      ncu_run llama-decode-b256 1400 360 --model /tmp/llama-3-8b --num-requests 256 --input-len 128 --output-len 4 --max-batch-size 256 --max-model-len 256
      ;;
    ncu-gemv)  # where the int4 GEMV's time goes, beside the 16-bit and int8 tensor-core GEMVs: Nsight
      # Compute's speed-of-light, scheduler and warp-state sections for one gate_up call at M = 1
      ncu_bin=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
      [ -n "$ncu_bin" ] || { note "ncu: not found"; continue; }
      for k in ${NCU_GEMV_KERNELS:-int4-v4 tc-16bit-v7 tc-int8-v6}; do
        # Each (kernel, shape) runs 3 warm-up + 3 timed calls; gate_up is the third shape.
        timeout 120 "$ncu_bin" --clock-control none --launch-skip 12 --launch-count 1 \
          --section SpeedOfLight --section SchedulerStats --section WarpStateStats --section Occupancy \
          "$dist/gemv_bench" --dtype bf16 --m 1 --reps 3 --kernels "$k" >"$OUT/ncu_gemv_$k.txt" 2>&1 ||
          note "ncu-gemv $k: exit $?"
        echo "== ncu gate_up M=1 $k" | tee -a "$summary"
        grep -E "Duration|DRAM Throughput|Memory Throughput|Compute \(SM\)|Issue Slots Busy|Issued Warp|No Eligible|Active Warps Per|Eligible Warps|Warp Cycles Per Issued|Achieved Occupancy|Registers Per|Block Limit|Theoretical Occ|Stall|stall" \
          "$OUT/ncu_gemv_$k.txt" | sed -E 's/ +/ /g' | head -40 | tee -a "$summary"
      done
      ;;
    gemm)  # cuBLASLt GEMMs on Llama-3-8B's layer shapes: bf16 and each fp8 scaling mode (tests/kernel_bench)
      "$dist/gemm_bench" ${GEMM_M:+--m $GEMM_M} >"$OUT/gemm_bench.txt" 2>&1 || note "gemm_bench: exit $?"
      grep -E "^check|version" "$OUT/gemm_bench.txt" | tee -a "$summary"
      grep -E "^(qkv|gate_up) " "$OUT/gemm_bench.txt" | grep -E "M +(256|1024|8192) " | tee -a "$summary"
      ;;
    moe-model)  # Qwen3-30B-A3B shape, random bf16 weights (61 GB: the machine's 64 GB disk holds it
      # alone, so other models under /tmp are removed first): batch-1 decode and 1,000 x 128/128 with
      # the active-parameter roofline beside them (3.04 B weights a token: 48 x (18.9 M attention +
      # 37.7 M of 8 experts + 0.26 M router) + 311 M lm_head = 6.1 GB at batch 1, 2.0 ms at 3 TB/s)
      m=/tmp/qwen3-30b-a3b
      if [ ! -d $m ]; then
        rm -rf /tmp/llama-3-8b* /tmp/gpt2-124m*
        python3 scripts/make_random_model.py --preset qwen3-30b-a3b --dtype bf16 --fast --out $m >/dev/null ||
          { note "qwen3-30b-a3b: make_random_model failed ($(df -h /tmp | tail -1))"; continue; }
      fi
      decode_ours $m qwen3-30b-a3b-bf16 "${OUTPUT_LEN:-256}" --max-model-len 4096
      note "qwen3-30b-a3b batch-1 roofline: 6.1 GB a token at 3.0 TB/s = 2.0 ms (~490 tok/s)"
      "$LLMSERVE" bench offline --device cuda --model $m --num-requests 1000 --warmup 8 --input-len 128 \
        --output-len 128 --max-batch-size 256 --cuda-graph-max-batch-size 256 --max-model-len 256 \
        --max-num-tokens 8192 --no-prefix-caching --step-timing --json "$OUT/moe_throughput.json" \
        >"$OUT/moe_throughput.log" 2>&1 || { note "qwen3-30b-a3b throughput: bench failed"; tail -5 "$OUT/moe_throughput.log"; }
      echo "== throughput qwen3-30b-a3b bf16: 1000 x 128/128, max batch 256" | tee -a "$summary"
      grep -E "^batched" "$OUT/moe_throughput.log" | tee -a "$summary"
      ;;
    families)  # batch-1 decode of Qwen2.5-7B and Mistral-7B shapes (random bf16) beside Llama-3-8B's,
      # each with the weight bytes a token reads (every tensor but the embedding table) and the
      # bandwidth that rate implies: issue 19 asks for the same share of the roofline
      roofline() {  # model dir, tok/s: the bytes a token reads and the bandwidth
        /usr/bin/env python3 - "$1" "$2" <<'PY'
import json, struct, sys
with open(sys.argv[1] + "/model.safetensors", "rb") as f:
    h = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
b = sum(v["data_offsets"][1] - v["data_offsets"][0] for k, v in h.items()
        if k != "__metadata__" and "embed_tokens" not in k)
print(f"  {b / 1e9:.2f} GB a token; {float(sys.argv[2]):.1f} tok/s reads {b * float(sys.argv[2]) / 1e12:.2f} TB/s")
PY
      }
      for f in ${FAMILIES:-llama-3-8b qwen2.5-7b mistral-7b}; do
        m=/tmp/$f
        [ -d $m ] || python3 scripts/make_random_model.py --preset $f --dtype bf16 --fast --out $m >/dev/null ||
          { note "$f: make_random_model failed"; continue; }
        decode_ours $m "family-$f" "${OUTPUT_LEN:-256}" --max-model-len 4096
        rate=$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); r=d['results'][0]; print(1e3*($((${OUTPUT_LEN:-256}))-1)/(r['e2e']['mean_ms']-r['ttft']['mean_ms']))" "$OUT/bench_family-$f.json" 2>/dev/null)
        [ -n "$rate" ] && roofline $m "$rate" | tee -a "$summary"
        [ "$f" = llama-3-8b ] || rm -rf $m
      done
      ;;
    moe)  # the MoE experts op on a Qwen3-30B-A3B layer, bf16 and int8-wo experts (tests/kernel_bench)
      { "$dist/moe_bench" && "$dist/moe_bench" --int8; } >"$OUT/moe_bench.txt" 2>&1 || note "moe_bench: exit $?"
      tee -a "$summary" <"$OUT/moe_bench.txt"
      ;;
    spec)  # speculative decoding (prompt lookup) against plain decoding, batch 1 and 16, same call:
      # prompts that repeat a 32-token run, so prompt lookup has something to copy
      [ -d /tmp/llama-3-8b ] || python3 scripts/make_random_model.py --preset llama-3-8b --dtype bf16 --fast --out /tmp/llama-3-8b >/dev/null
      # "draft": the model drafts for itself — acceptance 1, the mechanics' upper bound at k = 4.
      for b in ${SPEC_BATCH:-1 16}; do
        for s in none ngram draft; do
          [ "$s" = draft ] && [ "$b" != 1 ] && continue
          flags=(--speculative $s)
          [ "$s" = draft ] && flags+=(--draft-model /tmp/llama-3-8b)
          "$LLMSERVE" bench offline --device cuda --model /tmp/llama-3-8b --num-requests $((b * 2)) --warmup 1 \
            --input-len 256 --repeat-period 32 --output-len 256 --max-batch-size $b --max-model-len 1024 \
            "${flags[@]}" --json "$OUT/spec_${s}_b$b.json" >"$OUT/spec_${s}_b$b.log" 2>&1 || note "spec $s b$b: exit $?"
          echo "== llama-3-8b batch $b, --speculative $s, 256 repeating prompt tokens, 256 out" | tee -a "$summary"
          grep -E "^batched" "$OUT/spec_${s}_b$b.log" | tee -a "$summary"
        done
      done
      ;;
    kvfp8)  # --kv-cache-dtype fp8 against the activation-dtype cache, same call: the blocks each gets,
      # 1,000 x 1,024/128 offline (KV_LONG_BATCH) and 1,000 x 128/128 at batch KV_SHORT_BATCH, with
      # bf16 and fp8 weights (KV_WEIGHTS narrows: "none fp8")
      [ -d /tmp/llama-3-8b ] || python3 scripts/make_random_model.py --preset llama-3-8b --dtype bf16 --fast --out /tmp/llama-3-8b >/dev/null
      for q in ${KV_WEIGHTS:-none fp8}; do
        m=$(llama_engine "$q") || continue
        for shape in "long 1024 ${KV_LONG_BATCH:-512} 2048" "short 128 ${KV_SHORT_BATCH:-1024} 256"; do
          set -- $shape
          for kv in ${KV_DTYPES:-auto fp8}; do
            label=kv_${q}_$1_$kv${KV_LABEL:-}
            "$LLMSERVE" bench offline --device cuda --model "$m" --num-requests 1000 --warmup 8 --input-len $2 \
              --output-len 128 --max-batch-size $3 --cuda-graph-max-batch-size $3 --max-model-len $4 --max-num-tokens 8192 \
              --no-prefix-caching --step-timing --kv-cache-dtype $kv --json "$OUT/$label.json" >"$OUT/$label.log" 2>&1 ||
              { note "$label: bench failed"; tail -5 "$OUT/$label.log"; }
            echo "== llama-3-8b weights $q, --kv-cache-dtype $kv: 1000 x $2/128, max batch $3 ${KV_LABEL:-}" | tee -a "$summary"
            grep -E "^batched" "$OUT/$label.log" | tee -a "$summary"
            grep -E "KV cache" "$OUT/$label.log" | head -1 | tee -a "$summary"
          done
        done
      done
      ;;
    tprofile)  # per-op GPU time of the 1,000 x 128/128 throughput workload (eager, serialised: shares)
      [ -d /tmp/llama-3-8b ] || python3 scripts/make_random_model.py --preset llama-3-8b --dtype bf16 --fast --out /tmp/llama-3-8b >/dev/null
      for q in ${QUANT_SCHEMES:-none fp8}; do
        m=$(llama_engine "$q") || continue
        b=${TPROFILE_BATCH:-1024}
        LLMSERVE_CUDA_PROFILE=1 "$LLMSERVE" bench offline --device cuda --model "$m" --num-requests 1000 --warmup 0 \
          --input-len 128 --output-len 128 --max-batch-size $b --max-model-len 256 --max-num-tokens 8192 \
          --no-prefix-caching --enforce-eager ${TPROFILE_FLAGS:-} >"$OUT/tprofile_$q.log" 2>&1 || note "tprofile $q: exit $?"
        echo "== per-op profile, 1000 x 128/128, max batch $b, --quantization $q (eager) ${TPROFILE_FLAGS:-}" | tee -a "$summary"
        sed -n '/per-op GPU time/,$p' "$OUT/tprofile_$q.log" | head -24 | tee -a "$summary"
      done
      ;;
    gemv)  # every decode GEMV kernel and tile variant on Llama-3-8B's weight shapes (tests/kernel_bench;
      # GEMV_M="1,8,32"; GEMV_KERNELS="int4,tc-16bit-v7": only kernels of these name prefixes)
      "$dist/gemv_bench" --dtype bf16 ${GEMV_M:+--m $GEMV_M} ${GEMV_KERNELS:+--kernels $GEMV_KERNELS} \
        >"$OUT/gemv_bench.txt" 2>&1 || note "gemv_bench: exit $?"
      echo "== gemv_bench (bf16): one layer's GEMVs, fastest first per M" | tee -a "$summary"
      grep " a layer " "$OUT/gemv_bench.txt" | sort -k3,3n -k4,4n | awk '{c[$3]++} c[$3] <= 12' | tee -a "$summary"
      grep "lm_head" "$OUT/gemv_bench.txt" | sort -k5,5n | head -6 | tee -a "$summary"
      # The fastest tensor-core variant per format at M = 1, for the decode steps below ("best").
      for f in 16bit int8 fp8; do
        v=$(grep -E "^tc-$f-v[0-9]+ +M 1 " "$OUT/gemv_bench.txt" | sort -k4,4n | head -1 | sed -E 's/^tc-[a-z0-9]+-v([0-9]+).*/\1/')
        export "GEMV_BEST_${f^^}=${v:-0}"
        note "gemv: fastest tensor-core variant at M=1 for $f: v${v:-0}"
      done
      ;;
    idle)  # batch-1 decode with the device's busy and idle time a step (--step-timing): how much of
      # an inter-token latency is the host's gap between steps (IDLE_MODELS narrows)
      [ -d /tmp/llama-3-8b ] || python3 scripts/make_random_model.py --preset llama-3-8b --dtype bf16 --fast --out /tmp/llama-3-8b >/dev/null
      [ -d /tmp/gpt2-124m ] || python3 scripts/make_random_model.py --preset gpt2-124m --dtype f16 --out /tmp/gpt2-124m >/dev/null
      for m in ${IDLE_MODELS:-llama-3-8b gpt2-124m}; do
        "$LLMSERVE" bench offline --device cuda --model "/tmp/$m" --num-requests 3 --warmup 1 --input-len 32 \
          --output-len "${OUTPUT_LEN:-256}" --max-batch-size 1 --max-model-len 1024 --step-timing \
          >"$OUT/idle_$m.log" 2>&1 || note "idle $m: bench failed"
        echo "== batch-1 decode, device time a step: $m" | tee -a "$summary"
        grep -E "^batched|device a step" "$OUT/idle_$m.log" | tee -a "$summary"
      done
      ;;
    nsys)  # batch-1 decode under Nsight Systems with the CUDA graphs' nodes traced: each kernel's
      # duration and what it adds to a step (scripts/nsys_summary.py). NSYS_MODELS: llama-3-8b
      # (bf16 checkpoint), llama-3-8b-<scheme> (an engine built here), gpt2-124m
      nsys_bin=$(command -v nsys || ls /opt/nvidia/nsight-systems/*/bin/nsys /usr/local/cuda/bin/nsys 2>/dev/null | head -1)
      [ -n "$nsys_bin" ] || { note "nsys: not found"; continue; }
      [ -d /tmp/llama-3-8b ] || python3 scripts/make_random_model.py --preset llama-3-8b --dtype bf16 --fast --out /tmp/llama-3-8b >/dev/null
      for m in ${NSYS_MODELS:-llama-3-8b}; do
        case "$m" in
          llama-3-8b-*) model=$(llama_engine "${m#llama-3-8b-}") || continue ;;
          gpt2-124m) [ -d /tmp/gpt2-124m ] || python3 scripts/make_random_model.py --preset gpt2-124m --dtype f16 --out /tmp/gpt2-124m >/dev/null
            model=/tmp/gpt2-124m ;;
          *) model=/tmp/$m ;;
        esac
        timeout 240 "$nsys_bin" profile --cuda-graph-trace=node --trace=cuda --sample=none --cpuctxsw=none \
          --force-overwrite true -o "/tmp/nsys_$m" "$LLMSERVE" bench offline --device cuda --model "$model" \
          --num-requests 1 --warmup 1 --input-len 32 --output-len "${OUTPUT_LEN:-128}" --max-batch-size 1 \
          --max-model-len 1024 >"$OUT/nsys_$m.log" 2>&1 || note "nsys $m: exit $?"
        "$nsys_bin" stats --report cuda_gpu_trace --format csv --output "/tmp/nsys_$m" "/tmp/nsys_$m.nsys-rep" \
          >>"$OUT/nsys_$m.log" 2>&1 || note "nsys stats $m: exit $?"
        cp "/tmp/nsys_${m}_cuda_gpu_trace.csv" "$OUT/" 2>/dev/null
        python3 scripts/nsys_summary.py "/tmp/nsys_${m}_cuda_gpu_trace.csv" "$m" 2>&1 | head -32 | tee -a "$summary"
      done
      ;;
    sass)  # the machine code of the kernels whose mangled names match SASS_MATCH (an awk regex;
      # default: the int4 streaming GEMV for one bf16 token tile), with an instruction histogram
      cuobjdump_bin=$(command -v cuobjdump || ls /usr/local/cuda/bin/cuobjdump 2>/dev/null | head -1)
      [ -n "$cuobjdump_bin" ] || { note "sass: cuobjdump not found"; continue; }
      "$cuobjdump_bin" -sass "$LLMSERVE" 2>/dev/null |
        awk -v re="${SASS_MATCH:-gemv_int4_stream_kernel.*bfloat16Li4ELi8ELi1E}" \
          '/Function : / { on = ($0 ~ re) } on' >"$OUT/sass.txt"
      echo "== sass: $(grep -c 'Function : ' "$OUT/sass.txt") functions, $(grep -cE '^ +/\*[0-9a-f]{4}\*/' "$OUT/sass.txt") instructions" | tee -a "$summary"
      grep -oE '^ +/\*[0-9a-f]{4}\*/ +(@!?U?P[0-9T] +)?[A-Z0-9_.]+' "$OUT/sass.txt" | awk '{print $NF}' | sed -E 's/\..*//' |
        sort | uniq -c | sort -rn | head -25 | tee -a "$summary"
      ;;
    decode-ab)  # batch-1 decode, the tensor-core GEMVs against the CUDA-core ones, same call
      [ -d /tmp/llama-3-8b ] || python3 scripts/make_random_model.py --preset llama-3-8b --dtype bf16 --fast --out /tmp/llama-3-8b >/dev/null
      [ -d /tmp/gpt2-124m ] || python3 scripts/make_random_model.py --preset gpt2-124m --dtype f16 --out /tmp/gpt2-124m >/dev/null
      # LLMSERVE_GEMV: CUDA-core (simt) or tensor-core (tc) GEMVs; tc-best: the variant the gemv
      # step found fastest for 16-bit weights; fused: the default GEMVs with the decode fusions
      # (LLMSERVE_DECODE_FUSION=1)
      for v in ${GEMV_AB:-simt tc fused}; do
        variant=-1; [ "$v" = tc-best ] && variant=${GEMV_BEST_16BIT:-0}
        fusion=0; gemv=${v%-best}; [ "$v" = fused ] && { fusion=1; gemv=tc; }
        LLMSERVE_GEMV=$gemv LLMSERVE_DECODE_FUSION=$fusion LLMSERVE_GEMV_TC_VARIANT=$variant decode_ours /tmp/llama-3-8b "llama-3-8b-bf16-gemv-$v" "${OUTPUT_LEN:-256}" --max-model-len 4096
        LLMSERVE_GEMV=$gemv LLMSERVE_DECODE_FUSION=$fusion LLMSERVE_GEMV_TC_VARIANT=$variant decode_ours /tmp/gpt2-124m "gpt2-124m-fp16-gemv-$v" "${OUTPUT_LEN:-256}"
      done
      ;;
    startup)
      [ -d /tmp/gpt2-124m ] || python3 scripts/make_random_model.py --preset gpt2-124m --dtype f16 --out /tmp/gpt2-124m >/dev/null
      startup /tmp/gpt2-124m gpt2-124m
      [ -d /tmp/llama-3-8b ] && startup /tmp/llama-3-8b llama-3-8b
      ;;
    tp)  # tensor parallel over 2 GPUs against 1, same call: greedy tokens, batch-1 decode, batched
      ngpu=$(nvidia-smi -L | wc -l)
      if [ "$ngpu" -lt 2 ]; then note "tp: needs 2 GPUs, $ngpu visible"; continue; fi
      nvidia-smi topo -m >"$OUT/topo.txt" 2>&1
      [ -d /tmp/llama-3-8b ] || python3 scripts/make_random_model.py --preset llama-3-8b --dtype bf16 --fast --out /tmp/llama-3-8b >/dev/null
      LLMSERVE_TP_MODEL=/tmp/llama-3-8b "$dist/cuda_tests" --gtest_color=no --gtest_filter='CudaTensorParallel.*' \
        >"$OUT/tp_large_test.log" 2>&1
      note "llama-3-8b tp=2 vs tp=1 test exit $?: $(grep -E '^\[ note \]|Failure|^\[  (PASSED|FAILED)' "$OUT/tp_large_test.log" | head -8)"
      for tp in 1 2; do
        "$LLMSERVE" generate --device cuda --model /tmp/llama-3-8b --tp $tp --prompt "The quick brown fox jumps over" \
          --max-tokens 64 --temperature 0 --max-model-len 1024 --json >"$OUT/tp_greedy_$tp.json" 2>"$OUT/tp_greedy_$tp.log" ||
          { note "tp=$tp generate failed"; tail -5 "$OUT/tp_greedy_$tp.log" | tee -a "$summary"; }
      done
      python3 - "$OUT/tp_greedy_1.json" "$OUT/tp_greedy_2.json" <<'PY' | tee -a "$summary"
import json, sys
try:
    a, b = (json.load(open(f))["token_ids"] for f in sys.argv[1:3])
except Exception as e:
    print(f"llama-3-8b greedy tp=2 vs tp=1: no result ({e})"); sys.exit()
same = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
print(f"llama-3-8b greedy tp=2 vs tp=1: {same} of {len(a)} tokens identical" + (" (all)" if a == b else ""))
PY
      decode_ours /tmp/llama-3-8b llama-3-8b-bf16-tp1 "${OUTPUT_LEN:-512}" --max-model-len 4096
      decode_ours /tmp/llama-3-8b llama-3-8b-bf16-tp2 "${OUTPUT_LEN:-512}" --max-model-len 4096 --tp 2
      LLMSERVE_ALLREDUCE=peer decode_ours /tmp/llama-3-8b llama-3-8b-bf16-tp2-peer "${OUTPUT_LEN:-512}" --max-model-len 4096 --tp 2
      decode_ours /tmp/llama-3-8b llama-3-8b-bf16-pp2 "${OUTPUT_LEN:-512}" --max-model-len 4096 --pp 2
      runs=("--tp 1" "--tp 2" "--pp 2")
      [ "${TP_BATCH:-1}" = 0 ] && runs=()  # TP_BATCH=0 skips the batched runs
      for par in "${runs[@]+"${runs[@]}"}"; do
        tag=${par// /}
        "$LLMSERVE" bench offline --device cuda --model /tmp/llama-3-8b $par --num-requests 256 --input-len 128 \
          --output-len 128 --max-batch-size 256 --max-model-len 1024 --json "$OUT/tp_batch$tag.json" \
          >"$OUT/tp_batch$tag.log" 2>&1
        echo "== batched x256 llama-3-8b $par" | tee -a "$summary"
        tail -2 "$OUT/tp_batch$tag.log" | tee -a "$summary"
      done
      startup /tmp/llama-3-8b llama-3-8b-tp1
      LLMSERVE_TP=2 startup /tmp/llama-3-8b llama-3-8b-tp2
      ;;
    metrics)  # Triton's nv_gpu_* gauges through NVML on the real GPU(s)
      bash scripts/gpu_metrics_check.sh "$LLMSERVE" --model "$root/models/default" >"$OUT/gpu_metrics.log" 2>&1
      note "gpu_metrics_check exit $?: $(grep -c '^ok' "$OUT/gpu_metrics.log") ok, $(grep -c '^FAIL' "$OUT/gpu_metrics.log") failed"
      grep -E '^FAIL' "$OUT/gpu_metrics.log" | head -5 | tee -a "$summary"
      ;;
    *) echo "unknown step $step" ;;
  esac
done
# At most 8 files come back: the summary, the test log, and everything else in one archive. Several
# runs in one call append to the archive (logs.tar) and to summaries.txt instead of replacing them.
(cd "$OUT" && cat summary.txt >>summaries.txt &&
  tar -rf logs.tar --exclude=logs.tar --exclude=summary.txt --exclude=summaries.txt --exclude=cuda_tests.log ./* &&
  find . -maxdepth 1 -type f ! -name logs.tar ! -name summary.txt ! -name summaries.txt ! -name cuda_tests.log -delete)
echo "== summary"
cat "$summary"
