#!/usr/bin/env bash
# `llmserve pull` end to end against tests/e2e/hub_server.py, a local stand-in for the Hugging Face
# hub that this test starts: the test machines have no internet, so nothing here reaches
# huggingface.co. The stand-in serves the hub's URL layout (revision API, resolve URLs, LFS files
# as a 302 to a "CDN" on another port with X-Linked-Etag/X-Linked-Size), and the test checks:
# the default file set, sha256/size checks, the token going to the hub but never to the CDN, a
# 503 retried, a transfer cut off mid-file resumed with Range (in-process and across processes),
# an idempotent re-run (no file requested again), a damaged file re-fetched, 401 without/with a
# wrong token, 404 repository/revision, a corrupted file refused and not kept, an unreachable
# endpoint failing after its retries, --include, https with a self-signed certificate
# (--ca-file, SSL_CERT_FILE), and `serve --model ORG/NAME` pulling the embedded default model
# from the stand-in and answering a generate request.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
unset HF_TOKEN HF_ENDPOINT SSL_CERT_FILE SSL_CERT_DIR LLMSERVE_CACHE_DIR
BIN=${LLMSERVE:?path of the llmserve binary}
SRC=${LLMSERVE_SOURCE_DIR:?source tree}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT
sha() { sha256sum "$1" | cut -d' ' -f1; }
# Requests in the stand-in's log after line $1 that match the python condition $2 (r: one record).
log_count() { tail -n +"$(($1 + 1))" "$WORK/hub.log" | python3 -c "
import json,sys
print(sum(1 for l in sys.stdin if (lambda r: $2)(json.loads(l))))"; }
log_lines() { wc -l < "$WORK/hub.log"; }

start_hub() {  # start_hub PORTFILE [--cert C --key K]; sets HUB_PORT, CDN_PORT
  local pf=$1; shift
  python3 "$SRC/tests/e2e/hub_server.py" --root "$WORK/hub" --log "$WORK/hub.log" --port-file "$pf" "$@" \
    2> "$pf.err" &
  PIDS+=($!)
  for _ in $(seq 200); do [ -s "$pf" ] && break; sleep 0.1; done
  [ -s "$pf" ] || { echo "hub stand-in did not start:"; cat "$pf.err"; exit 1; }
  read -r HUB_PORT CDN_PORT < "$pf"
}

# ---------- the repositories the stand-in serves ----------
mkdir -p "$WORK/hub/acme/small/original" "$WORK/hub/acme/private" "$WORK/hub/acme/corrupt" "$WORK/hub/llmserve"
R=$WORK/hub/acme/small
head -c 3000000 /dev/urandom > "$R/model.safetensors"
echo '{"architectures": ["GPT2LMHeadModel"]}' > "$R/config.json"
echo '{"version": "1.0"}' > "$R/tokenizer.json"
printf '#version: 0.2\na b\n' > "$R/merges.txt"
head -c 5000 /dev/urandom > "$R/pytorch_model.bin"   # skipped: the repository has safetensors
echo '{"dim": 8}' > "$R/original/params.json"           # skipped: a sub-folder
echo '# small' > "$R/README.md"                         # skipped: not read by a server
echo '{"drop_once": ["model.safetensors"], "busy_once": true}' > "$WORK/hub/acme/small.hub.json"
cp "$R/config.json" "$R/model.safetensors" "$WORK/hub/acme/private/"
echo '{"token": "hf_right"}' > "$WORK/hub/acme/private.hub.json"
cp "$R/config.json" "$R/model.safetensors" "$WORK/hub/acme/corrupt/"
echo '{"corrupt": ["model.safetensors"]}' > "$WORK/hub/acme/corrupt.hub.json"
ln -s "$SRC/models/default" "$WORK/hub/llmserve/tiny-shakespeare"
# Hubs that lie about a file's size: with a Content-Length, and with none (the body ends at close).
mkdir -p "$WORK/hub/acme/liar" "$WORK/hub/acme/liar-stream"
head -c 2000000 /dev/urandom > "$WORK/hub/acme/liar/config.json"
cp "$WORK/hub/acme/liar/config.json" "$WORK/hub/acme/liar-stream/config.json"
echo '{"listed_size": {"config.json": 37}}' > "$WORK/hub/acme/liar.hub.json"
echo '{"listed_size": {"config.json": 37}, "no_length": ["config.json"]}' > "$WORK/hub/acme/liar-stream.hub.json"
start_hub "$WORK/ports"
EP=http://127.0.0.1:$HUB_PORT
echo "hub stand-in on :$HUB_PORT, its CDN on :$CDN_PORT"
pull() { "$BIN" pull --endpoint "$EP" "$@"; }

# ---------- a first pull: redirects, token to the hub only, a 503 and a cut-off transfer ----------
D=$WORK/small
echo hf_any > "$WORK/token"
out=$(pull --repo acme/small --dest "$D" --token-file "$WORK/token" 2> "$WORK/pull1.err"); rc=$?
check "pull exits 0" [ $rc == 0 ]
check "  ... prints the directory on stdout" [ "$out" == "$D" ]
check "  ... config.json intact" cmp -s "$R/config.json" "$D/config.json"
check "  ... tokenizer.json, merges.txt intact" bash -c "cmp -s '$R/tokenizer.json' '$D/tokenizer.json' && cmp -s '$R/merges.txt' '$D/merges.txt'"
check "  ... model.safetensors (LFS, via the CDN) intact" [ "$(sha "$D/model.safetensors")" == "$(sha "$R/model.safetensors")" ]
check "  ... skipped pytorch_model.bin, original/, README.md" bash -c "[ ! -e '$D/pytorch_model.bin' ] && [ ! -e '$D/original' ] && [ ! -e '$D/README.md' ]"
check "  ... no .part left" [ -z "$(find "$D" -name '*.part')" ]
check "  ... the LFS file came through a 302" [ "$(log_count 0 "r['server']=='hub' and r['status']==302")" -ge 1 ]
check "  ... the token went to the hub" [ "$(log_count 0 "r['server']=='hub' and not r['auth']")" == 0 ]
check "  ... and never to the CDN" [ "$(log_count 0 "r['server']=='cdn' and r['auth']")" == 0 ]
check "  ... a 503 on the listing was retried" grep -q "HTTP 503; retry 1/" "$WORK/pull1.err"
check "  ... the cut-off transfer was resumed with Range" \
  [ "$(log_count 0 "r['server']=='cdn' and r['status']==206 and (r['range'] or '').startswith('bytes=') and r['range']!='bytes=0-'")" == 1 ]
check "  ... and logged as a retry" grep -q "the transfer broke off" "$WORK/pull1.err"
check "  ... log lines (no terminal): downloaded model.safetensors" grep -q "downloaded model.safetensors" "$WORK/pull1.err"

# ---------- idempotent: a re-run requests no file; a damaged file is fetched again ----------
n=$(log_lines)
out=$(pull --repo acme/small --dest "$D" 2> "$WORK/pull2.err"); rc=$?
check "re-run exits 0" [ $rc == 0 ]
check "  ... requests only the listing" [ "$(log_count "$n" "'/resolve/' in r['path'] or r['server']=='cdn'")" == 0 ]
check "  ... says 0 of 4 files downloaded" grep -q "0 of 4 files downloaded" "$WORK/pull2.err"
echo '{"architectures": ["Tampered"]}' > "$D/config.json"
n=$(log_lines)
pull --repo acme/small --dest "$D" > /dev/null 2> "$WORK/pull3.err"
check "a changed file is fetched again" cmp -s "$R/config.json" "$D/config.json"
check "  ... and only that one" [ "$(log_count "$n" "'/resolve/' in r['path']")" == 1 ]

# ---------- resume across processes: a .part left by an interrupted run ----------
D2=$WORK/resume
mkdir -p "$D2"
head -c 1234567 "$R/model.safetensors" > "$D2/model.safetensors.part"
n=$(log_lines)
pull --repo acme/small --dest "$D2" > /dev/null 2> "$WORK/pull4.err"; rc=$?
check "resume from a .part exits 0" [ $rc == 0 ]
check "  ... asked for the rest only (Range: bytes=1234567-)" [ "$(log_count "$n" "r['server']=='cdn' and r['range']=='bytes=1234567-' and r['status']==206")" == 1 ]
check "  ... the file is intact" [ "$(sha "$D2/model.safetensors")" == "$(sha "$R/model.safetensors")" ]

# ---------- --include replaces the default set; --progress bar ----------
D3=$WORK/include
pull --repo acme/small --dest "$D3" --include 'original/*' --include '*.md' --progress bar > /dev/null 2> "$WORK/pull5.err"
check "--include: only the matching files" [ "$(cd "$D3" && find . -type f ! -name '.llmserve-pull*' | sort | tr '\n' ' ')" == "./README.md ./original/params.json " ]
check "--progress bar draws a bar" grep -q "100%" "$WORK/pull5.err"

# ---------- errors ----------
err() { pull "$@" > /dev/null 2> "$WORK/err"; echo $?; }
check "private repo without a token fails" [ "$(err --repo acme/private --dest "$WORK/p1")" != 0 ]
check "  ... says 401 and how to pass a token" bash -c "grep -q '401' '$WORK/err' && grep -q -- '--token-file' '$WORK/err' && grep -q HF_TOKEN '$WORK/err'"
echo hf_wrong > "$WORK/wrong"
check "private repo with a wrong token fails" [ "$(err --repo acme/private --dest "$WORK/p2" --token-file "$WORK/wrong")" != 0 ]
check "  ... says the token was refused" grep -q "token was refused" "$WORK/err"
check "  ... and never prints the token" bash -c "! grep -q hf_wrong '$WORK/err'"
echo hf_right > "$WORK/right"
check "private repo with the right token (--token-file)" [ "$(err --repo acme/private --dest "$WORK/p3" --token-file "$WORK/right")" == 0 ]
check "private repo with the right token (HF_TOKEN)" [ "$(HF_TOKEN=hf_right err --repo acme/private --dest "$WORK/p4")" == 0 ]
check "  ... files intact" cmp -s "$R/model.safetensors" "$WORK/p4/model.safetensors"
check "unknown repository (with a token) fails" [ "$(HF_TOKEN=hf_any err --repo acme/nope --dest "$WORK/n1")" != 0 ]
check "  ... says it was not found" grep -q "repository acme/nope not found" "$WORK/err"
check "unknown revision fails" [ "$(err --repo acme/small --revision v9 --dest "$WORK/n2")" != 0 ]
check "  ... says which revision" grep -q "revision 'v9' not found in acme/small" "$WORK/err"
check "corrupted file fails" [ "$(err --repo acme/corrupt --dest "$WORK/c1")" != 0 ]
check "  ... says the sha256 differs" grep -q "model.safetensors: sha256 is" "$WORK/err"
check "  ... and keeps neither the file nor a .part" bash -c "[ ! -e '$WORK/c1/model.safetensors' ] && [ ! -e '$WORK/c1/model.safetensors.part' ]"
check "a file larger than listed fails" [ "$(err --repo acme/liar --dest "$WORK/l1")" != 0 ]
check "  ... at its head, naming both sizes" grep -q "sends 2000000 bytes of a file the hub lists at 37" "$WORK/err"
check "a body without a length is cut at the listed size" [ "$(err --repo acme/liar-stream --dest "$WORK/l2")" != 0 ]
check "  ... saying so" grep -q "sent more than the 37 bytes" "$WORK/err"
check "  ... and keeps neither the file nor a .part" bash -c "[ ! -e '$WORK/l2/config.json' ] && [ ! -e '$WORK/l2/config.json.part' ]"
mkdir -p "$WORK/s1"
echo keep > "$WORK/outside"
ln -s "$WORK/outside" "$WORK/s1/config.json.part"
check "a .part planted as a symbolic link is refused" [ "$(err --repo acme/small --dest "$WORK/s1")" != 0 ]
check "  ... saying so" grep -q "config.json.part: it is a symbolic link" "$WORK/err"
check "  ... and the file it points at is untouched" [ "$(cat "$WORK/outside")" == keep ]
mkdir -p "$WORK/s2" "$WORK/elsewhere"
ln -s "$WORK/elsewhere" "$WORK/s2/original"
check "a sub-directory planted as a symbolic link is refused" [ "$(err --repo acme/small --dest "$WORK/s2" --include 'original/*')" != 0 ]
check "  ... saying so" grep -q "original: it is a symbolic link" "$WORK/err"
check "  ... and nothing is written through it" [ -z "$(ls -A "$WORK/elsewhere")" ]
mkdir -p "$WORK/s3"
ln -s "$WORK/outside" "$WORK/s3/.llmserve-pull.json.tmp"
check "a planted record .tmp link is refused" [ "$(err --repo acme/small --dest "$WORK/s3")" != 0 ]
check "  ... and the file it points at is untouched" [ "$(cat "$WORK/outside")" == keep ]
dead=$(free_port)
start=$(date +%s)
check "unreachable endpoint fails" [ "$("$BIN" pull --endpoint "http://127.0.0.1:$dead" --repo acme/small --dest "$WORK/u1" --retries 1 > /dev/null 2> "$WORK/err"; echo $?)" != 0 ]
check "  ... after its retries, saying so" bash -c "grep -q 'cannot connect to' '$WORK/err' && grep -q 'gave up after 2 attempts' '$WORK/err'"
check "  ... quickly" [ $(($(date +%s) - start)) -lt 15 ]
check "bad repository name fails" [ "$(err --repo not-a-repo --dest "$WORK/b1")" != 0 ]

# ---------- https: a self-signed certificate ----------
if openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost -keyout "$WORK/key.pem" -out "$WORK/cert.pem" \
     -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" > /dev/null 2>&1; then
  start_hub "$WORK/tls-ports" --cert "$WORK/cert.pem" --key "$WORK/key.pem"
  TEP=https://localhost:$HUB_PORT
  check "https with an untrusted certificate fails" [ "$("$BIN" pull --endpoint "$TEP" --repo acme/small --dest "$WORK/t1" --retries 0 > /dev/null 2> "$WORK/err"; echo $?)" != 0 ]
  check "  ... says it does not verify and how to trust it" bash -c "grep -q 'does not verify' '$WORK/err' && grep -q -- '--ca-file' '$WORK/err'"
  check "https with --ca-file" [ "$("$BIN" pull --endpoint "$TEP" --repo acme/small --dest "$WORK/t2" --ca-file "$WORK/cert.pem" > /dev/null 2> "$WORK/err"; echo $?)" == 0 ]
  check "  ... LFS file (redirect to the https CDN) intact" [ "$(sha "$WORK/t2/model.safetensors")" == "$(sha "$R/model.safetensors")" ]
  check "https with SSL_CERT_FILE" [ "$(SSL_CERT_FILE="$WORK/cert.pem" "$BIN" pull --endpoint "https://127.0.0.1:$HUB_PORT" --repo acme/private --dest "$WORK/t3" --token-file "$WORK/right" > /dev/null 2> "$WORK/err"; echo $?)" == 0 ]
else
  echo "skip https checks: openssl req failed"
fi

# ---------- serve --model ORG/NAME pulls, then serves ----------
PORT=$(free_port)
LLMSERVE_CACHE_DIR=$WORK/cache HF_ENDPOINT=$EP "$BIN" serve --model llmserve/tiny-shakespeare \
  --http-port "$PORT" --grpc-port 0 --metrics-port 0 --host 127.0.0.1 --num-kv-blocks 64 > "$WORK/serve.log" 2>&1 &
PIDS+=($!)
ready=0
for _ in $(seq 300); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "127.0.0.1:$PORT/v2/health/ready")" == 200 ] && { ready=1; break; }
  sleep 0.2
done
check "serve --model ORG/NAME becomes ready" [ $ready == 1 ]
[ $ready == 1 ] || tail -20 "$WORK/serve.log"
PULLED=$WORK/cache/models/llmserve/tiny-shakespeare/main
check "  ... pulled into \$LLMSERVE_CACHE_DIR/models/ORG/NAME/main" [ "$(sha "$PULLED/model.safetensors")" == "$(sha "$SRC/models/default/model.safetensors")" ]
check "  ... with the tokenizer files" bash -c "cmp -s '$PULLED/vocab.json' '$SRC/models/default/vocab.json' && cmp -s '$PULLED/merges.txt' '$SRC/models/default/merges.txt'"
got=$(curl -s -X POST "127.0.0.1:$PORT/v2/models/tiny-shakespeare/generate" -d '{"text_input": "ROMEO:", "max_tokens": 12, "temperature": 0}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["text_output"])')
want=$("$BIN" generate --model "$SRC/models/default" --prompt "ROMEO:" --max-tokens 12 --temperature 0 --num-kv-blocks 64 --json 2>/dev/null |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["text"])')
same_text() { [ -n "$got" ] && [ "$got" == "$want" ]; }
check "  ... generate answers as the embedded model does, served as NAME (tiny-shakespeare)" same_text

finish pull_test
