#!/usr/bin/env bash
# `llmserve serve` end to end over real HTTP with curl, the way the seed's load client calls it:
# generate / generate_stream / infer answers equal `llmserve generate` at temperature 0; health,
# metadata, config, stats; 400/401/404/405/413/503 with Triton's {"error": ...}; overload gives
# 503 + Retry-After while admitted requests finish; a client that disconnects mid-stream cancels
# its request; SIGTERM drains (ready 503, in-flight requests finish 200, exit 0).
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BIN=${LLMSERVE:?path of the llmserve binary}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT
code() { curl -s -o "$WORK/body" -D "$WORK/headers" -w '%{http_code}' --max-time 60 "$@"; }
has_error() { grep -q "$1" "$WORK/body"; }

start_server() {  # start_server NAME ARGS... ; sets PORT and SERVER_PID
  local name=$1; shift
  PORT=$(free_port)
  "$BIN" serve --http-port "$PORT" --grpc-port 0 --metrics-port "${METRICS_PORT:-0}" --host 127.0.0.1 --num-kv-blocks 64 "$@" > "$WORK/$name.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  for _ in $(seq 300); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "127.0.0.1:$PORT/v2/health/ready")" == 200 ] && return 0
    sleep 0.2
  done
  echo "server $name did not become ready:"; cat "$WORK/$name.log"; exit 1
}

# ---------- main server: default model, body limit 4000 bytes ----------
start_server main --max-body-bytes 4000 --model-alias gpt2
H=127.0.0.1:$PORT
check "log says where it listens" grep -q "listening on 127.0.0.1:$PORT" "$WORK/main.log"
check "log says the model is ready" grep -q "model 'default'.* is ready" "$WORK/main.log"

PROMPT="ROMEO:"
want=$("$BIN" generate --prompt "$PROMPT" --max-tokens 12 --temperature 0 --num-kv-blocks 64 --json 2>/dev/null | json "d['text']")
# Exactly as the seed's client: no scheme, no Content-Type.
out=$(curl -X POST -s "$H/v2/models/default/generate" -d "{\"text_input\": \"$PROMPT\", \"max_tokens\": 12, \"temperature\": 0}")
got=$(echo "$out" | json "d['text_output']")
check "generate text_output non-empty" [ -n "$got" ]
check "generate equals llmserve generate" [ "$got" == "$want" ]
check "generate model_name/version" [ "$(echo "$out" | json "d['model_name'], d['model_version']")" == "default 1" ]
got=$(curl -X POST -s "$H/v2/models/gpt2/versions/1/generate" -d "{\"text_input\": \"$PROMPT\", \"parameters\": {\"max_tokens\": 12, \"temperature\": 0}}" | json "d['text_output']")
check "alias + version + nested parameters" [ "$got" == "$want" ]

curl -sN --max-time 60 "$H/v2/models/default/generate_stream" -d "{\"text_input\": \"$PROMPT\", \"max_tokens\": 12, \"temperature\": 0, \"stream\": true}" > "$WORK/sse"
got=$(python3 -c '
import json,sys
ev=[l[6:] for l in open(sys.argv[1]).read().split("\n") if l.startswith("data: ")]
print("".join(json.loads(e)["text_output"] for e in ev), end="")' "$WORK/sse")
check "generate_stream events concatenate to the same text" [ "$got" == "$want" ]
check "generate_stream has several events" [ "$(grep -c '^data: ' "$WORK/sse")" -gt 1 ]
check "generate_stream content type" [ "$(curl -sN -o /dev/null -w '%{content_type}' "$H/v2/models/default/generate_stream" -d '{"text_input":"a","max_tokens":1}')" == "text/event-stream; charset=utf-8" ]

infer='{"id":"r1","inputs":[{"name":"text_input","datatype":"BYTES","shape":[1,1],"data":["'$PROMPT'"]},
 {"name":"max_tokens","datatype":"INT32","shape":[1,1],"data":[12]},{"name":"temperature","datatype":"FP32","shape":[1,1],"data":[0]}],
 "outputs":[{"name":"text_output"}]}'
