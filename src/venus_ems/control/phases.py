"""Per-phase balancing: split a total so no phase charges while another inverts.

On a three-phase Multi system in ESS mode 3 each phase gets its own AC-input setpoint. What
flows through the battery on phase p is the conversion ``c_p = ac_in_p - ac_out_p`` (+ = the
phase's Multi charges). :func:`split_same_sign` chooses the ``c_p`` closest (least squares) to a
preferred split — e.g. the one that would zero each phase's grid power — subject to

* ``sum(c_p) == total`` (the total the core decided, already clamped),
* every ``c_p`` on the total's side of zero (all charging or all inverting, never both),
* per-phase inverter/charger limits ``low_w[p] <= c_p <= high_w[p]``.

The solution adds one common offset to every preferred value and clips it to the bounds
("water filling"); the offset is found exactly from the clip breakpoints.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["split_same_sign"]


def _filled(level: float, pref: Sequence[float], lo: Sequence[float], hi: Sequence[float]) -> float:
    return sum(min(max(p + level, a), b) for p, a, b in zip(pref, lo, hi, strict=True))


def split_same_sign(
    total_w: float,
    preferred_w: Sequence[float],
    low_w: Sequence[float],
    high_w: Sequence[float],
) -> tuple[float, ...]:
    """Per-phase values summing to ``total_w`` (W), all on its side of zero, within bounds.

    ``low_w[p] <= 0 <= high_w[p]`` are the per-phase limits (inverting is negative). If the
    total is outside what the bounds allow, every phase is put at its bound on the total's side
    (the sum then falls short). Raises ValueError on mismatched lengths or inverted bounds.
    """
    n = len(preferred_w)
    if not (n == len(low_w) == len(high_w)) or n == 0:
        raise ValueError("preferred_w, low_w and high_w must have the same non-zero length")
    for p in range(n):
        if not low_w[p] <= 0 <= high_w[p]:
            raise ValueError(f"phase {p + 1}: bounds {low_w[p]}..{high_w[p]} must straddle 0")
    if total_w >= 0:
        lo = [0.0] * n
        hi = [float(h) for h in high_w]
    else:
        lo = [float(a) for a in low_w]
        hi = [0.0] * n
    if total_w >= sum(hi):
        return tuple(hi)
    if total_w <= sum(lo):
        return tuple(lo)
    pref = [float(v) for v in preferred_w]
    points = sorted(
        {a - p for a, p in zip(lo, pref, strict=True)}
        | {b - p for b, p in zip(hi, pref, strict=True)}
    )
    # f(level) is continuous and non-decreasing, from sum(lo) below the first breakpoint to
    # sum(hi) above the last; it is linear between breakpoints.
    left = points[0]
    f_left = _filled(left, pref, lo, hi)
    level = left
    for right in points[1:]:
        f_right = _filled(right, pref, lo, hi)
        if f_right >= total_w:
            level = left + (total_w - f_left) * (right - left) / (f_right - f_left)
            break
        left, f_left = right, f_right
    values = [min(max(p + level, a), b) for p, a, b in zip(pref, lo, hi, strict=True)]
    # Remove float rounding from the sum on a phase that is not at a bound.
    residue = total_w - sum(values)
    for p in range(n):
        if lo[p] < values[p] + residue < hi[p] or residue == 0:
            values[p] += residue
            break
    return tuple(values)
