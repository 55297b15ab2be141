#!/usr/bin/env python3
"""Per-kernel table from an Nsight Compute CSV (`ncu --csv --metrics ...`), used by gpu_check.sh ncu.

    python3 scripts/ncu_summary.py profile.csv [label]

Groups kernels by name and grid size (so the shapes of one kernel stay apart), and prints calls, total and mean GPU time, and
DRAM bytes and bandwidth, achieved occupancy and registers per thread, largest total first. Every kernel is timed alone by ncu (serialised,
caches flushed), so the totals are the GPU time of the kernels without launch gaps.
"""
import csv
import re
import sys
from collections import defaultdict


def short(name):
    name = name.replace("(anonymous namespace)::", "").replace("<unnamed>::", "")
    name = re.sub(r"\(.*$", "", name)          # argument list
    name = re.sub(r"^void ", "", name)
    name = re.sub(r"^llmserve::(cuda::)?", "", name)
    return name[:90]


def main():
    rows = list(csv.DictReader(l for l in open(sys.argv[1]) if l.startswith('"')))
    label = sys.argv[2] if len(sys.argv) > 2 else sys.argv[1]
    kernels = defaultdict(dict)
    for r in rows:
        kernels[(r["ID"], r["Kernel Name"], r.get("Grid Size", ""))][r["Metric Name"]] = float(r["Metric Value"].replace(",", "") or 0)
    agg = defaultdict(lambda: [0, 0.0, 0.0, 0.0, 0.0])
    for (kid, name, grid), m in kernels.items():
        a = agg[f"{short(name)[:62]} {grid}"]
        a[0] += 1
        a[1] += m.get("gpu__time_duration.sum", 0) / 1e3          # ns -> us
        a[2] += m.get("dram__bytes_read.sum", 0) + m.get("dram__bytes_write.sum", 0)
        a[3] += m.get("sm__warps_active.avg.pct_of_peak_sustained_active", 0)
        a[4] += m.get("launch__registers_per_thread", 0)
    total = sum(a[1] for a in agg.values())
    print(f"== ncu {label}: {len(kernels)} kernels, {total:.1f} us of GPU time")
    print(f"{'kernel, grid':<75} {'calls':>6} {'total us':>10} {'mean us':>9} {'share':>6} {'MB':>9} {'GB/s':>7} {'occ%':>5} {'regs':>5}")
    for name, (n, us, b, occ, regs) in sorted(agg.items(), key=lambda kv: -kv[1][1]):
        print(f"{name:<75} {n:>6} {us:>10.1f} {us / n:>9.2f} {100 * us / total:>5.1f}% {b / 1e6:>9.1f} "
              f"{b / 1e3 / us if us else 0:>7.0f} {occ / n:>5.0f} {regs / n:>5.0f}")


if __name__ == "__main__":
    main()