out=$(curl -s "$H/v2/models/default/infer" -d "$infer")
check "infer text_output tensor" [ "$(echo "$out" | json "d['outputs'][0]['data'][0]")" == "$want" ]
check "infer echoes id, one output" [ "$(echo "$out" | json "d['id'], len(d['outputs']), d['outputs'][0]['datatype']")" == "r1 1 BYTES" ]
check "infer wrong datatype names the tensor" [ "$(code "$H/v2/models/default/infer" -d '{"inputs":[{"name":"text_input","datatype":"BYTES","shape":[1],"data":["a"]},{"name":"max_tokens","datatype":"FP32","shape":[1],"data":[3]}]}')" == 400 ]
check "  ... message" has_error "max_tokens"
check "infer shape/data mismatch" [ "$(code "$H/v2/models/default/infer" -d '{"inputs":[{"name":"text_input","datatype":"BYTES","shape":[2],"data":["a"]}]}')" == 400 ]
check "  ... message" has_error "text_input"

# Health, metadata, config, stats.
check "live 200" [ "$(code "$H/v2/health/live")" == 200 ]
check "ready 200" [ "$(code "$H/v2/health/ready")" == 200 ]
check "model ready 200" [ "$(code "$H/v2/models/default/ready")" == 200 ]
check "server metadata" [ "$(curl -s "$H/v2" | json "d['name'], 'generate' in d['extensions'], 'model_repository' in d['extensions']")" == "llmserve True False" ]
check "model metadata" [ "$(curl -s "$H/v2/models/default" | json "d['name'], d['versions'], [t['datatype'] for t in d['inputs'] if t['name']=='text_input']")" == "default ['1'] ['BYTES']" ]
check "model config" [ "$(curl -s "$H/v2/models/default/config" | json "[t['data_type'] for t in d['input'] if t['name']=='text_input'][0], d['max_batch_size'] > 0")" == "TYPE_STRING True" ]
check "model stats count successes" [ "$(curl -s "$H/v2/models/default/stats" | json "d['model_stats'][0]['inference_stats']['success']['count'] >= 5")" == True ]
check "all stats" [ "$(curl -s "$H/v2/models/stats" | json "d['model_stats'][0]['name']")" == default ]

