#!/usr/bin/env bash
# `llmserve serve` metrics on :8002 as Prometheus sees them: a live scrape passes
# `promtool check metrics` (exit 3 = lint only: Triton's names have no _total), Triton's counters
# count what was served, and a real Prometheus scraping the server evaluates the seed's recording
# rule triton:queue_compute:ratio. A second server with --speculative ngram gives the same greedy
# text and counts its drafts.
set -euo pipefail
BIN=${LLMSERVE:?}
WORK=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
fails=0; passes=0
check() { local name=$1; shift; if "$@"; then echo "ok   $name"; passes=$((passes+1)); else echo "FAIL $name"; fails=$((fails+1)); fi; }

HP=$(free_port); MP=$(free_port); PP=$(free_port)
"$BIN" serve --host 127.0.0.1 --http-port "$HP" --grpc-port -1 --metrics-port "$MP" --num-kv-blocks 64 > "$WORK/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 120); do curl -sf "127.0.0.1:$HP/v2/health/ready" >/dev/null && break; sleep 0.25; done

cat > "$WORK/rules.yml" <<'YAML'
groups:
  - name: autoscaling
    interval: 1s
    rules:
      - record: triton:queue_compute:ratio
        expr: rate(nv_inference_queue_duration_us[1m]) / clamp_min(rate(nv_inference_compute_infer_duration_us[1m]),1)
YAML
cat > "$WORK/prometheus.yml" <<YAML
global: { scrape_interval: 1s, evaluation_interval: 1s }
rule_files: [ "$WORK/rules.yml" ]
scrape_configs:
  - job_name: llmserve
    static_configs: [ { targets: [ "127.0.0.1:$MP" ] } ]
YAML
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
  --web.listen-address="127.0.0.1:$PP" > "$WORK/prometheus.log" 2>&1 &
pids+=($!)

for i in 1 2 3 4 5 6; do
  curl -s -X POST "127.0.0.1:$HP/v2/models/default/generate" -d '{"text_input": "ROMEO:", "max_tokens": 16}' > /dev/null &
done
wait_for_jobs() { for j in $(jobs -p); do case " ${pids[*]} " in *" $j "*) ;; *) wait "$j";; esac; done; }
wait_for_jobs
curl -s -X POST "127.0.0.1:$HP/v2/models/nope/generate" -d '{"text_input": "x"}' > /dev/null
# Triton's queue timeout (µs): 1 µs has passed before the engine can admit the request, so it
# ends unadmitted — 503 "request timeout expired", counted as a REJECTED failure.
code=$(curl -s -o "$WORK/timeout.json" -w '%{http_code}' -X POST "127.0.0.1:$HP/v2/models/default/generate" \
  -d '{"text_input": "ROMEO:", "max_tokens": 4, "parameters": {"timeout": 1, "priority": 2}}')
check "a queue timeout answers 503 ($code)" [ "$code" == "503" ]
check "its error says the timeout expired" grep -q 'request timeout expired' "$WORK/timeout.json"
code=$(curl -s -o "$WORK/bad_priority.json" -w '%{http_code}' -X POST "127.0.0.1:$HP/v2/models/default/generate" \
  -d '{"text_input": "ROMEO:", "parameters": {"priority": -1}}')
check "a negative priority is a 400 naming it ($code)" [ "$code" == "400" ]
check "  ... naming it" grep -q "parameter 'priority'" "$WORK/bad_priority.json"
# The gauges come from an engine snapshot taken every second: scrape until it has seen the
# requests finish (pending back to 0) and the queue timeout, at most 3 s.
for _ in $(seq 30); do
  curl -s "127.0.0.1:$MP/metrics" > "$WORK/scrape.txt"
  grep -q '^nv_inference_pending_request_count{model="default",version="1"} 0' "$WORK/scrape.txt" &&
    grep -q '^llmserve_queue_timeouts_total{model="default",version="1"} 1' "$WORK/scrape.txt" && break
  sleep 0.1
done

