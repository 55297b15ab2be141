#!/usr/bin/env bash
# deploy/local/autoscale.sh, short: real llmserve replicas (max batch 1, so requests queue) behind
# nginx, Prometheus (Debian) with deploy/prometheus/rules.yaml, seed clients stepping from 1 to 4,
# and the HPA's formula on triton:queue_compute:ratio. Asserts that with one replica under the step
# load the ratio crosses 1000m and a scale-up is decided (by the documented formula), that after
# replicas are added the ratio falls below the target, that the CSV and SVG are written and that
# every process the loop started is gone. Also pins deploy/local/hpa.py's arithmetic on fixed cases.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BIN=${LLMSERVE:?path of the llmserve binary}
SRC=${LLMSERVE_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
export LLMSERVE_DEFAULT_MODEL=${LLMSERVE_DEFAULT_MODEL:-$SRC/models/default}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
WORK=$(mktemp -d)
LOOP_PID=""
cleanup() {
  [ -n "$LOOP_PID" ] && kill "$LOOP_PID" 2>/dev/null && wait "$LOOP_PID" 2>/dev/null
  # Anything the loop left behind (it should leave nothing; checked below).
  [ -f "$WORK/run/pids" ] && while read -r pid _; do kill -9 "$pid" 2>/dev/null; done < "$WORK/run/pids"
  rm -rf "$WORK"
}
trap cleanup EXIT
for tool in prometheus nginx python3; do
  command -v $tool > /dev/null || { echo "FAIL $tool not installed (scripts/install_deps.sh --test)"; exit 1; }
done

# ---------- the HPA arithmetic (deploy/local/hpa.py) on documented cases ----------
check "hpa.py: formula, tolerance, missing metrics, stabilization, scale-up limit" python3 - "$SRC/deploy/local" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
from hpa import recommend, Behavior
assert recommend({"a": 1.6}, 1.0) == (2, 1.6)                   # ceil(1 * 1.6 / 1)
assert recommend({"a": 2.5, "b": 0.5}, 1.0) == (3, 1.5)         # ceil(2 * 1.5)
assert recommend({"a": 1.05}, 1.0)[0] == 1                      # within tolerance 0.1
assert recommend({"a": 1.2}, 1.0, tolerance=0.25)[0] == 1
assert recommend({"a": 0.3, "b": 0.1}, 1.0)[0] == 1             # ceil(2 * 0.2)
assert recommend({"a": 0.2, "b": 0.2, "c": 0.2}, 0.5)[0] == 2   # ceil(3 * 0.4)
assert recommend({"a": 2.6, "b": None}, 1.0)[0] == 3            # missing counts 0 when scaling up
assert recommend({"a": 1.6, "b": None}, 1.0)[0] == 2            # ... (0.8: direction reverses: stay)
assert recommend({"a": 0.2, "b": None, "c": None}, 1.0)[0] == 3 # missing counts as target when down
assert recommend({"a": None}, 1.0) == (1, None)                 # no metrics: no change
b = Behavior(1, 3, scale_down_window_s=30, start=(0, 2))
assert [b.apply(0, 2, 1), b.apply(20, 2, 1), b.apply(31, 2, 1)] == [2, 2, 1]  # waits out the window
b = Behavior(1, 10, start=(0, 1))
assert [b.apply(0, 1, 9), b.apply(5, 5, 9), b.apply(16, 5, 9)] == [5, 5, 9]   # +4 per 15 s, then 2x
assert Behavior(2, 3, start=(0, 2)).apply(0, 2, 7) == 3                       # max replicas
EOF

# ---------- the loop, short ----------
start=$SECONDS
"$SRC/deploy/local/autoscale.sh" --llmserve "$BIN" --workdir "$WORK/run" --duration 140 --load 0:1,5:4 \
  --target 1 --min-replicas 1 --max-replicas 3 --sync-period 3 --scale-down-window 300 \
  --stop-when-settled 6 > "$WORK/loop.out" 2>&1 &
LOOP_PID=$!
wait "$LOOP_PID"
rc=$?
LOOP_PID=""
sed 's/^/     /' "$WORK/loop.out"
echo "     (loop ran $((SECONDS - start)) s)"
check "loop exits 0" [ $rc == 0 ]

check "Prometheus loaded the four recording rules of deploy/prometheus/rules.yaml" python3 - "$WORK/run/summary.json" <<'EOF'
import json, sys
rules = json.load(open(sys.argv[1]))["rules"]
sys.exit(0 if sorted(rules) == sorted(["triton:compute_duration:average", "triton:queue_duration:average",
                                       "triton:request_duration:average", "triton:queue_compute:ratio"]) else 1)
EOF

# Rows: one per sync; ratio is the average over replicas with a value (what the HPA divides).
cat > "$WORK/rows.py" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
ratio = lambda r: float(r["ratio"]) if r["ratio"] else None
EOF
csv_check() { python3 -c "exec(open('$WORK/rows.py').read()); $1" "$WORK/run/timeline.csv"; }

check "with 1 replica under the step load the ratio crosses 1000m" csv_check "
sys.exit(0 if any(r['ready'] == '1' and r['replicas'] == '1' and ratio(r) is not None and ratio(r) >= 1.0 for r in rows) else 1)"
check "a scale-up from 1 replica is decided" csv_check "
ups = [r for r in rows if r['action'].startswith('scale up 1->')]
sys.exit(0 if ups and ratio(ups[0]) > 1.1 else 1)"
check "  ... with the HPA's formula: desired = min(max, ceil(1 x ratio / 1))" csv_check "
import math
r = [r for r in rows if r['action'].startswith('scale up 1->')][0]
sys.exit(0 if int(r['desired']) == min(3, math.ceil(1 * ratio(r) / 1.0)) else 1)"
check "after replicas are added (>= 2 ready) the ratio falls below the target" csv_check "
i = next(i for i, r in enumerate(rows) if int(r['ready']) >= 2)
sys.exit(0 if any(ratio(r) is not None and ratio(r) < 1.0 for r in rows[i:]) else 1)"
check "no scale-down within the 300 s stabilization window" csv_check "
sys.exit(0 if not any(r['action'].startswith('scale down') for r in rows) else 1)"
check "timeline.svg is SVG with the ratio, replicas and load panels" python3 - "$WORK/run/timeline.svg" <<'EOF'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
text = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
lines = list(root.iter("{http://www.w3.org/2000/svg}polyline"))
sys.exit(0 if root.tag.endswith("svg") and "queue_compute" in text and "replicas" in text and "load" in text
         and len(lines) >= 5 else 1)
EOF
check "every process the loop started has exited" bash -c '
  n=0; while read -r pid name; do kill -0 "$pid" 2>/dev/null && { echo "     still running: $pid $name"; n=1; }; done < "$1"; [ $n == 0 ]' _ "$WORK/run/pids"
echo "     timeline.csv:"
sed 's/^/     /' "$WORK/run/timeline.csv"

finish
