"""Draws the autoscaling timeline as one SVG file: three panels over a shared time axis.

  1. triton:queue_compute:ratio as the HPA sees it (average over replicas), with the target line;
  2. replicas (the current count, as the HPA counts them: starting ones included), ready ones, and
     the count the controller set;
  3. load: seed-style clients (one request in flight each) and completed requests per second.

No plotting dependency: plain SVG text. Rows are dicts as autoscale.py writes them to the CSV.
"""
from xml.sax.saxutils import escape

WIDTH, PANEL_H, LEFT, RIGHT, TOP, GAP = 900, 170, 70, 150, 40, 45
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e"]


def _nice_max(v):
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is >= v."""
    if v <= 0:
        return 1.0
    for p in range(-3, 7):
        for m in (1, 2, 2.5, 5):
            if m * 10 ** p >= v:
                return m * 10 ** p
    return v


def _panel(out, y0, title, t_max, series, y_max, hline=None, integer=False):
    """series: [(label, [(t, v or None)], color, is_step)]. Appends SVG elements to out."""
    plot_w = WIDTH - LEFT - RIGHT
    sx = lambda t: LEFT + plot_w * t / t_max
    sy = lambda v: y0 + PANEL_H - PANEL_H * min(v, y_max) / y_max
    out.append(f'<text x="{LEFT}" y="{y0 - 8}" font-weight="bold">{escape(title)}</text>')
    out.append(f'<rect x="{LEFT}" y="{y0}" width="{plot_w}" height="{PANEL_H}" fill="none" stroke="#888"/>')
    ticks = range(int(y_max) + 1) if integer else [y_max * i / 4 for i in range(5)]
    for v in ticks:
        y = sy(v)
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" stroke="#eee"/>')
        label = f"{v:g}" if integer else f"{v:.2f}"
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{label}</text>')
    if hline is not None:
        label, value = hline
        y = sy(value)
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" stroke="#555" '
                   f'stroke-dasharray="6,4"/>')
        out.append(f'<text x="{LEFT + plot_w + 6}" y="{y + 4:.1f}" font-size="11">{escape(label)}</text>')
    for k, (label, points, color, step) in enumerate(series):
        segments, current = [], []
        for t, v in points:
            if v is None:
                if current:
                    segments.append(current)
                current = []
                continue
            if step and current:
                current.append((sx(t), current[-1][1]))
            current.append((sx(t), sy(v)))
        if current:
            segments.append(current)
        for seg in segments:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in seg)
            out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        ly = y0 + 16 + 18 * k
        out.append(f'<line x1="{LEFT + plot_w + 8}" y1="{ly + 20}" x2="{LEFT + plot_w + 28}" y2="{ly + 20}" '
                   f'stroke="{color}" stroke-width="2"/>')
        out.append(f'<text x="{LEFT + plot_w + 32}" y="{ly + 24}" font-size="11">{escape(label)}</text>')


def write_svg(path, rows, target, title):
    def col(name, cast=float):
        return [(float(r["t_s"]), cast(r[name]) if r[name] not in ("", None) else None) for r in rows]

    t_max = max([float(r["t_s"]) for r in rows] + [1.0])
    ratio = col("ratio")
    replicas = col("replicas", int)
    ready = col("ready", int)
    desired = col("desired", int)
    clients = col("clients", int)
    rps = col("requests_per_s")
    y_ratio = _nice_max(max([v for _, v in ratio if v is not None] + [target * 1.5]))
    y_rep = max([v for _, v in replicas + desired if v is not None] + [1]) + 1
    y_load = _nice_max(max([v for _, v in clients + rps if v is not None] + [1]) * 1.1)
    height = TOP + 3 * PANEL_H + 2 * GAP + 50
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
           f'<text x="{LEFT}" y="20" font-size="14" font-weight="bold">{escape(title)}</text>']
    y0 = TOP + 10
    _panel(out, y0, "triton:queue_compute:ratio (average over replicas)", t_max,
           [("ratio", ratio, COLORS[0], False)], y_ratio, hline=(f"target {target:g}", target))
    y0 += PANEL_H + GAP
    _panel(out, y0, "replicas", t_max, [("replicas", replicas, COLORS[1], True), ("ready", ready, COLORS[2], True),
                                        ("desired", desired, COLORS[3], True)], y_rep, integer=True)
    y0 += PANEL_H + GAP
    _panel(out, y0, "load", t_max, [("clients", clients, COLORS[2], True), ("requests/s", rps, COLORS[0], False)],
           y_load)
    plot_w = WIDTH - LEFT - RIGHT
    axis_y = y0 + PANEL_H
    t_step = _nice_max(t_max / 10)
    for i in range(int(t_max / t_step) + 1):
        t = i * t_step
        x = LEFT + plot_w * t / t_max
        out.append(f'<text x="{x:.1f}" y="{axis_y + 16}" text-anchor="middle" font-size="11">{t:.0f}</text>')
    out.append(f'<text x="{LEFT + plot_w / 2}" y="{axis_y + 34}" text-anchor="middle">time (s)</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