rc=0; promtool check metrics < "$WORK/scrape.txt" > "$WORK/lint.txt" 2>&1 || rc=$?
check "promtool check metrics: exit 0 or 3 (lint only)" [ $rc -eq 0 -o $rc -eq 3 ]
check "lint findings are only about Triton's names" [ -z "$(grep -v '^nv_' "$WORK/lint.txt" || true)" ]
value() { awk -v m="$1" '$1 == m { print $2 }' "$WORK/scrape.txt"; }
check "nv_inference_request_success counts 6" [ "$(value 'nv_inference_request_success{model="default",version="1"}')" == "6" ]
check "nv_inference_count counts 6" [ "$(value 'nv_inference_count{model="default",version="1"}')" == "6" ]
check "compute_infer_duration_us grew" [ "$(value 'nv_inference_compute_infer_duration_us{model="default",version="1"}')" -gt 0 ]
check "request_duration_us >= compute_infer" [ "$(value 'nv_inference_request_duration_us{model="default",version="1"}')" -ge "$(value 'nv_inference_compute_infer_duration_us{model="default",version="1"}')" ]
# REJECTED: the queue timeout and the 400 (refused before it started)
check "the queue timeout is a REJECTED failure" [ "$(value 'nv_inference_request_failure{model="default",reason="REJECTED",version="1"}')" == "2" ]
check "  ... not a BACKEND one" [ "$(value 'nv_inference_request_failure{model="default",reason="BACKEND",version="1"}')" == "0" ]
check "llmserve_queue_timeouts_total counts it" [ "$(value 'llmserve_queue_timeouts_total{model="default",version="1"}')" == "1" ]
check "pending count gauge present" grep -q '^nv_inference_pending_request_count{model="default",version="1"} 0' "$WORK/scrape.txt"
check "kv cache block gauge present" grep -q '^nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="max"' "$WORK/scrape.txt"

got=""
for _ in $(seq 1 40); do
  got=$(curl -s "127.0.0.1:$PP/api/v1/query?query=triton:queue_compute:ratio" | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")' 2>/dev/null || true)
  [ -n "$got" ] && break
  sleep 0.5
done
check "Prometheus evaluates triton:queue_compute:ratio from a live scrape ($got)" [ -n "$got" ]
# Speculative decoding (--speculative ngram): the same greedy text as the server without it, and
# its counters on /metrics.
SP=$(free_port); SMP=$(free_port)
"$BIN" serve --host 127.0.0.1 --http-port "$SP" --grpc-port -1 --metrics-port "$SMP" --num-kv-blocks 64 \
  --speculative ngram > "$WORK/serve_spec.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 120); do curl -sf "127.0.0.1:$SP/v2/health/ready" >/dev/null && break; sleep 0.25; done
body='{"text_input": "ROMEO: to be or not to be, to be or not to be, to be or", "max_tokens": 48, "temperature": 0}'
curl -s -X POST "127.0.0.1:$HP/v2/models/default/generate" -d "$body" > "$WORK/plain.json"
curl -s -X POST "127.0.0.1:$SP/v2/models/default/generate" -d "$body" > "$WORK/spec.json"
text() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["text_output"])' "$1"; }
check "greedy text with --speculative ngram equals the text without it" [ "$(text "$WORK/plain.json")" == "$(text "$WORK/spec.json")" ]
check "  ... and is not empty" [ -n "$(text "$WORK/spec.json")" ]
opt_out='{"text_input": "ROMEO: to be or not to be, to be or", "max_tokens": 8, "temperature": 0, "speculative": false}'
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "127.0.0.1:$SP/v2/models/default/generate" -d "$opt_out")
check "a request may opt out with \"speculative\": false ($code)" [ "$code" == "200" ]
for _ in $(seq 30); do
  curl -s "127.0.0.1:$SMP/metrics" > "$WORK/scrape_spec.txt"
  grep -q '^llmserve_spec_decode_num_draft_tokens_total{model="default",version="1"} [1-9]' "$WORK/scrape_spec.txt" && break
  sleep 0.1
done
check "llmserve_spec_decode_num_draft_tokens_total counts the drafts" grep -q '^llmserve_spec_decode_num_draft_tokens_total{model="default",version="1"} [1-9]' "$WORK/scrape_spec.txt"
check "llmserve_spec_decode_num_accepted_tokens_total is exported" grep -q '^llmserve_spec_decode_num_accepted_tokens_total{model="default",version="1"} ' "$WORK/scrape_spec.txt"
check "without speculation the counters stay 0" grep -q '^llmserve_spec_decode_num_drafts_total{model="default",version="1"} 0' "$WORK/scrape.txt"

[ "$fails" -eq 0 ] || { grep -E "failure|timeouts" "$WORK/scrape.txt"; echo "--- server log"; tail -40 "$WORK/serve.log"; }
echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