# Errors.
check "400 unknown model (Triton: INVALID_ARG)" [ "$(code "$H/v2/models/nope/generate" -d '{"text_input":"a","max_tokens":1}')" == 400 ]
check "  ... message" has_error "Request for unknown model: 'nope' is not found"
check "404 unknown version" [ "$(code "$H/v2/models/default/versions/7/generate" -d '{"text_input":"a"}')" == 404 ]
check "404 unknown route" [ "$(code "$H/v2/nothing/here")" == 404 ]
check "405 wrong method" [ "$(code -X GET "$H/v2/models/default/generate")" == 405 ]
check "HEAD on a GET route: 200, GET's Content-Length, no body" bash -c "[ \"\$(curl -s -I -o '$WORK/head' -w '%{http_code}' '$H/v2')\" == 200 ] && grep -qi '^content-length: [1-9]' '$WORK/head'"
check "  ... and the connection stays usable (no stray body bytes)" [ "$(curl -s -o /dev/null -w '%{http_code}' -I "$H/v2" --next -s -o /dev/null -w '%{http_code}' "$H/v2/health/live")" == 200200 ]
check "  ... Allow: POST" grep -qi "^allow: POST" "$WORK/headers"
big=$(python3 -c 'print("{\"text_input\": \"" + "a " * 3000 + "\", \"max_tokens\": 1}")')
check "413 body over --max-body-bytes" [ "$(code "$H/v2/models/default/generate" -d "$big")" == 413 ]
check "400 malformed JSON" [ "$(code "$H/v2/models/default/generate" -d '{"text_input": ')" == 400 ]
deep=$(python3 -c 'print("{\"text_input\": " + "[" * 200 + "\"x\"" + "]" * 200 + "}")')
check "400 JSON nested 200 deep" [ "$(code "$H/v2/models/default/generate" -d "$deep")" == 400 ]
check "  ... message" has_error "levels deep"
deep=$(python3 -c 'print("{\"model\": \"default\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"tools\": " + "[" * 200 + "]" * 200 + "}")')
check "400 JSON nested 200 deep on /v1" [ "$(code "$H/v1/chat/completions" -d "$deep")" == 400 ]
check "400 stop_token_ids beyond int32 (2^32 + 198 must not wrap to 198)" [ "$(code "$H/v1/completions" -d '{"model": "default", "prompt": "a", "max_tokens": 2, "stop_token_ids": [4294967494]}')" == 400 ]
check "  ... message" has_error "stop_token_ids"
check "400 max_tokens as a float beyond int64" [ "$(code "$H/v1/completions" -d '{"model": "default", "prompt": "a", "max_tokens": 1e300}')" == 400 ]
check "400 number out of range (1e999)" [ "$(code "$H/v2/models/default/generate" -d '{"text_input": "a", "max_tokens": 1e999}')" == 400 ]
check "400 number out of range on /v1" [ "$(code "$H/v1/completions" -d '{"model": "default", "prompt": "a", "max_tokens": 1e999}')" == 400 ]
check "400 wrong type names the field" [ "$(code "$H/v2/models/default/generate" -d '{"text_input":"a","max_tokens":"ten"}')" == 400 ]
check "  ... message" has_error "max_tokens"
check "400 max_tokens 0" [ "$(code "$H/v2/models/default/generate" -d '{"text_input":"a","max_tokens":0}')" == 400 ]
check "  ... message" has_error "max_tokens must be >= 1"
check "400 max_tokens negative" [ "$(code "$H/v2/models/default/generate" -d '{"text_input":"a","max_tokens":-5}')" == 400 ]
check "400 missing text_input" [ "$(code "$H/v2/models/default/generate" -d '{"max_tokens":3}')" == 400 ]
check "  ... message" has_error "text_input"
check "400 temperature out of range" [ "$(code "$H/v2/models/default/generate" -d '{"text_input":"a","temperature":-1}')" == 400 ]
check "  ... message" has_error "temperature"
long=$(python3 -c 'print("{\"text_input\": \"" + "hello " * 300 + "\", \"max_tokens\": 8}")')
check "400 prompt too long" [ "$(code "$H/v2/models/default/generate" -d "$long")" == 400 ]
check "  ... message names the limit" has_error "max_model_len"
printf '{"text_input": "\xff\xfe", "max_tokens": 2}' > "$WORK/bad_utf8"
check "400 invalid UTF-8" [ "$(code "$H/v2/models/default/generate" --data-binary @"$WORK/bad_utf8")" == 400 ]
check "  ... message" has_error "UTF-8"

