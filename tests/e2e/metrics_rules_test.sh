#!/usr/bin/env bash
# The HPA's recording rules (spec/triton-stack.md §1.8, copied verbatim) evaluated by promtool on
# synthetic series shaped like llmserve's exposition: pins triton:queue_compute:ratio (and the three
# averages) so a change to the counters' names, labels or units shows up here. The live gauge
# llmserve_queue_compute_ratio computes the same value inside the server (unit-tested).
set -euo pipefail

if ! command -v promtool >/dev/null; then
  echo "FAIL: promtool not installed (scripts/install_deps.sh --test installs it)"
  exit 1
fi

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

cat >"$dir/rules.yaml" <<'YAML'
groups:
  - name: autoscaling
    interval: 6s
    rules:
      - record: triton:compute_duration:average
        expr: rate(nv_inference_compute_infer_duration_us[1m]) / clamp_min(rate(nv_inference_request_success[1m]),1)
      - record: triton:queue_duration:average
        expr: rate(nv_inference_queue_duration_us[1m]) / clamp_min(rate(nv_inference_request_success[1m]),1)
      - record: triton:request_duration:average
        expr: rate(nv_inference_request_duration_us[1m]) / clamp_min(rate(nv_inference_request_success[1m]),1)
      - record: triton:queue_compute:ratio
        expr: rate(nv_inference_queue_duration_us[1m]) / clamp_min(rate(nv_inference_compute_infer_duration_us[1m]),1)
YAML

# Per 15 s scrape: "busy" completes 30 requests (2/s) that queued 0.2 s and computed 0.05 s each
# (ratio 4); "slow" completes 2 (0.13/s) that queued 3 s and computed 1 s each (ratio 3): the
# averages divide by clamp_min(rate(success), 1), so below 1 request/s they report µs per second, not per request
# (400000, not 3000000) — the seed's rules behave so and the HPA only uses the ratio;
# "calm" queued 0.5 s per 2 s of compute (ratio 0.25); "idle" has flat counters (ratio 0: 0 / clamp 1);
# "trickle" adds 450 µs of queue and no compute (rate 30 µs/s over clamp 1 = 30).
cat >"$dir/rules_test.yaml" <<'YAML'
rule_files:
  - rules.yaml
evaluation_interval: 6s
tests:
  - interval: 15s
    input_series:
      - series: 'nv_inference_queue_duration_us{model="busy",version="1"}'
        values: '0+6000000x8'
      - series: 'nv_inference_compute_infer_duration_us{model="busy",version="1"}'
        values: '0+1500000x8'
      - series: 'nv_inference_request_duration_us{model="busy",version="1"}'
        values: '0+9000000x8'
      - series: 'nv_inference_request_success{model="busy",version="1"}'
        values: '0+30x8'
      - series: 'nv_inference_queue_duration_us{model="slow",version="1"}'
        values: '0+6000000x8'
      - series: 'nv_inference_compute_infer_duration_us{model="slow",version="1"}'
        values: '0+2000000x8'
      - series: 'nv_inference_request_success{model="slow",version="1"}'
        values: '0+2x8'
      - series: 'nv_inference_queue_duration_us{model="calm",version="1"}'
        values: '0+500000x8'
      - series: 'nv_inference_compute_infer_duration_us{model="calm",version="1"}'
        values: '0+2000000x8'
      - series: 'nv_inference_queue_duration_us{model="idle",version="1"}'
        values: '7000x8'
      - series: 'nv_inference_compute_infer_duration_us{model="idle",version="1"}'
        values: '9000x8'
      - series: 'nv_inference_queue_duration_us{model="trickle",version="1"}'
        values: '0+450x8'
      - series: 'nv_inference_compute_infer_duration_us{model="trickle",version="1"}'
        values: '0x8'
    promql_expr_test:
      - expr: triton:queue_compute:ratio
        eval_time: 2m
        exp_samples:
          - labels: 'triton:queue_compute:ratio{model="busy",version="1"}'
            value: 4
          - labels: 'triton:queue_compute:ratio{model="slow",version="1"}'
            value: 3
          - labels: 'triton:queue_compute:ratio{model="calm",version="1"}'
            value: 0.25
          - labels: 'triton:queue_compute:ratio{model="idle",version="1"}'
            value: 0
          - labels: 'triton:queue_compute:ratio{model="trickle",version="1"}'
            value: 30
      - expr: triton:queue_duration:average
        eval_time: 2m
        exp_samples:
          - labels: 'triton:queue_duration:average{model="busy",version="1"}'
            value: 200000
          - labels: 'triton:queue_duration:average{model="slow",version="1"}'
            value: 400000
      - expr: triton:compute_duration:average
        eval_time: 2m
        exp_samples:
          - labels: 'triton:compute_duration:average{model="busy",version="1"}'
            value: 50000
          - labels: 'triton:compute_duration:average{model="slow",version="1"}'
            value: 133333.33333333334
      - expr: triton:request_duration:average
        eval_time: 2m
        exp_samples:
          - labels: 'triton:request_duration:average{model="busy",version="1"}'
            value: 300000
YAML

promtool check rules "$dir/rules.yaml"
promtool test rules "$dir/rules_test.yaml"
echo "PASS: metrics recording rules"
