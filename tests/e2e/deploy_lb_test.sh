#!/usr/bin/env bash
# deploy/lb on loopback: nginx (Debian nginx-light, run by hand) with the shipped
# deploy/lb/nginx/llmserve.conf in front of two `llmserve serve` processes. Checks that requests
# are spread over both replicas (their nv_inference_request_success), that generate_stream and an
# OpenAI `stream: true` completion arrive through nginx event by event (and, as a control, that a
# server block forced to buffer is detected as buffered), that client and upstream connections
# are kept alive, that gRPC passes through grpc_pass over h2c, and that the shipped nginx.conf and
# the Traefik files (which are not installable here: parsed as YAML and cross-checked only) hold up.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BIN=${LLMSERVE:?path of the llmserve binary}
SRC=${LLMSERVE_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
LB=$SRC/deploy/lb
export LLMSERVE_DEFAULT_MODEL=${LLMSERVE_DEFAULT_MODEL:-$SRC/models/default}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT
die() { echo "FAIL $*"; echo "$passed passed, $((failed + 1)) failed"; exit 1; }
wait_http() {  # wait_http URL NAME LOG
  for _ in $(seq 300); do
    [ "$(curl -s -o /dev/null --max-time 2 -w '%{http_code}' "$1")" == 200 ] && return 0
    sleep 0.2
  done
  echo "$2 did not come up:"; cat "$3"; die "$2 start"
}
successes() {  # successes METRICS_PORT -> nv_inference_request_success of the default model
  curl -s "127.0.0.1:$1/metrics" | awk '/^nv_inference_request_success\{/ {s += $2} END {print s + 0}'
}

command -v nginx > /dev/null || die "nginx not installed (scripts/install_deps.sh --test installs nginx-light)"

# ---------- two llmserve replicas ----------
declare -A HTTP GRPC METRICS
for r in a b; do
  HTTP[$r]=$(free_port); GRPC[$r]=$(free_port); METRICS[$r]=$(free_port)
  "$BIN" serve --host 127.0.0.1 --http-port "${HTTP[$r]}" --grpc-port "${GRPC[$r]}" --metrics-port "${METRICS[$r]}" \
    --num-kv-blocks 64 > "$WORK/replica-$r.log" 2>&1 &
  PIDS+=($!)
done
for r in a b; do wait_http "127.0.0.1:${HTTP[$r]}/v2/health/ready" "replica $r" "$WORK/replica-$r.log"; done

# ---------- nginx: our main file + the shipped server blocks + upstreams at the test ports ----------
NGX=$(free_port); NGX_GRPC=$(free_port); NGX_BUF=$(free_port)
mkdir -p "$WORK/tmp"
sed -e "s/^\(\s*\)listen 8000;/\1listen 127.0.0.1:$NGX;/" -e "s/^\(\s*\)listen 8001 http2;/\1listen 127.0.0.1:$NGX_GRPC http2;/" \
  "$LB/nginx/llmserve.conf" > "$WORK/llmserve.conf"
check "shipped llmserve.conf has the two listen lines the test rewrites" \
  [ "$(grep -c -e "listen 127.0.0.1:$NGX;" -e "listen 127.0.0.1:$NGX_GRPC http2;" "$WORK/llmserve.conf")" == 2 ]
# The shipped upstream blocks with the example addresses replaced by the two replicas.
python3 - "$LB/nginx/upstreams.conf" "$WORK/upstreams.conf" "${HTTP[a]}" "${HTTP[b]}" "${GRPC[a]}" "${GRPC[b]}" <<'EOF'
import re, sys
src, dst, ha, hb, ga, gb = sys.argv[1:]
text = open(src).read()
ports = {"8000": iter([ha, hb]), "8001": iter([ga, gb])}
text, n = re.subn(r"server \S+:(8000|8001)", lambda m: f"server 127.0.0.1:{next(ports[m.group(1)])}", text)
assert n == 4, f"expected 4 server lines in upstreams.conf, found {n}"
open(dst, "w").write(text)
EOF
[ $? == 0 ] || die "rewrite upstreams.conf"
cat > "$WORK/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $WORK/tmp; proxy_temp_path $WORK/tmp; fastcgi_temp_path $WORK/tmp;
  uwsgi_temp_path $WORK/tmp; scgi_temp_path $WORK/tmp;
  include $WORK/upstreams.conf;
  include $WORK/llmserve.conf;
  # Control: the same proxy with gzip on for text/event-stream (deflate holds output back until its
  # buffer fills), so the streaming check below is shown to notice buffering.
  server {
    listen 127.0.0.1:$NGX_BUF;
    location / {
      proxy_pass http://llmserve_http; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_buffering on; proxy_ignore_headers X-Accel-Buffering;
      gzip on; gzip_types text/event-stream; gzip_min_length 0;
    }
  }
}
EOF
check "nginx -t accepts the test configuration" nginx -t -q -e "$WORK/nginx-error.log" -c "$WORK/nginx.conf"
check "nginx -t accepts the shipped deploy/lb/nginx/nginx.conf" nginx -t -q -e "$WORK/nginx-error.log" -c "$LB/nginx/nginx.conf"
nginx -e "$WORK/nginx-error.log" -c "$WORK/nginx.conf" > "$WORK/nginx.out" 2>&1 &
PIDS+=($!)
wait_http "127.0.0.1:$NGX/v2/health/ready" nginx "$WORK/nginx-error.log"