# A client that disconnects mid-stream cancels its request; the server keeps serving.
before=$(curl -s "$H/v2/models/default/stats" | json "d['model_stats'][0]['cancel_count']")
python3 - "$PORT" <<'PY'
import socket, sys
body = b'{"text_input":"KING:","max_tokens":240,"ignore_eos":true}'
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=60)
s.sendall(b"POST /v2/models/default/generate_stream HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
data = b""
while b"data: " not in data:  # the first event: the request is generating
    data += s.recv(4096)
s.close()
PY
cancelled=no
for _ in $(seq 50); do
  now=$(curl -s "$H/v2/models/default/stats" | json "d['model_stats'][0]['cancel_count']")
  [ "$now" -gt "$before" ] && { cancelled=yes; break; }
  sleep 0.2
done
check "disconnect cancels the request (stats)" [ $cancelled == yes ]
check "disconnect is logged" grep -q "cancelled: the client disconnected" "$WORK/main.log"
check "server still serves after a disconnect" [ "$(code "$H/v2/models/default/generate" -d '{"text_input":"a","max_tokens":2}')" == 200 ]

# Keep-alive: two requests over one connection.
n=$(curl -sv "$H/v2/health/live" "$H/v2/health/live" 2>&1 | grep -c "Re-using existing connection")
check "keep-alive reuses the connection" [ "$n" -ge 1 ]

# Pipelining: three requests in one write are answered in order on one connection.
pipelined=$(python3 - "$PORT" <<'PY'
import re, socket, sys
body = b'{"text_input":"hi","max_tokens":2}'
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=60)
s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n"
          b"POST /v2/models/default/generate HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
          b"GET /v2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % (len(body), body))
data = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    data += d
print(" ".join(re.findall(r"HTTP/1\.1 (\d{3}) ", data.decode())))
PY
)
check "pipelined requests answered in order ($pipelined)" [ "$pipelined" == "200 200 200" ]

kill -TERM "$SERVER_PID"; wait "$SERVER_PID"; rc=$?
check "main server exits 0 on SIGTERM" [ $rc == 0 ]

# ---------- api key + overload: one running, one waiting ----------
start_server busy --max-batch-size 1 --max-queue-size 1 --api-key sekret
H=127.0.0.1:$PORT
AUTH="Authorization: Bearer sekret"
check "401 without the api key" [ "$(code "$H/v2/models/default/generate" -d '{"text_input":"a","max_tokens":1}')" == 401 ]
check "401 with a wrong key" [ "$(code -H "Authorization: Bearer nope" "$H/v2/models/default/generate" -d '{"text_input":"a","max_tokens":1}')" == 401 ]
check "200 with the api key" [ "$(code -H "$AUTH" "$H/v2/models/default/generate" -d '{"text_input":"a","max_tokens":1}')" == 200 ]
check "200 with 'bearer' in lower case (the scheme is case-insensitive)" [ "$(code -H "authorization: bearer sekret" "$H/v2/models/default/generate" -d '{"text_input":"a","max_tokens":1}')" == 200 ]
check "401, not 404, for an unknown route without the key" [ "$(code "$H/v2/nothing/here")" == 401 ]
check "  ... 404 with it" [ "$(code -H "$AUTH" "$H/v2/nothing/here")" == 404 ]
check "health stays open" [ "$(code "$H/v2/health/ready")" == 200 ]
for i in 1 2 3 4 5; do
  curl -s -o "$WORK/ov$i.body" -D "$WORK/ov$i.headers" -w '%{http_code}' --max-time 120 -H "$AUTH" \
    "$H/v2/models/default/generate" -d '{"text_input":"KING:","max_tokens":24,"ignore_eos":true}' > "$WORK/ov$i.code" &
done
wait $(jobs -p | grep -v "$SERVER_PID") 2>/dev/null
n200=0 n503=0 retry=0
for i in 1 2 3 4 5; do
  c=$(cat "$WORK/ov$i.code")
  [ "$c" == 200 ] && n200=$((n200 + 1))
  if [ "$c" == 503 ]; then n503=$((n503 + 1)); grep -qi "^retry-after: 1" "$WORK/ov$i.headers" && retry=$((retry + 1)); fi
done
check "overload: some 503 ($n503)" [ $n503 -ge 1 ]
check "overload: 503 carries Retry-After" [ $retry == $n503 ]
check "overload: admitted ones complete 200 ($n200)" [ $n200 -ge 1 ]
check "overload: every request answered" [ $((n200 + n503)) == 5 ]
# The same overload through the OpenAI routes: 429 in OpenAI's envelope, with Retry-After.
for i in 1 2 3 4 5; do
  curl -s -o "$WORK/oa$i.body" -D "$WORK/oa$i.headers" -w '%{http_code}' --max-time 120 -H "$AUTH" \
    "$H/v1/completions" -d '{"model":"default","prompt":"KING:","max_tokens":24,"ignore_eos":true}' > "$WORK/oa$i.code" &
