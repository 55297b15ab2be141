#!/usr/bin/env bash
# `llmserve generate / tokenize / detokenize` end to end on the embedded default model: greedy
# output equals HF transformers' (models/default/reference.json), seeds reproduce, bad flags fail
# with a message naming the flag.
set -euo pipefail
BIN=${LLMSERVE:?path of the llmserve binary}
SRC=${LLMSERVE_SOURCE_DIR:?repo root}
REF=$SRC/models/default/reference.json
fails=0
check() {  # check NAME CONDITION-COMMAND...
  local name=$1; shift
  if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi
}
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# Greedy continuation of "ROMEO:" equals the reference token for token.
want=$(json "d['prompts'][0]['greedy']" < "$REF")
got=$("$BIN" generate --prompt "ROMEO:" --max-tokens 40 --temperature 0 --ignore-eos --json | json "d['token_ids']")
check "greedy ROMEO: equals transformers" [ "$got" == "$want" ]
text=$("$BIN" generate --prompt "ROMEO:" --max-tokens 40 --temperature 0 --ignore-eos)
want_text=$(json "d['prompts'][0]['greedy_text']" < "$REF")
check "streamed text equals transformers' decode" [ "$text" == "$want_text" ]

# Seeds: same seed, same text; another seed, another text.
a=$("$BIN" generate --prompt "KING:" --max-tokens 30 --temperature 1 --seed 5 --json | json "d['text']")
b=$("$BIN" generate --prompt "KING:" --max-tokens 30 --temperature 1 --seed 5 --json | json "d['text']")
c=$("$BIN" generate --prompt "KING:" --max-tokens 30 --temperature 1 --seed 6 --json | json "d['text']")
check "same seed reproduces" [ "$a" == "$b" ]
check "other seed differs" [ "$a" != "$c" ]

# Stop string: the text ends before it and the finish reason is stop.
out=$("$BIN" generate --prompt "ROMEO:" --max-tokens 40 --temperature 0 --stop "man" --json)
check "stop string cuts text" [ "$(echo "$out" | json "d['text']")" == $'\nI\'ll be a ' ]
check "stop string finish reason" [ "$(echo "$out" | json "d['finish_reason']")" == "stop" ]
out=$("$BIN" generate --prompt "ROMEO:" --max-tokens 5 --temperature 0 --logprobs 2 --json)
check "logprobs: one entry per token with 2 alternatives" [ "$(echo "$out" | json "len(d['logprobs']), len(d['logprobs'][0]['top'])")" == "5 2" ]

# fp8 KV cache: the trained default model keeps its greedy text (agreement 0.99 in quantization_test).
fp8_err=$("$BIN" generate --prompt "ROMEO:" --max-tokens 40 --temperature 0 --ignore-eos --kv-cache-dtype fp8 2>&1 >/dev/null)
check "--kv-cache-dtype fp8 allocates an e4m3 cache" grep -q "KV cache: .*(F8_E4M3)" <<<"$fp8_err"
fp8_text=$("$BIN" generate --prompt "ROMEO:" --max-tokens 40 --temperature 0 --ignore-eos --kv-cache-dtype fp8 2>/dev/null)
check "--kv-cache-dtype fp8 greedy text equals the fp32 cache's" [ "$fp8_text" == "$text" ]

# tokenize / detokenize round trip.
ids=$("$BIN" tokenize --text "Hello world" | json "','.join(map(str, d['ids']))")
check "tokenize gpt2 ids" [ "$ids" == "15496,995" ]
check "detokenize" [ "$("$BIN" detokenize --ids "$ids" | json "d['text']")" == "Hello world" ]

# Errors name the problem and exit non-zero.
expect_error() {  # expect_error NAME PATTERN ARGS...
  local name=$1 pattern=$2; shift 2
  local err rc=0
  err=$("$BIN" "$@" 2>&1 >/dev/null) || rc=$?
  if [ $rc -ne 0 ] && grep -q -- "$pattern" <<<"$err"; then echo "ok   $name"; else echo "FAIL $name (rc=$rc: $err)"; fails=$((fails + 1)); fi
}
expect_error "negative temperature" "temperature" generate --prompt hi --temperature -1
expect_error "top_p out of range" "top_p" generate --prompt hi --top-p 1.5
expect_error "missing model dir" "/nonexistent/model" generate --model /nonexistent/model --prompt hi
expect_error "context overflow" "context of 256" generate --prompt hi --max-tokens 1000
expect_error "unknown flag" "--bogus" generate --prompt hi --bogus
expect_error "unknown KV cache dtype" "--kv-cache-dtype" generate --prompt hi --kv-cache-dtype int4
expect_error "bad ids" "not a token id" detokenize --ids 1,x
expect_error "id past vocab" "outside the vocabulary" detokenize --ids 99999999

echo "$fails failed"
[ "$fails" -eq 0 ]
