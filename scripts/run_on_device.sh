#!/usr/bin/env bash
# Runs the PyTorch generators on the GPU machine and packs what they write into $OUT.
#
#   bash scripts/run_on_device.sh references [args for make_reference.py]
#       -> $OUT/fixtures.tar (models/<name>/..., unpack with: tar -C tests/data -xf fixtures.tar),
#          make_quantized_reference.py's models too unless --only is given
#          $OUT/references.log
#   bash scripts/run_on_device.sh train [args for train_default_model.py, e.g. --steps 800 --seed 1234]
#       -> $OUT/model.safetensors (float16, just under 16 MB)
#          $OUT/default_small.tar (default/<every other output but vocab.json and merges.txt>;
#             unpack with: tar -C models -xf default_small.tar && cp model.safetensors models/default/)
#          $OUT/train.log
#
# Run from anywhere; paths are taken from the repository root. OUT defaults to <repo>/out.
# The training data defaults to shared/data/tinyshakespeare.txt in the repo, else ../shared/...;
# pass --data PATH to override. Exit status: the generator's.
set -uo pipefail

mode=${1:-}
if [ $# -gt 0 ]; then shift; fi
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 2
OUT=${OUT:-$root/out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export CUBLAS_WORKSPACE_CONFIG=${CUBLAS_WORKSPACE_CONFIG:-:4096:8}
work=$(mktemp -d "${TMPDIR:-/tmp}/llmserve-gen.XXXXXX")

environment() {
  echo "== $(date -u +%Y-%m-%dT%H:%M:%SZ) $mode in $root"
  "$PY" -c 'import sys, torch, transformers, safetensors, tokenizers
print("python", sys.version.split()[0], "| torch", torch.__version__, "| cuda", torch.version.cuda,
      "| transformers", transformers.__version__, "| safetensors", safetensors.__version__,
      "| tokenizers", tokenizers.__version__, "| gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)' 2>&1
  command -v nvidia-smi >/dev/null && nvidia-smi -L
}

report_out() {
  local n=0 f
  for f in "$OUT"/*; do
    [ -f "$f" ] || continue
    n=$((n + 1))
    local size
    size=$(stat -c %s "$f")
    echo "  $size  $(basename "$f")"
    if [ "$size" -gt 16777216 ]; then echo "WARNING: $(basename "$f") is over 16 MiB and will not come back"; fi
  done
  if [ "$n" -gt 8 ]; then echo "WARNING: $n files in \$OUT; only 8 come back"; fi
}

case "$mode" in
  references)
    log="$OUT/references.log"
    environment >"$log"
    "$PY" scripts/make_reference.py --out "$work/models" "$@" 2>&1 | tee -a "$log"
    rc=${PIPESTATUS[0]}
    # The pre-quantized checkpoints (fp8 compressed-tensors and block-wise, AWQ, GPTQ) unless
    # --only picked models of make_reference.py alone.
    if [[ " $* " != *" --only "* ]]; then
      "$PY" scripts/make_quantized_reference.py --out "$work/models" 2>&1 | tee -a "$log"
      [ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
    fi
    if [ "$rc" -eq 0 ] && [ -d "$work/models" ]; then
      tar -C "$work" -cf "$OUT/fixtures.tar" models/
      tar -tvf "$OUT/fixtures.tar" >>"$log"
    else
      echo "make_reference.py failed (exit $rc); no fixtures.tar" | tee -a "$log"
    fi
    ;;
  train)
    log="$OUT/train.log"
    environment >"$log"
    "$PY" scripts/train_default_model.py --vocab-dir models/default --out "$work/default" "$@" 2>&1 | tee -a "$log"
    rc=${PIPESTATUS[0]}
    # Packed even when checks failed (exit 1), so a finished run is never lost; the log says what failed.
    if [ -f "$work/default/model.safetensors" ]; then
      cp "$work/default/model.safetensors" "$OUT/model.safetensors"
    fi
    if [ -d "$work/default" ]; then
      tar -C "$work" -cf "$OUT/default_small.tar" \
        --exclude=default/model.safetensors --exclude=default/vocab.json --exclude=default/merges.txt default/
      tar -tvf "$OUT/default_small.tar" >>"$log"
    fi
    ;;
  *)
    echo "usage: bash scripts/run_on_device.sh references|train [generator args]" >&2
    rm -rf "$work"
    exit 2
    ;;
esac

echo "exit $rc; \$OUT:" | tee -a "$log"
report_out | tee -a "$log"
rm -rf "$work"
exit "$rc"
