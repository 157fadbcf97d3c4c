"""Sub-interval detail: coarse means -> 1 min -> 1 s, keeping every source mean exactly (W).

Load (after sim-data.md Appendix B): an edge inside a minute whose mean lies between its
neighbours, a short pulse in a minute above both neighbours, else a flat level; plus white noise.
PV: a cloud edge (a short ramp) where the level moves between neighbours by more than a threshold,
else a smooth line through the neighbouring minute means; plus slight flicker. Every segment is
then corrected so its mean equals the source value and nothing is negative.
"""

from __future__ import annotations

import random
from array import array
from collections.abc import Sequence

__all__ = ["coarse_to_minutes", "load_to_seconds", "pv_to_seconds"]


def _fix_mean(seg: list[float], mean: float) -> list[float]:
    """Clip at 0, then scale (or fill) so the segment mean is exactly ``mean``."""
    n = len(seg)
    if mean <= 0:
        return [0.0] * n
    seg = [v if v > 0 else 0.0 for v in seg]
    total = sum(seg)
    if total <= 0:
        return [mean] * n
    f = mean * n / total
    return [v * f for v in seg]


def coarse_to_minutes(values: Sequence[float], step_s: int) -> list[float]:
    """Means over ``step_s`` s -> 1-min values: a line through interval centres, mean-corrected."""
    if step_s % 60 or step_s < 60:
        raise ValueError(f"step_s must be a positive multiple of 60, got {step_s!r}")
    k = step_s // 60
    if k == 1:
        return [float(v) for v in values]
    n = len(values)
    out: list[float] = []
    for i, mean in enumerate(values):
        prev = values[i - 1] if i > 0 else mean
        nxt = values[i + 1] if i < n - 1 else mean
        seg = []
        for j in range(k):
            x = (j + 0.5) / k - 0.5  # -0.5..0.5 within the interval
            other = prev if x < 0 else nxt
            seg.append(mean + (other - mean) * abs(x))
        out.extend(_fix_mean(seg, float(mean)))
    return out


def load_to_seconds(
    minutes: Sequence[float],
    rng: random.Random,
    *,
    step_w: float = 50.0,
    pulse_w: tuple[float, float] = (1000.0, 2500.0),
    noise_w: float = 3.0,
) -> array[float]:
    """1-min load means W -> 1-s W: inferred switching edges, short pulses, meter noise."""
    n = len(minutes)
    out: array[float] = array("d")
    gauss = rng.gauss
    for i, m in enumerate(minutes):
        a = minutes[i - 1] if i > 0 else m
        b = minutes[i + 1] if i < n - 1 else m
        seg = [float(m)] * 60
        if abs(b - a) > step_w and min(a, b) <= m <= max(a, b):
            s = round(60 * (b - m) / (b - a))
            seg = [float(a)] * s + [float(b)] * (60 - s)
        elif m - max(a, b) > step_w:
            base = max(a, b)
            height = rng.uniform(*pulse_w)
            dur = min(max(round(60 * (m - base) / height), 1), 59)
            height = 60 * (m - base) / dur
            t0 = rng.randrange(0, 60 - dur + 1)
            seg = [base + height if t0 <= t < t0 + dur else float(base) for t in range(60)]
        if noise_w > 0:
            seg = [v + gauss(0.0, noise_w) for v in seg]
        out.extend(_fix_mean(seg, float(m)))
    return out


def pv_to_seconds(
    minutes: Sequence[float],
    rng: random.Random,
    *,
    edge_fraction: float = 0.3,
    ramp_s: int = 6,
    flicker: float = 0.004,
) -> array[float]:
    """1-min PV means W -> 1-s W: cloud edges as short ramps, smooth elsewhere, slight flicker."""
    n = len(minutes)
    out: array[float] = array("d")
    gauss = rng.gauss
    for i, m in enumerate(minutes):
        a = minutes[i - 1] if i > 0 else m
        b = minutes[i + 1] if i < n - 1 else m
        if m <= 0:
            out.extend([0.0] * 60)
            continue
        big = max(a, b, m)
        if abs(b - a) > edge_fraction * big and min(a, b) <= m <= max(a, b):
            s = round(60 * (b - m) / (b - a))
            seg = []
            for t in range(60):
                # a ramp of ramp_s seconds centred on the inferred edge second
                x = (t - s) / ramp_s + 0.5
                w = 0.0 if x <= 0 else 1.0 if x >= 1 else x
                seg.append(a + (b - a) * w)
        else:
            seg = []
            for t in range(60):
                x = (t + 0.5) / 60 - 0.5
                other = a if x < 0 else b
                seg.append(m + (other - m) * abs(x))
        if flicker > 0:
            seg = [v * (1.0 + gauss(0.0, flicker)) for v in seg]
        out.extend(_fix_mean(seg, float(m)))
    return out