done
wait $(jobs -p | grep -v "$SERVER_PID") 2>/dev/null
n200=0 n429=0 retry=0 envelope=0
for i in 1 2 3 4 5; do
  c=$(cat "$WORK/oa$i.code")
  [ "$c" == 200 ] && n200=$((n200 + 1))
  if [ "$c" == 429 ]; then
    n429=$((n429 + 1))
    grep -qi "^retry-after: 1" "$WORK/oa$i.headers" && retry=$((retry + 1))
    python3 -c "import json,sys; e=json.load(open(sys.argv[1]))['error']; sys.exit(0 if e['type']=='rate_limit_exceeded' and 'overloaded' in e['message'] else 1)" "$WORK/oa$i.body" && envelope=$((envelope + 1))
  fi
done
check "openai overload: some 429 ($n429)" [ $n429 -ge 1 ]
check "openai overload: 429 carries Retry-After and OpenAI's error envelope" [ $retry == $n429 -a $envelope == $n429 ]
check "openai overload: admitted ones complete 200 ($n200)" [ $n200 -ge 1 ]
check "openai overload: every request answered" [ $((n200 + n429)) == 5 ]
check "openai 401 in OpenAI's envelope" [ "$(curl -s "$H/v1/models" | python3 -c "import json,sys; print(json.load(sys.stdin)['error']['code'])")" == invalid_api_key ]
kill -TERM "$SERVER_PID"; wait "$SERVER_PID"
check "busy server exits 0" [ $? == 0 ]

# ---------- drain: SIGTERM during long requests ----------
# On the null backend paced at 20 ms a step, four 50-token requests one at a time take ~4 s on any
# machine, so the drain window is always there to observe (timing the model raced the machine).
LLMSERVE_NULL_STEP_DELAY_MS=20 start_server drain --device null --max-batch-size 1 --drain-timeout 120s
H=127.0.0.1:$PORT
n_req=4
max_tokens=50
for i in $(seq "$n_req"); do
  curl -s -o "$WORK/dr$i.body" -w '%{http_code}' --max-time 300 "$H/v2/models/default/generate" \
    -d "{\"text_input\":\"KING:\",\"max_tokens\":$max_tokens,\"ignore_eos\":true}" > "$WORK/dr$i.code" &
done
sleep 0.5
kill -TERM "$SERVER_PID"
not_ready=no
for _ in $(seq 30); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$H/v2/health/ready")" == 503 ] && { not_ready=yes; break; }
  sleep 0.1
done
check "draining: ready turns 503" [ $not_ready == yes ]
check "draining: live stays 200" [ "$(code "$H/v2/health/live")" == 200 ]
check "draining: new inference 503" [ "$(code "$H/v2/models/default/generate" -d '{"text_input":"a","max_tokens":1}')" == 503 ]
wait "$SERVER_PID"; rc=$?
check "draining: exits 0" [ $rc == 0 ]
ok=0
for i in $(seq "$n_req"); do
  wait %"$i" 2>/dev/null
  [ "$(cat "$WORK/dr$i.code")" == 200 ] && [ -n "$(json "d['text_output']" < "$WORK/dr$i.body")" ] && ok=$((ok + 1))
done
check "draining: in-flight requests completed 200 ($ok/$n_req)" [ $ok == "$n_req" ]
check "draining: logged" grep -q "draining" "$WORK/drain.log"

