#!/usr/bin/env bash
# deploy/prometheus/rules.yaml — the seed's recording rules as a plain Prometheus rules file (the local
# autoscaling loop and self-run Prometheus servers load it) — checked and unit-tested with promtool
# (deploy/prometheus/rules_test.yaml pins triton:queue_compute:ratio: 0 without queueing, 1 when waiting
# equals computing, 3 across a counter reset, the clamp below 1 µs/s, and the HPA's replica formula).
# Then a planted change to the ratio must make the unit tests fail, and the adapter/DCGM values files
# must parse and keep the tutorial's settings.
set -uo pipefail
SRC=${LLMSERVE_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
DIR="$SRC/deploy/prometheus"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
command -v promtool > /dev/null || { echo "FAIL promtool not installed (scripts/install_deps.sh --test installs it)"; exit 1; }
failed=0
step() { local what=$1; shift; if "$@" > "$WORK/log" 2>&1; then echo "ok   $what"; else echo "FAIL $what"; cat "$WORK/log"; failed=1; fi; }

step "promtool check rules deploy/prometheus/rules.yaml" promtool check rules "$DIR/rules.yaml"
step "promtool test rules deploy/prometheus/rules_test.yaml" promtool test rules "$DIR/rules_test.yaml"
step "rules.yaml: group autoscaling, interval 6s, the four records" python3 - "$DIR/rules.yaml" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
assert re.search(r"- name: autoscaling\n\s+interval: 6s\n", text), "group autoscaling / interval 6s"
records = re.findall(r"record: (\S+)", text)
assert records == ["triton:compute_duration:average", "triton:queue_duration:average",
                   "triton:request_duration:average", "triton:queue_compute:ratio"], records
assert ("expr: rate(nv_inference_queue_duration_us[1m]) / clamp_min(rate(nv_inference_compute_infer_duration_us[1m]),1)"
        in text), "the seed's ratio expression"
PY

# The unit tests must notice a changed ratio (here: divided by the request rate instead of compute time).
cp "$DIR/rules_test.yaml" "$WORK/"
sed 's|/ clamp_min(rate(nv_inference_compute_infer_duration_us\[1m\]),1)$|/ clamp_min(rate(nv_inference_request_success[1m]),1)|' \
  "$DIR/rules.yaml" > "$WORK/rules.yaml"
if cmp -s "$DIR/rules.yaml" "$WORK/rules.yaml"; then
  echo "FAIL could not plant the change"; failed=1
elif promtool test rules "$WORK/rules_test.yaml" > "$WORK/log" 2>&1; then
  echo "FAIL the unit tests pass with a changed ratio"; failed=1
else
  echo "ok   the unit tests fail when the ratio's denominator changes"
fi

step "prometheus-adapter-values.yaml: relist 6s, default rules, Prometheus URL" python3 - "$DIR/prometheus-adapter-values.yaml" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
for want in [r"(?m)^metricsRelistInterval: 6s$", r"(?m)^  default: true$", r"(?m)^  url: http://prometheus-kube-prometheus-prometheus\.", r"(?m)^  port: 9090$"]:
    assert re.search(want, t), want
PY
step "dcgm-exporter-values.yaml: --kubernetes=true, 1 s interval, release label" python3 - "$DIR/dcgm-exporter-values.yaml" <<'PY'
import sys
t = open(sys.argv[1]).read()
for want in ["--kubernetes=true", "--collect-interval=1000", "interval: 1s", "release: prometheus", "nvidia.com/gpu: present"]:
    assert want in t, want
PY
[ $failed = 0 ] && echo "PASS: deploy rules" || echo "FAIL: deploy rules"
exit $failed
