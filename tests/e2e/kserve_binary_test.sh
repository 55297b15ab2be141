#!/usr/bin/env bash
# KServe's binary tensor data extension on `llmserve serve` over real HTTP with curl
# (--data-binary): inputs as raw little-endian bytes after a JSON header of
# Inference-Header-Content-Length bytes, outputs returned binary on request (binary_data_output /
# binary_data) as application/octet-stream with the same header; answers equal `llmserve
# generate` at temperature 0; malformed bodies get 400 naming the header, parameter or tensor.
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
has_error() { grep -q "$1" "$WORK/body"; }

# body NAME JSON-HEADER BINARY-SPEC...: writes $WORK/NAME (header + binary) and prints the header's
# length. BINARY-SPEC: s:TEXT (a BYTES element), i:N (INT32), f:X (FP32), raw:HEX.
body() {
  python3 - "$WORK/$1" "${@:2}" <<'PY'
import struct, sys
path, header, specs = sys.argv[1], sys.argv[2].encode(), sys.argv[3:]
out = b""
for spec in specs:
    kind, value = spec.split(":", 1)
    if kind == "s": out += struct.pack("<I", len(value.encode())) + value.encode()
    elif kind == "i": out += struct.pack("<i", int(value))
    elif kind == "f": out += struct.pack("<f", float(value))
    elif kind == "raw": out += bytes.fromhex(value)
open(path, "wb").write(header + out)
print(len(header))
PY
}
# post NAME HEADER-LENGTH: POSTs $WORK/NAME to /infer; prints the status; body/headers in $WORK.
post() {
  curl -s -o "$WORK/body" -D "$WORK/headers" -w '%{http_code}' --max-time 60 -X POST "$H/v2/models/default/infer" \
    -H "Inference-Header-Content-Length: $2" --data-binary "@$WORK/$1"
}
header() { grep -i "^$1:" "$WORK/headers" | head -1 | cut -d' ' -f2- | tr -d '\r'; }
# Decodes $WORK/body as a binary /infer response; prints "consumed" (every binary byte belongs to
# an output) and EXPR over outputs (name → list of values).
decode() {
  python3 - "$WORK/body" "$(header Inference-Header-Content-Length)" "$1" <<'PY'
import json, struct, sys
data, n, expr = open(sys.argv[1], "rb").read(), int(sys.argv[2] or 0), sys.argv[3]
head, binary, outputs = json.loads(data[:n]), data[n:], {}
pos = 0
for o in head["outputs"]:
    if "data" in o:
        outputs[o["name"]] = o["data"]
        continue
    size = o["parameters"]["binary_data_size"]
    raw, pos = binary[pos:pos + size], pos + size
    if o["datatype"] == "BYTES":
        vals, i = [], 0
        while i < len(raw):
            (k,) = struct.unpack_from("<I", raw, i); vals.append(raw[i + 4:i + 4 + k].decode()); i += 4 + k
    else:
        fmt = {"INT32": "i", "FP32": "f"}[o["datatype"]]
        vals = list(struct.unpack("<%d%s" % (len(raw) // 4, fmt), raw))
    outputs[o["name"]] = vals
value = eval(expr)
value = " ".join(map(str, value)) if isinstance(value, tuple) else value
print("consumed" if pos == len(binary) else "leftover %d" % (len(binary) - pos), value)
PY
}

PORT=$(free_port)
"$BIN" serve --http-port "$PORT" --grpc-port -1 --metrics-port -1 --host 127.0.0.1 --num-kv-blocks 64 > "$WORK/server.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 300); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "127.0.0.1:$PORT/v2/health/ready")" == 200 ] && break
  sleep 0.2
done
H=127.0.0.1:$PORT
check "server ready" [ "$(curl -s -o /dev/null -w '%{http_code}' "$H/v2/health/ready")" == 200 ] || { cat "$WORK/server.log"; exit 1; }
check "server metadata lists binary_tensor_data" \
  python3 -c 'import json,sys; sys.exit("binary_tensor_data" not in json.load(sys.stdin)["extensions"])' < <(curl -s "$H/v2")

PROMPT="ROMEO:"
want=$("$BIN" generate --prompt "$PROMPT" --max-tokens 12 --temperature 0 --num-kv-blocks 64 --json 2>/dev/null |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["text"])')
check "reference text non-empty" [ -n "$want" ]
INPUTS='[{"name":"text_input","datatype":"BYTES","shape":[1,1],"parameters":{"binary_data_size":10}},
 {"name":"max_tokens","datatype":"INT32","shape":[1,1],"parameters":{"binary_data_size":4}},
 {"name":"temperature","datatype":"FP32","shape":[1,1],"parameters":{"binary_data_size":4}}]'

# Binary inputs, JSON outputs.
n=$(body in_only "{\"inputs\":$INPUTS,\"outputs\":[{\"name\":\"text_output\"}]}" "s:$PROMPT" i:12 f:0)
check "binary inputs: 200" [ "$(post in_only "$n")" == 200 ]
check "  ... JSON reply" [ "$(header Content-Type)" == "application/json" ]
check "  ... text equals llmserve generate" \
  [ "$(python3 -c 'import json,sys; print(json.load(sys.stdin)["outputs"][0]["data"][0])' < "$WORK/body")" == "$want" ]

# Every output binary (binary_data_output), outputs not listed.
n=$(body all_binary "{\"inputs\":$INPUTS,\"parameters\":{\"binary_data_output\":true}}" "s:$PROMPT" i:12 f:0)
check "binary_data_output: 200" [ "$(post all_binary "$n")" == 200 ]
check "  ... application/octet-stream" [ "$(header Content-Type)" == "application/octet-stream" ]
check "  ... Inference-Header-Content-Length" [ -n "$(header Inference-Header-Content-Length)" ]
check "  ... Content-Length is JSON + binary" [ "$(header Content-Length)" == "$(stat -c %s "$WORK/body")" ]
check "  ... text_output decodes to the same text, every byte used" \
  [ "$(decode 'outputs["text_output"][0]')" == "consumed $want" ]
check "  ... INT32 batch_index and FP32 output_log_probs" \
  [ "$(decode 'outputs["batch_index"], len(outputs["output_log_probs"]) > 0')" == "consumed [0] True" ]

# One output binary (its binary_data), one JSON.
n=$(body one_binary "{\"inputs\":$INPUTS,\"outputs\":[{\"name\":\"text_output\",\"parameters\":{\"binary_data\":true}},{\"name\":\"batch_index\"}]}" "s:$PROMPT" i:12 f:0)
check "per-output binary_data: 200" [ "$(post one_binary "$n")" == 200 ]
check "  ... text binary, batch_index JSON" [ "$(decode 'outputs["batch_index"], outputs["text_output"][0]')" == "consumed [0] $want" ]
check "  ... only text_output has binary_data_size" \
  [ "$(python3 -c 'import json,sys; n=int(sys.argv[1]); h=json.loads(open(sys.argv[2],"rb").read()[:n]); print([o["name"] for o in h["outputs"] if "binary_data_size" in o.get("parameters",{})])' "$(header Inference-Header-Content-Length)" "$WORK/body")" == "['text_output']" ]

# Errors: 400 naming what is wrong.
n=$(body extra "{\"inputs\":$INPUTS}" "s:$PROMPT" i:12 f:0 raw:00)
check "bytes left over: 400" [ "$(post extra "$n")" == 400 ]
check "  ... names binary_data_size" has_error "binary_data_size parameters add up to 18"
n=$(body short "{\"inputs\":$INPUTS}" "s:$PROMPT" i:12)
check "bytes missing: 400" [ "$(post short "$n")" == 400 ]
check "  ... names the input" has_error "input 'temperature': binary_data_size 4 exceeds"
check "header length past the body: 400" [ "$(post short 100000)" == 400 ]
check "  ... names the header" has_error "Inference-Header-Content-Length is 100000"
check "header length not a number: 400" [ "$(post short abc)" == 400 ]
check "  ... names the header" has_error "Inference-Header-Content-Length must be a non-negative integer"
check "raw binary request (length 0): 400" [ "$(post short 0)" == 400 ]
n=$(body badtype '{"inputs":[{"name":"text_input","datatype":"BYTES","shape":[1],"parameters":{"binary_data_size":10}},{"name":"max_tokens","datatype":"FP32","shape":[1],"parameters":{"binary_data_size":4}}]}' "s:$PROMPT" f:12)
check "wrong datatype: 400" [ "$(post badtype "$n")" == 400 ]
check "  ... names the tensor" has_error "input 'max_tokens' has datatype FP32, expected INT32"
n=$(body badlen '{"inputs":[{"name":"text_input","datatype":"BYTES","shape":[1],"parameters":{"binary_data_size":6}}]}' raw:ff000000 raw:4142)
check "BYTES length past its data: 400" [ "$(post badlen "$n")" == 400 ]
check "  ... names the tensor" has_error "input 'text_input': element 0 is 255 bytes long"
n=$(body badsize '{"inputs":[{"name":"text_input","datatype":"BYTES","shape":[1],"parameters":{"binary_data_size":"ten"}}]}' "s:$PROMPT")
check "binary_data_size not an integer: 400" [ "$(post badsize "$n")" == 400 ]
check "  ... names the parameter" has_error "parameter 'binary_data_size' must be a non-negative integer"
check "still serving after the errors" [ "$(post in_only "$(body in_only "{\"inputs\":$INPUTS}" "s:$PROMPT" i:12 f:0)")" == 200 ]

finish kserve_binary