# ---------- drain timeout: what is still running is ended with an error, exit stays 0 ----------
# On the null backend paced at 20 ms a step: a 240-token stream takes ~5 s on any machine, so none
# can finish inside the 300 ms drain (the model's own speed made this race the machine).
METRICS_PORT=$(free_port)
LLMSERVE_NULL_STEP_DELAY_MS=20 start_server late --device null --max-batch-size 1 --drain-timeout 300ms
H=127.0.0.1:$PORT
late_pids=()
for i in 1 2 3 4; do
  curl -sN -o "$WORK/late$i" --max-time 300 "$H/v2/models/default/generate_stream" \
    -d '{"text_input":"KING:","max_tokens":240,"ignore_eos":true}' &
  late_pids+=($!)
done
# SIGTERM only once all four are in the engine (one running, three waiting): on a loaded machine a
# fixed sleep let a curl arrive after the drain began, and it got a plain 503 instead of a stream.
in_engine=0
for _ in $(seq 100); do
  in_engine=$(curl -s "127.0.0.1:$METRICS_PORT/metrics" |
    awk '/^llmserve_num_requests_(running|waiting)[ {]/ {s += $2} END {print s + 0}')
  [ "$in_engine" == 4 ] && break
  sleep 0.1
done
check "drain timeout: all four streams reached the engine ($in_engine)" [ "$in_engine" == 4 ]
kill -TERM "$SERVER_PID"; wait "$SERVER_PID"; rc=$?
check "drain timeout: exits 0" [ $rc == 0 ]
wait "${late_pids[@]}" 2>/dev/null
for i in 1 2 3 4; do echo "     late$i: $(grep -c "^data:" "$WORK/late$i") events, last: $(grep "^data:" "$WORK/late$i" | tail -1 | cut -c1-80)"; done
cut=0
for i in 1 2 3 4; do grep -q '^data: {"error"' "$WORK/late$i" && cut=$((cut + 1)); done
check "drain timeout: cut streams end with an SSE error event ($cut of 4)" [ $cut == 4 ]
check "drain timeout: logged" grep -q "drain timeout" "$WORK/late.log"

# ---------- --max-connections: beyond it a 503 + Connection: close, counted; then room again ----------
METRICS_PORT=$(free_port)
start_server conns --max-connections 4
H=127.0.0.1:$PORT
python3 - "$PORT" <<'PY' > "$WORK/conns.out"
import socket, sys, time
port = int(sys.argv[1])
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
time.sleep(0.3)
extra = socket.create_connection(("127.0.0.1", port))
extra.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
extra.settimeout(5)
reply = b""
while True:
    chunk = extra.recv(4096)
    if not chunk:
        break
    reply += chunk
print(reply.split(b"\r\n")[0].decode(), "close" if b"Connection: close" in reply else "keep")
for s in held:
    s.close()
PY
check "max-connections: the fifth gets 503 and is closed ($(cat "$WORK/conns.out"))" grep -q "^HTTP/1.1 503 .* close$" "$WORK/conns.out"
for _ in $(seq 20); do [ "$(code "$H/v2/health/live")" == 200 ] && break; sleep 0.1; done
check "max-connections: room again once they close" [ "$(code "$H/v2/health/live")" == 200 ]
sleep 1.2  # one metrics poll
refused=$(curl -s "127.0.0.1:$METRICS_PORT/metrics" | awk '/^llmserve_http_refused_connections_total[ {]/ {print $2}')
check "max-connections: llmserve_http_refused_connections_total counts it ($refused)" [ "${refused%.*}" -ge 1 ]
kill -TERM "$SERVER_PID"; wait "$SERVER_PID"
unset METRICS_PORT

# ---------- large bodies are parsed and tokenized off the I/O threads ----------
# Two bodies of 3 M array elements each keep both tokenizer threads busy parsing for a while; with
# the two I/O threads free, health checks meanwhile answer at once (before the tokenizer threads,
# each waited for a whole parse).
start_server big --http-threads 2 --tokenizer-threads 2 --max-body-bytes 100000000
python3 - "$PORT" <<'PY' > "$WORK/big.out"
import http.client, sys, threading, time
port = int(sys.argv[1])
body = b'{"text_input": "hi", "max_tokens": 1, "x": [' + b"0," * 3_000_000 + b"0]}"
took = []
def post():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    t = time.time()
    c.request("POST", "/v2/models/default/generate", body)
    c.getresponse().read()
    took.append(time.time() - t)
