#!/usr/bin/env bash
# The OpenAI-compatible API (/v1/models, /v1/completions, /v1/chat/completions) end to end with
# the official `openai` npm client (tests/e2e/openai/openai_test.mjs; structured outputs with zod
# and ajv in structured_test.mjs; prompt logprobs in prompt_logprobs_test.mjs) against `llmserve serve` with the embedded default model. Needs node + npm; runs `npm ci` when node_modules is missing.
set -uo pipefail
BIN=${LLMSERVE:?path of the llmserve binary}
SRC=${LLMSERVE_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
DIR="$SRC/tests/e2e/openai"
WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill -9 "$SERVER_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

command -v node > /dev/null || { echo "node not found"; echo "0 passed, 1 failed"; exit 1; }
if [ ! -d "$DIR/node_modules/zod" ]; then
  (cd "$DIR" && timeout 300 npm ci --no-audit --no-fund) || { echo "npm ci failed"; echo "0 passed, 1 failed"; exit 1; }
fi

PORT=$(free_port)
"$BIN" serve --host 127.0.0.1 --http-port "$PORT" --grpc-port -1 --metrics-port -1 --num-kv-blocks 64 --api-key x \
  > "$WORK/server.log" 2>&1 &
SERVER_PID=$!
ready=0
for _ in $(seq 300); do
  [ "$(curl -s -o /dev/null --max-time 2 -w '%{http_code}' "127.0.0.1:$PORT/v2/health/ready")" == 200 ] && { ready=1; break; }
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.2
done
if [ $ready != 1 ]; then
  echo "server did not become ready:"; cat "$WORK/server.log"; echo "0 passed, 1 failed"; exit 1
fi

REFERENCE="$SRC/models/default/reference.json" BASE_URL="http://127.0.0.1:$PORT/v1" \
  timeout 300 node "$DIR/openai_test.mjs"
rc=$?
# Structured outputs (tests/e2e/openai/structured_test.mjs) against the same server.
BASE_URL="http://127.0.0.1:$PORT/v1" timeout 300 node "$DIR/structured_test.mjs" || rc=1
# Prompt logprobs: echo + logprobs, scoring, vLLM's prompt_logprobs (prompt_logprobs_test.mjs).
BASE_URL="http://127.0.0.1:$PORT/v1" timeout 300 node "$DIR/prompt_logprobs_test.mjs" || rc=1
if [ $rc != 0 ]; then echo "--- server log (tail) ---"; tail -30 "$WORK/server.log"; fi
exit $rc
