#!/usr/bin/env bash
# The NVML GPU gauges on a real GPU: starts `llmserve serve --device cuda`, sends a little load,
# scrapes :metrics and checks Triton's six GPU families (docs/server.md) — present, label gpu_uuid
# only ("GPU-..."), one series per visible GPU, sane values (utilization in 0..1, memory used ≤
# total and > 0, power > 0 and ≤ its limit, energy counted since start > 0) — then that
# --no-gpu-metrics turns them off. Exits non-zero on any failure.
#
#   bash scripts/gpu_metrics_check.sh path/to/llmserve [extra serve flags...]
set -uo pipefail
BIN=${1:?usage: gpu_metrics_check.sh LLMSERVE_BINARY [serve flags...]}
shift
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT
passed=0 failed=0
check() {  # check NAME CONDITION-COMMAND...
  local name=$1; shift
  if "$@"; then echo "ok   $name"; passed=$((passed + 1)); else echo "FAIL $name"; failed=$((failed + 1)); fi
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

start_server() {  # start_server NAME ARGS...; sets HTTP and METRICS
  local name=$1; shift
  local http_port metrics_port
  http_port=$(free_port); metrics_port=$(free_port)
  "$BIN" serve --device cuda --host 127.0.0.1 --http-port "$http_port" --grpc-port -1 --metrics-port "$metrics_port" \
    "$@" > "$WORK/$name.log" 2>&1 &
  PIDS+=("$!")
  HTTP=127.0.0.1:$http_port METRICS=127.0.0.1:$metrics_port
  for _ in $(seq 600); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$HTTP/v2/health/ready")" == 200 ] && return 0
    sleep 0.2
  done
  echo "server $name did not become ready:"; cat "$WORK/$name.log"; exit 1
}

start_server gpu "$@"
echo "--- log"; grep -i "gpu\|nvml\|device" "$WORK/gpu.log" | head -20
check "log names the GPU gauges" grep -q "GPU gauges (nv_gpu_\*) for" "$WORK/gpu.log"
for _ in 1 2 3; do
  curl -s -X POST "$HTTP/v2/models/default/generate" -d '{"text_input": "ROMEO:", "max_tokens": 64}' > /dev/null
done
sleep 3  # a few metrics polls (1 s) after the load
curl -s "$METRICS/metrics" > "$WORK/metrics.txt"
echo "--- scrape"; grep -E "^(# TYPE )?nv_(gpu|energy)" "$WORK/metrics.txt"

visible=${CUDA_VISIBLE_DEVICES-}
if [ -z "${CUDA_VISIBLE_DEVICES+x}" ]; then
  expected=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)
else
  expected=$(echo "$visible" | tr ',' '\n' | grep -c .)
fi
python3 - "$WORK/metrics.txt" "${expected:-0}" > "$WORK/verdict.txt" <<'PY'
import re, sys
text, expected = open(sys.argv[1]).read(), int(sys.argv[2])
types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
samples = {}
for name, labels, value in re.findall(r"^(nv_gpu_\w+|nv_energy_consumption)\{([^}]*)\} (\S+)$", text, re.M):
    samples.setdefault(name, {})[labels] = float(value)
want = {"nv_gpu_utilization": "gauge", "nv_gpu_memory_total_bytes": "gauge", "nv_gpu_memory_used_bytes": "gauge",
        "nv_gpu_power_usage": "gauge", "nv_gpu_power_limit": "gauge", "nv_energy_consumption": "counter"}
def verdict(name, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + name + (f"  ({detail})" if detail else ""))
for family, kind in want.items():
    verdict(f"{family} is a {kind}", types.get(family) == kind, types.get(family, "absent"))
    verdict(f"{family} has samples", bool(samples.get(family)))
labels = set(samples.get("nv_gpu_utilization", {}))
verdict("label is gpu_uuid only, GPU-...", bool(labels) and all(re.fullmatch(r'gpu_uuid="GPU-[^"]+"', l) for l in labels),
        ", ".join(sorted(labels)))
if expected:
    verdict("one series per visible GPU", len(labels) == expected, f"{len(labels)} series, {expected} GPUs")
for l in labels:
    g = lambda f: samples.get(f, {}).get(l, float("nan"))
    u, used, total = g("nv_gpu_utilization"), g("nv_gpu_memory_used_bytes"), g("nv_gpu_memory_total_bytes")
    power, limit, energy = g("nv_gpu_power_usage"), g("nv_gpu_power_limit"), g("nv_energy_consumption")
    verdict(f"{l}: utilization in 0..1", 0 <= u <= 1, u)
    verdict(f"{l}: 0 < memory used <= total", 0 < used <= total, f"{used:.0f} / {total:.0f}")
    verdict(f"{l}: power > 0 and <= limit * 1.2", 0 < power <= limit * 1.2, f"{power} W of {limit} W")
    verdict(f"{l}: energy since start > 0 J", energy > 0, f"{energy} J")
PY
cat "$WORK/verdict.txt"
passed=$((passed + $(grep -c '^ok ' "$WORK/verdict.txt"))); failed=$((failed + $(grep -c '^FAIL' "$WORK/verdict.txt")))

kill "${PIDS[-1]}" 2>/dev/null; wait "${PIDS[-1]}" 2>/dev/null
start_server off --no-gpu-metrics "$@"
check "--no-gpu-metrics: no nv_gpu_* series" bash -c "! curl -s '$METRICS/metrics' | grep -q '^nv_gpu_'"
check "--no-gpu-metrics: still Triton's nv_inference_*" bash -c "curl -s '$METRICS/metrics' | grep -q '^nv_inference_request_success'"

echo "gpu_metrics_check: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