health = []
posts = [threading.Thread(target=post) for _ in range(2)]
for t in posts:
    t.start()
time.sleep(0.3)  # both bodies are on the wire
while any(t.is_alive() for t in posts):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    t = time.time()
    c.request("GET", "/v2/health/ready")
    c.getresponse().read()
    health.append(time.time() - t)
    time.sleep(0.05)
print(round(min(took), 2), round(max(health), 3), len(health))
PY
read -r big_s health_s health_n < "$WORK/big.out"
check "large bodies: each took a while to parse (${big_s} s)" python3 -c "import sys; sys.exit(0 if $big_s >= 0.5 else 1)"
check "large bodies: health answered meanwhile ($health_n checks, slowest ${health_s} s)" \
  python3 -c "import sys; sys.exit(0 if $health_n >= 3 and $health_s < max(0.3, $big_s / 4) else 1)"
kill -TERM "$SERVER_PID"; wait "$SERVER_PID"

# ---------- slow clients cut by --http-read-timeout leave nothing in flight ----------
# Each trickles a request line one byte every 10 ms and never finishes it; the server closes it at
# the read timeout. Bytes arriving just as the timer fires used to start an error response on the
# closed connection, counted in flight forever: SIGTERM then waited the whole --drain-timeout.
start_server slow --http-read-timeout 1s --drain-timeout 20s
python3 - "$PORT" <<'PY' > "$WORK/slow.out"
import socket, sys, time
socks = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(60)]
line = b"POST /v2/models/default/generate?" + b"x" * 400
open_socks = set(range(len(socks)))
end = time.time() + 2.5
i = 0
while time.time() < end and open_socks:
    for k in list(open_socks):
        try:
            socks[k].sendall(line[i % len(line):i % len(line) + 1])
        except OSError:
            open_socks.discard(k)
    i += 1
    time.sleep(0.01)
closed = 0
for s in socks:
    s.settimeout(2)
    try:
        while s.recv(4096):
            pass
        closed += 1
    except OSError:
        closed += 1
print(closed)
PY
check "slow clients: all 60 closed at --http-read-timeout ($(cat "$WORK/slow.out"))" [ "$(cat "$WORK/slow.out")" == 60 ]
# A body that stops arriving (headers complete, 10 of 100 bytes sent) is answered 408, then closed.
python3 - "$PORT" <<'PY' > "$WORK/stalled.out"
import socket, sys, time
socks = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(5)]
for s in socks:
    s.sendall(b"POST /v2/models/default/generate HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"text_in")
t0 = time.time()
replies = []
for s in socks:
    s.settimeout(10)
    data = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    replies.append(data)
ok = sum(r.startswith(b"HTTP/1.1 408 ") and b"--http-read-timeout" in r for r in replies)
print(ok, round(time.time() - t0, 1))
PY
read -r stalled_ok stalled_s < "$WORK/stalled.out"
check "stalled bodies: all 5 answered 408 naming --http-read-timeout ($stalled_ok)" [ "$stalled_ok" == 5 ]
check "stalled bodies: answered at the 1 s read timeout (${stalled_s} s)" python3 -c "import sys; sys.exit(0 if 0.8 <= $stalled_s < 5 else 1)"
t0=$(date +%s.%N)
kill -TERM "$SERVER_PID"; wait "$SERVER_PID"; rc=$?
took=$(python3 -c "print(round($(date +%s.%N) - $t0, 2))")
check "slow clients: idle shutdown exits 0 in under 2 s (${took} s, exit $rc)" python3 -c "import sys; sys.exit(0 if $rc == 0 and $took < 2 else 1)"
check "slow clients: nothing was left in flight" bash -c "! grep -q 'still in flight' '$WORK/slow.log'"

finish