# ---------- spreading: 8 sequential generate requests through nginx ----------
a0=$(successes "${METRICS[a]}"); b0=$(successes "${METRICS[b]}")
for i in $(seq 8); do
  curl -s -X POST "127.0.0.1:$NGX/v2/models/default/generate" -d '{"text_input": "ROMEO:", "max_tokens": 4}' > "$WORK/gen.$i"
done
a1=$(successes "${METRICS[a]}"); b1=$(successes "${METRICS[b]}")
echo "     replica a served $((a1 - a0)), replica b served $((b1 - b0)) of 8"
check "all 8 generate requests answered with text_output" [ "$(grep -l '"text_output"' "$WORK"/gen.* | wc -l)" == 8 ]
check "both replicas counted them (sum 8)" [ $((a1 - a0 + b1 - b0)) == 8 ]
check "requests spread over both replicas (>= 2 each)" [ $((a1 - a0)) -ge 2 -a $((b1 - b0)) -ge 2 ]

# ---------- SSE through nginx: events arrive one by one ----------
cat > "$WORK/sse_timing.py" <<'EOF'
# Reads an SSE response as it comes, stamping each event when its bytes are read; prints a JSON
# summary. "bursts" counts the reads that brought events: a buffering proxy hands many events over
# in one read, an unbuffered one about one per decode step. (Not gaps of more than 1 ms: the
# default model decodes a token in ~0.7 ms on the CPU with its fp16 weights kept.)
# It accepts gzip, as browsers do, and inflates a gzip-encoded response.
import http.client, json, sys, time, zlib
port, path, body = int(sys.argv[1]), sys.argv[2], sys.argv[3]
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
headers = {"Content-Type": "application/json", "Accept-Encoding": "gzip"}
t0 = time.monotonic()
conn.request("POST", path, body=body, headers=headers)
resp = conn.getresponse()
inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if resp.getheader("Content-Encoding") == "gzip" else None
stamps, texts, done, pending = [], [], False, b""
while True:
    chunk = resp.read1(65536)
    if not chunk:
        break
    t = time.monotonic() - t0
    pending += inflate.decompress(chunk) if inflate else chunk
    *lines, pending = pending.split(b"\n")
    for line in lines:
        if not line.startswith(b"data: "):
            continue
        payload = line[6:].strip()
        if payload == b"[DONE]":
            done = True
            continue
        stamps.append(t)
        d = json.loads(payload)
        texts.append(d["text_output"] if "text_output" in d else d["choices"][0]["text"])
bursts = 1 + sum(1 for a, b in zip(stamps, stamps[1:]) if b > a) if stamps else 0
print(json.dumps({"status": resp.status, "type": resp.getheader("Content-Type"), "events": len(stamps),
                  "first": stamps[0] if stamps else None, "last": stamps[-1] if stamps else None,
                  "bursts": bursts, "done": done, "gzip": inflate is not None,
                  "text_len": len("".join(texts))}))
EOF
sse() { python3 "$WORK/sse_timing.py" "$@"; }
field() { python3 -c "import json,sys; d=json.loads(sys.argv[1]); print(d['$2'])" "$1"; }
unbuffered() {  # unbuffered SUMMARY: >= 60 events, first well before last, in many separate reads
  python3 -c "
import json, sys
d = json.loads(sys.argv[1])
ok = d['status'] == 200 and d['events'] >= 60 and d['first'] < 0.5 * d['last'] and d['bursts'] >= d['events'] // 4
sys.exit(0 if ok else 1)" "$1"
}
show() { python3 -c "import json,sys; d=json.loads(sys.argv[1]); print('     %s: %d events, first at %.3f s, last at %.3f s, %d bursts' % (sys.argv[2], d['events'], d['first'] or 0, d['last'] or 0, d['bursts']))" "$1" "$2"; }

