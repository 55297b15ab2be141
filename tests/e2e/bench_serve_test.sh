#!/usr/bin/env bash
# `llmserve bench serve` against `llmserve serve` with the fixture model, over every target:
# token counts equal the server's usage (prompts are token-exact, outputs run to max_tokens),
# TTFT <= e2e, an open-loop rate is roughly honoured, failures are counted by kind, the
# JSON / CSV / SVG exports, JSONL prompts and SLO goodput work, and the server's speculative
# decoding counters are read around a point (against a server with --speculative ngram).
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BIN=${LLMSERVE:?path of the llmserve binary}
SRC=${LLMSERVE_SOURCE_DIR:?}
export LLMSERVE_DEFAULT_MODEL=${LLMSERVE_DEFAULT_MODEL:-$SRC/models/default}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT
# jq-like assertions on a run's JSON: ok FILE PYTHON-EXPRESSION (d = the document, p = its points)
ok() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); p=d['points']; sys.exit(0 if ($2) else 1)" "$1"; }

PORT=$(free_port)
GRPC_PORT=$(free_port)
"$BIN" serve --http-port "$PORT" --grpc-port "$GRPC_PORT" --metrics-port -1 --host 127.0.0.1 --num-kv-blocks 256 \
  --max-batch-size 16 > "$WORK/server.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 300); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "127.0.0.1:$PORT/v2/health/ready")" == 200 ] && break
  sleep 0.2
done
bench() { "$BIN" --log-level warn bench serve --host 127.0.0.1 --port "$PORT" --no-progress "$@"; }

# Completions, closed-loop sweep, with every export.
bench --target completions --concurrency 1,4 --num-requests 12 --warmup 2 --input-len 24 --input-range 0.5 \
  --output-len 12 --json "$WORK/c.json" --csv "$WORK/c.csv" --plots "$WORK/plots" > "$WORK/c.out" 2>&1
check "completions: run succeeded" [ $? == 0 ]
check "completions: two points, no errors" ok "$WORK/c.json" "len(p) == 2 and all(x['num_errors'] == 0 and x['num_ok'] == 12 for x in p)"
check "completions: prompt tokens equal the server's usage" ok "$WORK/c.json" "all(x['num_input_len_mismatches'] == 0 for x in p)"
check "completions: output tokens equal max_tokens and usage" ok "$WORK/c.json" \
  "all(x['num_output_len_mismatches'] == 0 and x['num_output_tokens'] == 12 * 12 for x in p)"
check "completions: TTFT <= e2e" ok "$WORK/c.json" \
  "all(0 < x['ttft_s']['p50'] <= x['e2e_s']['p50'] and x['ttft_s']['max'] <= x['e2e_s']['max'] for x in p)"
check "completions: ITL and TPOT measured" ok "$WORK/c.json" "all(x['itl_s']['count'] > 0 and x['tpot_s']['p50'] > 0 for x in p)"
check "completions: concurrency held" ok "$WORK/c.json" "p[0]['max_in_flight'] == 1 and p[1]['max_in_flight'] == 4"
check "table has both points" grep -q "^c=4 " "$WORK/c.out"
check "csv: header + one row per point" [ "$(wc -l < "$WORK/c.csv")" == 3 ]
check "svg plots written" [ "$(grep -l '<polyline' "$WORK"/plots/*.svg | wc -l)" == 5 ]

# Triton generate_stream counts tokens from the events (one output_log_probs entry per token).
bench --target generate_stream --concurrency 3 --num-requests 9 --input-len 16 --output-len 10 --json "$WORK/g.json" > /dev/null 2>&1
check "generate_stream: all tokens counted" ok "$WORK/g.json" "p[0]['num_errors'] == 0 and p[0]['num_output_tokens'] == 90"
check "generate_stream: TTFT <= e2e" ok "$WORK/g.json" "p[0]['ttft_s']['max'] <= p[0]['e2e_s']['max'] and p[0]['itl_s']['count'] > 0"

bench --target chat --concurrency 2 --num-requests 4 --output-len 6 --json "$WORK/chat.json" > /dev/null 2>&1
check "chat: usage-counted tokens" ok "$WORK/chat.json" "p[0]['num_errors'] == 0 and p[0]['num_output_tokens'] == 24"
bench --target generate --concurrency 2 --num-requests 4 --output-len 6 --json "$WORK/gen.json" > /dev/null 2>&1
check "generate (unary): tokens counted, TTFT = e2e" ok "$WORK/gen.json" \
  "p[0]['num_errors'] == 0 and p[0]['num_output_tokens'] == 24 and p[0]['ttft_s']['mean'] == p[0]['e2e_s']['mean']"
"$BIN" --log-level warn bench serve --target grpc --host 127.0.0.1 --port "$GRPC_PORT" --no-progress --concurrency 2 \
  --num-requests 4 --output-len 6 --json "$WORK/grpc.json" > /dev/null 2>&1
check "grpc ModelStreamInfer: no errors, exact token counts, pieces timed" ok "$WORK/grpc.json" \
  "p[0]['num_errors'] == 0 and p[0]['num_ok'] == 4 and p[0]['num_output_tokens'] == 24 and p[0]['ttft_s']['max'] <= p[0]['e2e_s']['max']"

# Open loop: 12 Poisson arrivals at 8/s take about 1.5 s.
bench --target completions --request-rate 8 --num-requests 12 --output-len 4 --input-len 8 --json "$WORK/o.json" > /dev/null 2>&1
check "open loop: rate roughly honoured" ok "$WORK/o.json" \
  "p[0]['num_errors'] == 0 and p[0]['request_rate'] == 8 and 3 <= p[0]['request_throughput'] <= 20"

