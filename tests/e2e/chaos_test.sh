#!/usr/bin/env bash
# Chaos against one server: slow clients, cancelled streams, an overload burst and well-formed
# traffic at the same time, then SIGTERM. The server must answer everything it admits, shed the
# rest with 503/429, free every KV block and request slot once the clients are gone (the gauges
# read 0 and the in-flight count drains), stay healthy throughout, and shut down in well under a
# second once idle. The null backend paced at 5 ms a step keeps requests in flight for a known
# time on any machine (LLMSERVE_NULL_STEP_DELAY_MS), so nothing here races the machine's speed.
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

PORT=$(free_port)
MPORT=$(free_port)
LLMSERVE_NULL_STEP_DELAY_MS=5 "$BIN" serve --device null --host 127.0.0.1 --http-port "$PORT" --grpc-port -1 \
  --metrics-port "$MPORT" --max-batch-size 8 --max-queue-size 4 --num-kv-blocks 256 --http-read-timeout 1s \
  --drain-timeout 20s > "$WORK/server.log" 2>&1 &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
H=127.0.0.1:$PORT
wait_ready "$H" "$SERVER_PID" || { echo "server did not become ready:"; cat "$WORK/server.log"; exit 1; }

# One python process plays every client at once; it prints a JSON summary.
python3 - "$PORT" > "$WORK/chaos.json" 2> "$WORK/chaos.err" <<'PY'
import http.client, json, socket, sys, threading, time
port = int(sys.argv[1])
out = {"ok": 0, "shed": 0, "other": [], "cancelled": 0, "health_fail": 0, "slow_closed": 0}
lock = threading.Lock()

def note(key, value=1):
    with lock:
        if isinstance(out[key], list):
            out[key].append(value)
        else:
            out[key] += value

def complete(path, body, shed_status):  # a well-behaved client: retries when shed, until served
    for _ in range(400):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        c.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        if r.status == 200:
            note("ok")
            return
        if r.status != shed_status:
            note("other", r.status)
            return
        note("shed")
        time.sleep(0.02)
    note("other", "never served")

def generate(tokens):
    complete("/v2/models/default/generate", {"text_input": "ROMEO:", "max_tokens": tokens, "ignore_eos": True}, 503)

def openai(tokens):
    complete("/v1/completions", {"model": "default", "prompt": "ROMEO:", "max_tokens": tokens, "ignore_eos": True}, 429)

def cancelled_stream():  # reads two events of a long stream, then hangs up (retried while shed)
    body = json.dumps({"text_input": "KING:", "max_tokens": 200, "ignore_eos": True}).encode()
    for _ in range(100):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"POST /v2/models/default/generate_stream HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                  % (len(body), body))
        seen = b""
        s.settimeout(30)
        while seen.count(b"data:") < 2 and not (len(seen) >= 12 and not seen.startswith(b"HTTP/1.1 200")):
            chunk = s.recv(4096)
            if not chunk:
                break
            seen += chunk
        s.close()
        if len(seen) >= 12 and not seen.startswith((b"HTTP/1.1 200", b"HTTP/1.1 503")):
            note("other", seen[:12].decode())
            return
        if b"data:" in seen:
            note("cancelled")
            return
        time.sleep(0.05)

def slow_client():  # half a request line, a byte at a time, never finished
    s = socket.create_connection(("127.0.0.1", port))
    try:
        for b in b"POST /v2/models/default/generate HTTP/1.1\r\nContent-Le":
            s.sendall(bytes([b]))
            time.sleep(0.05)
    except OSError:
        note("slow_closed")
        return
    s.settimeout(3)
    try:  # answered 408 at the read timeout, or (already answered) closed
        data = b""
        while chunk := s.recv(4096):
            data += chunk
        if data == b"" or data.startswith(b"HTTP/1.1 408 "):
            note("slow_closed")
    except OSError:
        note("slow_closed")

def health():
    for _ in range(40):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            c.request("GET", "/v2/health/live")
            if c.getresponse().status != 200:
                note("health_fail")
        except OSError:
            note("health_fail")
        time.sleep(0.05)

threads = [threading.Thread(target=slow_client) for _ in range(10)]
threads += [threading.Thread(target=cancelled_stream) for _ in range(12)]
threads += [threading.Thread(target=generate, args=(30,)) for _ in range(20)]
threads += [threading.Thread(target=openai, args=(30,)) for _ in range(10)]
threads += [threading.Thread(target=health)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps(out))
PY
echo "     clients: $(cat "$WORK/chaos.json")"
val() { json "d['$1']" < "$WORK/chaos.json"; }
check "every answer to a complete request was 200 or a shed 503/429, nothing else ($(val other))" [ "$(val other)" == "[]" ]
check "  ... the burst was shed in part ($(val shed) times) and every request served in the end ($(val ok)/30)" \
  bash -c "[ $(val shed) -ge 1 ] && [ $(val ok) == 30 ]"
check "all 12 streams were cut by their clients mid-way ($(val cancelled))" [ "$(val cancelled)" == 12 ]
check "all 10 slow clients were closed by the read timeout ($(val slow_closed))" [ "$(val slow_closed)" == 10 ]
check "health answered 200 throughout ($(val health_fail) failures)" [ "$(val health_fail)" == 0 ]

# Once every client is gone the engine holds nothing: no running or waiting request, no KV block.
gauge() { curl -s "127.0.0.1:$MPORT/metrics" | awk -v m="$1" '$1 ~ "^"m"[{ ]" || $1 == m {print $2}' | head -1; }
for _ in $(seq 50); do
  [ "$(gauge llmserve_num_requests_running)" == 0 ] && [ "$(gauge llmserve_num_requests_waiting)" == 0 ] &&
    [ "$(gauge llmserve_kv_cache_usage_ratio)" == 0 ] && [ "$(gauge nv_inference_pending_request_count)" == 0 ] && break
  sleep 0.2
done
check "afterwards: no request running ($(gauge llmserve_num_requests_running))" [ "$(gauge llmserve_num_requests_running)" == 0 ]
check "afterwards: none waiting ($(gauge llmserve_num_requests_waiting))" [ "$(gauge llmserve_num_requests_waiting)" == 0 ]
check "afterwards: no KV block in use ($(gauge llmserve_kv_cache_usage_ratio))" [ "$(gauge llmserve_kv_cache_usage_ratio)" == 0 ]
check "afterwards: nothing pending ($(gauge nv_inference_pending_request_count))" [ "$(gauge nv_inference_pending_request_count)" == 0 ]
check "afterwards: still serving" [ "$(curl -s -o /dev/null -w '%{http_code}' "$H/v2/models/default/generate" -d '{"text_input":"a","max_tokens":2}')" == 200 ]

t0=$(date +%s.%N)
kill -TERM "$SERVER_PID"
wait "$SERVER_PID"
rc=$?
took=$(python3 -c "print(round($(date +%s.%N) - $t0, 2))")
check "SIGTERM when idle: exit 0 in under 1 s (${took} s, exit $rc)" python3 -c "import sys; sys.exit(0 if $rc == 0 and $took < 1 else 1)"
check "  ... with nothing left in flight" bash -c "! grep -q 'still in flight' '$WORK/server.log'"
finish chaos
