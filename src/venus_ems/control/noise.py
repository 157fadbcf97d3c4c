"""The Multi's low-power error and the grid meter's noise, as the dead band sees them (D46).

A MultiPlus asked for 10 W delivers ±100 W, for 100 W ±50 %: 1 sigma per phase
``low_power_error_w`` x exp(-|W| / ``low_power_scale_w``), phases independent, plus the meter's
``meter_noise_w`` per phase. The grid core widens its dead band and moves its aim by it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .ess import EssMethod, View

if TYPE_CHECKING:
    from .grid_target import GridTargetSettings

__all__ = ["NoiseBand", "multi_noise_w", "noise_band"]


def multi_noise_w(view: View, shift_w: float = 0.0) -> float:
    """1-sigma error (W) of the grid reading: meter noise and the Multi's low-power error.

    The Multi's error is taken at its conversion moved by ``shift_w`` W. Per phase the
    conversion is the command in force minus AC-out in mode 3 (what the Multi is told), else
    the measured AC-in minus AC-out, plus an even share of ``shift_w``; the phases err
    independently.
    """
    s, m = view.settings, view.multi
    meter = s.meter_noise_w**2 * s.phases
    conv: list[float] | None = None
    u = view.u_last
    if m is not None and m.ac_out_w is not None:
        if s.method is EssMethod.MODE3 and u is not None and len(u) == len(m.ac_out_w):
            conv = [a - b for a, b in zip(u, m.ac_out_w, strict=True)]
        elif m.ac_in_w is not None:
            conv = [a - b for a, b in zip(m.ac_in_w, m.ac_out_w, strict=True)]
    if conv is None or s.low_power_error_w <= 0:
        return math.sqrt(meter)
    e0, scale, share = s.low_power_error_w, s.low_power_scale_w, shift_w / len(conv)
    return math.sqrt(meter + sum((e0 * math.exp(-abs(c + share) / scale)) ** 2 for c in conv))


@dataclass(frozen=True, slots=True)
class NoiseBand:
    """The dead band after the Multi's low-power error (W): half-width, reach past the limits."""

    band_w: float
    slack_w: float = 0.0
    noise_w: float = 0.0


def noise_band(
    view: View, target: GridTargetSettings, grid_w: float, aim_w: float
) -> tuple[GridTargetSettings, NoiseBand]:
    """``target`` with the aim moved off its limits by the Multi's low-power error; the band.

    ``aim_w`` is the configured aim (W). The error is taken where the Multi will work once the
    grid is at that aim (not
    where it is now: at 0 W its error is largest, and a band sized there would keep it there).
    The aim keeps ``noise_aim_sigmas`` errors from a limit; the dead band is
    ``noise_sigmas`` errors wide on each side and may reach past the limit by the difference
    (noise the Multi makes there cannot be corrected, only chased).
    """
    s = view.settings
    noise = multi_noise_w(view, aim_w - grid_w)
    db = target.dead_band_w
    margin, band = max(db, s.noise_aim_sigmas * noise), max(db, s.noise_sigmas * noise)
    moved = target if margin <= db else replace(target, dead_band_w=margin)
    return moved, NoiseBand(band, max(band - margin, 0.0), noise)