gen_body='{"text_input": "ROMEO:", "max_tokens": 120, "min_tokens": 120, "temperature": 0, "stream": true}'
s=$(sse "$NGX" /v2/models/default/generate_stream "$gen_body"); show "$s" "generate_stream via nginx"
check "generate_stream via nginx is text/event-stream" [ "$(field "$s" type)" == "text/event-stream; charset=utf-8" ]
check "generate_stream via nginx arrives event by event" unbuffered "$s"
oai_body='{"model": "default", "prompt": "ROMEO:", "max_tokens": 120, "ignore_eos": true, "temperature": 0, "stream": true}'
s=$(sse "$NGX" /v1/completions "$oai_body"); show "$s" "OpenAI stream via nginx"
check "OpenAI stream via nginx arrives event by event" unbuffered "$s"
check "OpenAI stream via nginx ends with [DONE]" [ "$(field "$s" done)" == True ]
s=$(sse "$NGX_BUF" /v1/completions "$oai_body"); show "$s" "control, gzip on"
buffered() {  # buffered SUMMARY: all events came, but in a few large bursts
  python3 -c "
import json, sys
d = json.loads(sys.argv[1])
sys.exit(0 if d['gzip'] and d['events'] >= 60 and d['bursts'] < d['events'] // 4 else 1)" "$1"
}
check "control: the same check sees a buffering proxy as buffered" buffered "$s"

# ---------- keep-alive ----------
# Client side: five requests on one connection to nginx keep the same local port.
check "client keep-alive: 5 requests over one connection to nginx" python3 - "$NGX" <<'EOF'
import http.client, sys
conn = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=60)
ports = set()
for _ in range(5):
    conn.request("POST", "/v2/models/default/generate", body='{"text_input": "a", "max_tokens": 2}')
    r = conn.getresponse(); r.read()
    assert r.status == 200 and (r.getheader("Connection") or "").lower() != "close"
    ports.add(conn.sock.getsockname()[1])
sys.exit(0 if len(ports) == 1 else 1)
EOF
# Upstream side: new TCP connections to the replicas' HTTP ports during 10 more requests, counted
# from /proc/net/tcp (a closed connection stays listed in TIME_WAIT for 60 s). Without keepalive
# each request would open one.
conns() {
  python3 - "${HTTP[a]}" "${HTTP[b]}" <<'EOF'
import sys
ports = {int(p) for p in sys.argv[1:]}
seen = set()
for line in open("/proc/net/tcp").read().splitlines()[1:]:
    f = line.split()
    lp, rp = int(f[1].split(":")[1], 16), int(f[2].split(":")[1], 16)
    if rp in ports: seen.add((rp, lp))
    elif lp in ports and rp not in ports and f[3] != "0A": seen.add((lp, rp))
print(" ".join(f"{a}-{b}" for a, b in sorted(seen)))
EOF
}
before=$(conns)
for i in $(seq 10); do curl -s -o /dev/null -X POST "127.0.0.1:$NGX/v2/models/default/generate" -d '{"text_input": "b", "max_tokens": 2}'; done
after=$(conns)
new=$(comm -13 <(tr ' ' '\n' <<< "$before" | sort) <(tr ' ' '\n' <<< "$after" | sort) | grep -c .)
echo "     new upstream connections during 10 requests: $new"
check "upstream keep-alive: at most 2 new connections for 10 requests" [ "$new" -le 2 ]

# ---------- gRPC through grpc_pass (h2c) ----------
a0=$(successes "${METRICS[a]}"); b0=$(successes "${METRICS[b]}")
"$BIN" bench serve --target grpc --host 127.0.0.1 --port "$NGX_GRPC" --concurrency 2 --num-requests 6 \
  --input-len 8 --output-len 8 --no-progress --json "$WORK/grpc.json" > "$WORK/grpc.out" 2>&1
rc=$?
a1=$(successes "${METRICS[a]}"); b1=$(successes "${METRICS[b]}")
check "gRPC ModelStreamInfer via nginx: bench exits 0" [ $rc == 0 ]
[ $rc == 0 ] || tail -40 "$WORK/grpc.out"
check "  ... 6 ok, 0 errors" [ "$(python3 -c "import json; p=json.load(open('$WORK/grpc.json'))['points'][0]; print(p['num_ok'], p['num_errors'])" 2>/dev/null)" == "6 0" ]
check "  ... the replicas counted 6 requests" [ $((a1 - a0 + b1 - b0)) == 6 ]
echo "     gRPC: replica a served $((a1 - a0)), replica b served $((b1 - b0)) of 6"

# ---------- Traefik: not installable here; the files must parse and agree with each other ----------
check "Traefik static + dynamic config parse as YAML and agree" python3 - "$LB/traefik/traefik.yml" "$LB/traefik/dynamic.yml" <<'EOF'
import sys
try:
    import yaml
except ImportError:
    sys.exit("python3-yaml is needed for this check (Debian package python3-yaml)")
static, dynamic = (yaml.safe_load(open(f)) for f in sys.argv[1:])
entry_points = set(static["entryPoints"])
assert static["providers"]["file"]["filename"].endswith("dynamic.yml")
http = dynamic["http"]
for name, router in http["routers"].items():
    assert router["service"] in http["services"], f"router {name}: unknown service"
    assert set(router["entryPoints"]) <= entry_points, f"router {name}: unknown entry point"
schemes = set()
for name, svc in http["services"].items():
    lb = svc["loadBalancer"]
    assert lb["servers"], name
    schemes |= {s["url"].split("://")[0] for s in lb["servers"]}
    assert lb["serversTransport"] in http["serversTransports"], f"service {name}: unknown serversTransport"
    assert lb["healthCheck"].get("path") == "/v2/health/ready" or lb["healthCheck"].get("mode") == "grpc", name
assert schemes == {"http", "h2c"}, schemes
EOF

finish
