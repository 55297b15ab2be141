"""The HorizontalPodAutoscaler's replica calculation for one Pods metric, as Kubernetes documents it.

Owns the arithmetic only (no processes, no clock): `recommend` turns per-replica metric values into
a replica count, `Behavior` applies the stabilization windows, min/max and the scale-up rate
limit. Mirrors https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/
("Algorithm details", "Configurable scaling behavior") for an AverageValue target:

  desired = ceil(current * currentMetricValue / desiredMetricValue)

where currentMetricValue is the average over replicas. Within the tolerance (default 0.1) nothing
changes. Replicas without a value (not ready yet, or not scraped yet) are left out first; if the
others say "scale", they are counted as 0 when scaling up and as exactly the target when scaling
down, and the scale is dropped if that reverses the direction or lands within the tolerance.
"""
import math


def recommend(values, target, tolerance=0.1):
    """values: {replica: metric value or None}. Returns (desired replica count, average or None)."""
    current = len(values)
    known = [v for v in values.values() if v is not None]
    num_missing = current - len(known)
    if not known:
        return current, None  # no metrics at all: the HPA leaves the scale alone
    average = sum(known) / len(known)
    usage = average / target
    if abs(usage - 1.0) <= tolerance:
        return current, average
    if num_missing == 0:
        return math.ceil(usage * len(known)), average
    fill = 0.0 if usage > 1.0 else target
    new_usage = (sum(known) + fill * num_missing) / current / target
    if abs(new_usage - 1.0) <= tolerance or (new_usage > 1.0) != (usage > 1.0):
        return current, average
    return math.ceil(new_usage * current), average


class Behavior:
    """spec.behavior: stabilization windows, min/max, and the default scale-up policies
    (at most +100% or +4 replicas, whichever is more, per 15 s period)."""

    def __init__(self, min_replicas, max_replicas, scale_down_window_s=300.0, scale_up_window_s=0.0,
                 scale_up_period_s=15.0, start=(0.0, None)):
        self.min_replicas = min_replicas
        self.max_replicas = max_replicas
        self.scale_down_window_s = scale_down_window_s
        self.scale_up_window_s = scale_up_window_s
        self.scale_up_period_s = scale_up_period_s
        # (time, desired). Seeded with the starting replica count, so that the first scale-down
        # also waits out a whole window.
        self.recommendations = [start] if start[1] is not None else []
        self.scale_ups = []        # (time, replicas added)

    def apply(self, now, current, desired):
        """Returns the replica count to set now."""
        history = self.recommendations
        up = min([desired] + [r for t, r in history if now - t < self.scale_up_window_s])
        down = max([desired] + [r for t, r in history if now - t < self.scale_down_window_s])
        horizon = max(self.scale_down_window_s, self.scale_up_window_s)
        self.recommendations = [(t, r) for t, r in history if now - t < horizon] + [(now, desired)]
        stabilized = current
        if stabilized < up:
            stabilized = up
        if stabilized > down:
            stabilized = down
        stabilized = max(self.min_replicas, min(self.max_replicas, stabilized))
        if stabilized > current:
            recent = sum(n for t, n in self.scale_ups if now - t < self.scale_up_period_s)
            base = current - recent  # replicas at the start of the period
            limit = max(2 * base, base + 4)
            stabilized = min(stabilized, max(current, limit))
            if stabilized > current:
                self.scale_ups.append((now, stabilized - current))
        return stabilized