bench --target completions --concurrency 2 --num-requests 0 --duration 1 --output-len 4 --input-len 8 \
  --json "$WORK/d.json" > /dev/null 2>&1
check "duration: requests started for 1 s, all waited for" ok "$WORK/d.json" \
  "p[0]['num_ok'] >= 2 and p[0]['num_errors'] == 0 and 1.0 <= p[0]['duration_s'] < 10"

bench --target completions --request-rate 1000 --max-concurrency 2 --num-requests 6 --output-len 4 --input-len 8 \
  --json "$WORK/cap.json" > /dev/null 2>&1
check "open loop: --max-concurrency caps requests in flight" ok "$WORK/cap.json" \
  "p[0]['num_ok'] == 6 and p[0]['max_in_flight'] == 2"

# Failures are counted by kind, and the run still reports.
bench --target generate_stream --concurrency 2 --num-requests 2 --input-len 8 --output-len 200 --request-timeout 0.02 \
  --json "$WORK/t.json" > /dev/null 2>&1
check "slow replies: timeouts counted" ok "$WORK/t.json" "p[0]['errors'] == {'timeout': 2}"
bench --target completions --model no-such-model --concurrency 2 --num-requests 5 --json "$WORK/e.json" > /dev/null 2>&1
check "unknown model: http_404 counted" ok "$WORK/e.json" "p[0]['num_errors'] == 5 and p[0]['errors'] == {'http_404': 5}"
"$BIN" --log-level warn bench serve --port "$(free_port)" --no-progress --concurrency 2 --num-requests 3 \
  --json "$WORK/dead.json" > /dev/null 2>&1
check "nothing listening: connect errors counted" ok "$WORK/dead.json" "p[0]['errors'] == {'connect': 3}"

# JSONL prompts and SLO goodput.
printf '%s\n' '{"prompt": "ROMEO:", "output_len": 5}' '{"prompt": "JULIET: good night", "max_tokens": 3}' > "$WORK/p.jsonl"
bench --prompt-file "$WORK/p.jsonl" --concurrency 1 --num-requests 4 --slo-ttft-ms 60000 --json "$WORK/f.json" > /dev/null 2>&1
check "jsonl prompts: output lengths from the file" ok "$WORK/f.json" "p[0]['num_errors'] == 0 and p[0]['num_output_tokens'] == 16"
check "goodput: a loose SLO keeps every request" ok "$WORK/f.json" "p[0]['num_good'] == 4 and p[0]['goodput'] > 0"
bench --concurrency 1 --num-requests 3 --output-len 4 --slo-ttft-ms 0.001 --json "$WORK/s.json" > /dev/null 2>&1
check "goodput: an impossible SLO keeps none" ok "$WORK/s.json" "p[0]['num_good'] == 0 and p[0]['num_ok'] == 3"

bench --target nope > /dev/null 2>&1
check "bad --target is refused" [ $? != 0 ]

# Speculative decoding seen from the client: a server with prompt lookup and its metrics port;
# the point's speculation is the growth of the server's llmserve_spec_decode_* counters, which
# curl reads before and after the run (this client is the server's only one, no warm-up).
SPORT=$(free_port)
SMPORT=$(free_port)
"$BIN" serve --http-port "$SPORT" --grpc-port -1 --metrics-port "$SMPORT" --host 127.0.0.1 --num-kv-blocks 256 \
  --max-batch-size 8 --speculative ngram --num-speculative-tokens 4 > "$WORK/spec_server.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 300); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "127.0.0.1:$SPORT/v2/health/ready")" == 200 ] && break
  sleep 0.2
done
spec_counts() {
  curl -s "127.0.0.1:$SMPORT/metrics" | awk '/^llmserve_spec_decode_num_(drafts|draft_tokens|accepted_tokens)_total/ {n = $1; sub(/[{].*/, "", n); s[n] += $NF}
    END {printf "%d %d %d\n", s["llmserve_spec_decode_num_drafts_total"], s["llmserve_spec_decode_num_draft_tokens_total"], s["llmserve_spec_decode_num_accepted_tokens_total"]}'
}
# Prompts whose greedy continuations (the default model's) repeat themselves within 48 tokens.
printf '%s\n' '{"prompt": "First Citizen:\nWe are accounted poor citizens", "output_len": 48}' \
  '{"prompt": "KING RICHARD III:\nNow is the winter of our discontent", "output_len": 48}' > "$WORK/rep.jsonl"
read -r d0 t0 a0 <<< "$(spec_counts)"
"$BIN" --log-level warn bench serve --host 127.0.0.1 --port "$SPORT" --metrics-port "$SMPORT" --no-progress \
  --prompt-file "$WORK/rep.jsonl" --concurrency 2 --num-requests 6 --json "$WORK/spec.json" > "$WORK/spec.out" 2>&1
check "speculation: run succeeded" [ $? == 0 ]
read -r d1 t1 a1 <<< "$(spec_counts)"
check "speculation: the server proposed drafts" [ $((t1 - t0)) -gt 0 ]
check "speculation: the point's counters are the server's growth" ok "$WORK/spec.json" \
  "p[0]['speculation'] == dict(p[0]['speculation'], num_drafts=$((d1 - d0)), num_draft_tokens=$((t1 - t0)), num_accepted_tokens=$((a1 - a0)))"
check "speculation: rates derived" ok "$WORK/spec.json" \
  "abs(p[0]['speculation']['acceptance_rate'] - $((a1 - a0)) / $((t1 - t0))) < 1e-9 and p[0]['speculation']['tokens_per_decode'] >= 1"
check "speculation: a line under the table" grep -q "^speculation at c=2: $((t1 - t0)) draft tokens in $((d1 - d0)) decodes" "$WORK/spec.out"

finish
