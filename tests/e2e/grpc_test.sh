#!/usr/bin/env bash
# The gRPC frontend end to end: grpc_test_server (the embedded default model behind GrpcServer)
# against a real client, @grpc/grpc-js loading our proto/ (tests/e2e/grpc/grpc_client_test.mjs):
# every RPC, greedy text equal to transformers' reference, streaming finals, errors, raw inputs,
# cancellation and the api key. Ends with "N passed, M failed".
set -euo pipefail
BIN=${LLMSERVE:?path of the llmserve binary}
SRC=${LLMSERVE_SOURCE_DIR:?repo root}
SERVER=${GRPC_TEST_SERVER:-$(dirname "$BIN")/tests/e2e/grpc/grpc_test_server}
CLIENT_DIR=$SRC/tests/e2e/grpc
[ -x "$SERVER" ] || { echo "FAIL grpc_test_server not built at $SERVER"; echo "0 passed, 1 failed"; exit 1; }
if [ ! -d "$CLIENT_DIR/node_modules/@grpc/grpc-js" ]; then
  (cd "$CLIENT_DIR" && timeout 300 npm ci --no-audit --no-fund >/dev/null)
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

start_server() {  # start_server NAME ARGS... ; sets PORT_<NAME> from the "ready <port>" line
  local name=$1; shift
  "$SERVER" 0 "$@" > "$work/$name.out" 2> "$work/$name.err" &
  pids+=($!)
  for _ in $(seq 1 300); do
    if grep -q '^ready ' "$work/$name.out"; then
      printf -v "PORT_$name" '%s' "$(awk '/^ready /{print $2}' "$work/$name.out")"
      return 0
    fi
    kill -0 "${pids[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "FAIL $name server did not become ready: $(cat "$work/$name.err")"
  echo "0 passed, 1 failed"
  exit 1
}

start_server plain --alias gpt2
start_server auth --api-key sekret

# A taken port is refused with an error naming it.
fails=0
err=$("$SERVER" "$PORT_plain" 2>&1 >/dev/null) && rc=0 || rc=$?
if [ "$rc" -ne 0 ] && grep -q "$PORT_plain" <<<"$err"; then echo "ok   busy port is an error naming it"; else
  echo "FAIL busy port (rc=$rc: $err)"; fails=1; fi

rc=0
out=$(timeout 180 node "$CLIENT_DIR/grpc_client_test.mjs" "$PORT_plain" "$PORT_auth" sekret "$SRC") || rc=$?
echo "$out" | grep -v '^[0-9]* passed, [0-9]* failed$' || true
passed=$(echo "$out" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
failed=$(echo "$out" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
[ -n "$passed" ] || { passed=0; failed=1; echo "FAIL client did not finish (rc=$rc)"; }
[ "$fails" -eq 0 ] && passed=$((passed + 1))
failed=$((failed + fails))

# Both servers are still alive after everything above, and stop cleanly on SIGTERM.
for pid in "${pids[@]}"; do
  if kill -0 "$pid" 2>/dev/null; then passed=$((passed + 1)); else echo "FAIL server $pid died"; failed=$((failed + 1)); fi
done
kill -TERM "${pids[0]}"
rc=0; timeout 10 tail --pid="${pids[0]}" -f /dev/null || rc=$?
if [ "$rc" -eq 0 ] && wait "${pids[0]}"; then echo "ok   SIGTERM stops the server with 0"; passed=$((passed + 1)); else
  echo "FAIL SIGTERM stop"; failed=$((failed + 1)); fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
