"""Static SVG line charts for the report (no plotting library, no script, no network).

:func:`line_chart` draws series of per-minute values against the time of day in hours, with
"nice" y ticks, a zero line, gaps where a value is missing, and a legend. Every text is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

__all__ = ["Line", "line_chart", "nice_ticks"]

_W, _H = 640, 250
_L, _R, _T, _B = 52, 18, 40, 24


@dataclass(frozen=True)
class Line:
    """One series: label, CSS colour, values (None = gap), dashed or not."""

    label: str
    color: str
    values: Sequence[float | None]
    dashed: bool = False


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering ``lo..hi`` (steps of 1, 2 or 5 times a power of ten)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.floor(lo / step) * step
    ticks = []
    v = first
    while v <= hi + step * 1e-9:
        ticks.append(round(v, 10))
        v += step
    if ticks[-1] < hi:
        ticks.append(round(v, 10))
    return ticks


def _fmt(v: float) -> str:
    if abs(v) >= 10_000:
        return f"{v / 1000:g}k"
    return f"{v:g}"


def line_chart(
    title: str,
    unit: str,
    hours: Sequence[float],
    lines: Sequence[Line],
    *,
    y_range: tuple[float, float] | None = None,
    include_zero: bool = True,
) -> str:
    """An SVG document fragment (``<svg>…</svg>``) plotting ``lines`` against ``hours``."""
    values = [v for line in lines for v in line.values if v is not None and math.isfinite(v)]
    if y_range is not None:
        lo, hi = y_range
    elif values:
        lo, hi = min(values), max(values)
        if include_zero:
            lo, hi = min(lo, 0.0), max(hi, 0.0)
    else:
        lo, hi = 0.0, 1.0
    if hi - lo < 1e-9:
        lo, hi = lo - 1.0, hi + 1.0
    ticks = nice_ticks(lo, hi)
    lo, hi = min(lo, ticks[0]), max(hi, ticks[-1])
    t0 = math.floor(hours[0]) if hours else 0.0
    t1 = math.ceil(hours[-1]) if hours else 24.0
    if t1 <= t0:
        t1 = t0 + 1.0
    pw, ph = _W - _L - _R, _H - _T - _B

    def x(h: float) -> float:
        return _L + pw * (h - t0) / (t1 - t0)

    def y(v: float) -> float:
        return _T + ph * (1.0 - (v - lo) / (hi - lo))

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {_H}" class="chart" '
        f'role="img" aria-label="{escape(title)}">',
        f'<text x="{_L}" y="14" class="title">{escape(title)}'
        f"{' (' + escape(unit) + ')' if unit else ''}</text>",
    ]
    for tv in ticks:
        yy = y(tv)
        cls = "zero" if tv == 0 else "grid"
        out.append(f'<line x1="{_L}" y1="{yy:.1f}" x2="{_W - _R}" y2="{yy:.1f}" class="{cls}"/>')
        out.append(f'<text x="{_L - 4}" y="{yy + 3:.1f}" class="ytick">{_fmt(tv)}</text>')
    step_h = 3 if t1 - t0 > 8 else 1
    h = math.ceil(t0 / step_h) * step_h
    while h <= t1 + 1e-9:
        xx = x(h)
        out.append(f'<line x1="{xx:.1f}" y1="{_T}" x2="{xx:.1f}" y2="{_T + ph}" class="grid"/>')
        out.append(f'<text x="{xx:.1f}" y="{_H - 8}" class="xtick">{int(h) % 24:02d}:00</text>')
        h += step_h
    for line in lines:
        dash = ' stroke-dasharray="5 3"' if line.dashed else ""
        for run in _runs(hours, line.values):
            pts = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in run)
            out.append(
                f'<polyline points="{pts}" fill="none" stroke="{escape(line.color)}"'
                f' stroke-width="1.4"{dash}/>'
            )
    lx = _L
    for line in lines:
        out.append(
            f'<rect x="{lx}" y="23" width="12" height="3" fill="{escape(line.color)}"/>'
            f'<text x="{lx + 16}" y="28" class="legend">{escape(line.label)}</text>'
        )
        lx += 26 + 6 * len(line.label)
    out.append("</svg>")
    return "\n".join(out)


def _runs(
    hours: Sequence[float], values: Sequence[float | None]
) -> list[list[tuple[float, float]]]:
    """Consecutive stretches of known values (a polyline each)."""
    runs: list[list[tuple[float, float]]] = []
    cur: list[tuple[float, float]] = []
    for t, v in zip(hours, values, strict=False):
        if v is None or not math.isfinite(v):
            if len(cur) > 1:
                runs.append(cur)
            cur = []
        else:
            cur.append((t, v))
    if len(cur) > 1:
        runs.append(cur)
    return runs
