#!/usr/bin/env python3
"""Where a decode step's time goes, from an Nsight Systems GPU trace, used by gpu_check.sh nsys.

    nsys stats --report cuda_gpu_trace --format csv --output trace report.nsys-rep
    python3 scripts/nsys_summary.py trace_cuda_gpu_trace.csv [label] [--tail 0.5]

Kernels run back to back (and, under programmatic dependent launch, overlap: a kernel starts while its
predecessor finishes and waits inside). So besides each kernel's duration this prints what it adds to the
timeline: its end minus the previous activity's end ("adds"), which sums to the busy span of the trace. Only
the last --tail share of the trace's activities is read (the steady decode steps, after load and prefill);
gaps over 1 ms (the host's idle between requests) are left out of the sums.
"""
import csv
import re
import sys
from collections import defaultdict


def short(name):
    name = name.replace("(anonymous namespace)::", "").replace("<unnamed>::", "")
    name = re.sub(r"\(.*$", "", name)
    name = re.sub(r"^void ", "", name)
    name = re.sub(r"^llmserve::(cuda::)?", "", name)
    return name[:80]


def column(header, *candidates):
    for c in candidates:
        for h in header:
            if h.startswith(c):
                return h
    raise KeyError(f"none of {candidates} in {header}")


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    tail = 0.5
    if "--tail" in sys.argv:
        tail = float(sys.argv[sys.argv.index("--tail") + 1])
        args = [a for a in args if a != sys.argv[sys.argv.index("--tail") + 1]]
    lines = [l for l in open(args[0]) if l.strip()]
    start_at = next(i for i, l in enumerate(lines) if "Start" in l and "Duration" in l)
    rows = list(csv.DictReader(lines[start_at:]))
    if not rows:
        print("no GPU activities in the trace")
        return
    start_col = column(rows[0].keys(), "Start")
    dur_col = column(rows[0].keys(), "Duration")
    name_col = column(rows[0].keys(), "Name")
    events = sorted(
        (int(float(r[start_col])), int(float(r[dur_col])), r[name_col]) for r in rows if r[start_col]
    )
    events = events[int(len(events) * (1 - tail)) :]
    label = args[1] if len(args) > 1 else args[0]
    agg = defaultdict(lambda: [0, 0.0, 0.0])  # calls, duration ns, adds ns
    prev_end = None
    busy = gaps = 0
    for start, dur, name in events:
        end = start + dur
        if prev_end is None:
            adds = dur
        elif start - prev_end > 1_000_000:
            adds = dur  # a host gap between requests: not counted
        else:
            adds = max(0, end - prev_end)
            gaps += max(0, start - prev_end)
        a = agg[short(name) if not name.startswith("[") else name]
        a[0] += 1
        a[1] += dur
        a[2] += adds
        busy += adds
        prev_end = end if prev_end is None else max(prev_end, end)
    print(f"== nsys {label}: {len(events)} activities, {busy / 1e6:.3f} ms on the timeline "
          f"({gaps / 1e6:.3f} ms of it between activities)")
    print(f"{'kernel':<82} {'calls':>6} {'mean us':>8} {'adds us':>8} {'share':>6}")
    for name, (calls, dur, adds) in sorted(agg.items(), key=lambda kv: -kv[1][2]):
        print(f"{name:<82} {calls:>6} {dur / calls / 1e3:>8.2f} {adds / calls / 1e3:>8.2f} "
              f"{100 * adds / busy if busy else 0:>5.1f}%")


if __name__ == "__main__":
    main()
