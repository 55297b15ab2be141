#!/usr/bin/env bash
# deploy/grafana/llmserve-dashboard.json: the JSON parses and is a Grafana dashboard with the tutorial's
# panels (queue:compute ratio, request duration, requests/failures per second, I/O duration, TRT-LLM and
# DCGM GPU panels) plus ours (TTFT, inter-token latency, waiting/running, KV usage); every PromQL
# expression parses (`promtool check rules` on a rules file made of them, Grafana's $__interval read as
# 1m); a planted bad expression must fail that check; and every llmserve/Triton metric a panel reads is
# exposed by the real server ($LLMSERVE serve, scraped after one request) or recorded by
# deploy/prometheus/rules.yaml. Other families (node-exporter, kube-state-metrics, DCGM) are listed.
set -uo pipefail
BIN=${LLMSERVE:?path of the llmserve binary}
SRC=${LLMSERVE_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
DASH="$SRC/deploy/grafana/llmserve-dashboard.json"
WORK=$(mktemp -d)
SERVER_PID=""
cleanup() { [ -n "$SERVER_PID" ] && kill -9 "$SERVER_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
command -v promtool > /dev/null || { echo "FAIL promtool not installed (scripts/install_deps.sh --test installs it)"; exit 1; }
failed=0

# 1. Structure and panels; writes the expressions as a rules file and the metric names they read.
if ! python3 - "$DASH" "$WORK" <<'PY'
import json, re, sys
dash = json.load(open(sys.argv[1])); work = sys.argv[2]
fails = []
def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond: fails.append(what)
check(dash.get("title") == "Inference Metrics" and dash.get("refresh") == "6s", "title 'Inference Metrics', refresh 6s")
check(any(v.get("type") == "datasource" and v.get("query") == "prometheus" for v in dash["templating"]["list"]),
      "a Prometheus datasource variable (import into any Grafana)")
panels = [p for p in dash["panels"] if p["type"] != "row"]
titles = {p["title"]: p for p in panels}
for t in ["Queue : Compute Ratio", "Request Duration", "Requests / Second", "I/O Duration", "TRT-LLM General",
          "TRT-LLM In-Flight Batcher", "TRT-LLM Requests", "GPU Utilization", "GPU Temperature", "GPU Power Usage",
          "GPU Memory Utilization", "Node CPU Utilization", "Node Memory Utilization"]:
    check(t in titles, f"seed panel '{t}'")
for t in ["Time to First Token", "Inter-Token Latency", "Requests Waiting / Running", "KV Cache Usage"]:
    check(t in titles, f"llmserve panel '{t}'")
check("max by(job)(triton:queue_compute:ratio)" in [x["expr"] for x in titles["Queue : Compute Ratio"]["targets"]],
      "the ratio panel plots max by(job)(triton:queue_compute:ratio)")
ids = [p["id"] for p in dash["panels"]]
check(len(ids) == len(set(ids)), "panel ids are unique")
check(all(p["gridPos"]["x"] + p["gridPos"]["w"] <= 24 for p in dash["panels"]), "panels fit the 24-column grid")
check(all(p["datasource"]["uid"] == "${datasource}" and p["targets"] for p in panels), "every panel has targets on ${datasource}")
rules, names = [], set()
for p in panels:
    for t in p["targets"]:
        expr = re.sub(r"\$__(rate_)?interval|\$\{__(rate_)?interval\}", "1m", t["expr"])
        rules.append(f"      - record: dashboard:panel_{p['id']}_{t['refId']}\n        expr: {json.dumps(expr)}")
        names.update(re.findall(r"\b(?:nv_[a-z0-9_]+|llmserve_[a-z0-9_]+|triton:[a-z_:]+|DCGM_[A-Z_]+|node_[a-zA-Z_]+|instance:[a-z_:0-9]+|kube_[a-z_]+)", expr))
open(f"{work}/dashboard_rules.yaml", "w").write("groups:\n  - name: dashboard\n    rules:\n" + "\n".join(rules) + "\n")
open(f"{work}/names.txt", "w").write("\n".join(sorted(names)) + "\n")
print(f"# {len(rules)} expressions in {len(panels)} panels")
sys.exit(1 if fails else 0)
PY
then failed=1; fi

# 2. Every expression parses; and the check can fail.
if promtool check rules "$WORK/dashboard_rules.yaml" > "$WORK/log" 2>&1; then
  echo "ok   every panel expression parses (promtool: $(grep -o '[0-9]* rules found' "$WORK/log"))"
else
  echo "FAIL panel expressions:"; cat "$WORK/log"; failed=1
fi
sed '0,/expr: "/s//expr: "sum by(job)(rate(nv_inference_request_success[1m]) + "/' "$WORK/dashboard_rules.yaml" > "$WORK/planted.yaml"
if promtool check rules "$WORK/planted.yaml" > /dev/null 2>&1; then
  echo "FAIL promtool accepted a planted unbalanced expression"; failed=1
else
  echo "ok   a planted unbalanced expression is rejected"
fi

# 3. The metrics the panels read, against the real server's exposition.
HTTP=$(free_port); METRICS=$(free_port)
"$BIN" serve --host 127.0.0.1 --http-port "$HTTP" --grpc-port -1 --metrics-port "$METRICS" --num-kv-blocks 64 \
  --model "$SRC/models/default" > "$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 300); do
  [ "$(curl -s -o /dev/null --max-time 2 -w '%{http_code}' "127.0.0.1:$HTTP/v2/health/ready")" == 200 ] && break
  kill -0 "$SERVER_PID" 2> /dev/null || break
  sleep 0.2
done
curl -s -X POST "127.0.0.1:$HTTP/v2/models/default/generate" -d '{"text_input": "ROMEO:", "max_tokens": 4}' > /dev/null
curl -s "127.0.0.1:$METRICS/metrics" > "$WORK/metrics.txt"
[ -s "$WORK/metrics.txt" ] || { echo "FAIL no metrics from llmserve serve"; tail "$WORK/server.log"; exit 1; }
external=()
while read -r name; do
  case $name in
    nv_*|llmserve_*)
      if grep -q "^$name[{ ]" "$WORK/metrics.txt"; then echo "ok   llmserve exposes $name"
      else echo "FAIL llmserve does not expose $name"; failed=1; fi ;;
    triton:*)
      if grep -q "record: $name$" "$SRC/deploy/prometheus/rules.yaml"; then echo "ok   $name is recorded by deploy/prometheus/rules.yaml"
      else echo "FAIL $name is not a recording rule"; failed=1; fi ;;
    *) external+=("$name") ;;
  esac
done < "$WORK/names.txt"
echo "# from other exporters (DCGM, node-exporter, kube-state-metrics): ${external[*]}"
[ $failed = 0 ] && echo "PASS: dashboard" || echo "FAIL: dashboard"
exit $failed
