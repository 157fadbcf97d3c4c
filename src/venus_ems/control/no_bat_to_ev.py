"""No battery to the EV: how much more grid import keeps the house battery out of the car.

Pure core. ESS holds the grid at its target, so the battery covers ``consumption - PV``. The
car's share of that deficit is shifted to the grid: ``shift = clamp(consumption - PV, 0, car)``
(consumption includes the car). The house keeps its battery; PV still goes to the house first,
then to the car. Powers in W (+ = consumed / produced / more import).

Unknown or stale inputs (the car's power, the consumption or the PV) give no shift at all: the
request is released, never held at its last value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["CarShiftInputs", "car_shift_w", "total_w"]


def total_w(values: Iterable[float | None]) -> float | None:
    """Sum of the known, finite values (a phase a site lacks is None); None when none is known."""
    known = [v for v in values if v is not None and math.isfinite(v)]
    return sum(known) if known else None


@dataclass(frozen=True)
class CarShiftInputs:
    """Car draw, AC consumption (car included) and PV (AC + DC), W; None = unknown or stale."""

    car_w: float | None
    consumption_w: float | None
    pv_w: float | None
    grid_present: bool = True


def car_shift_w(inputs: CarShiftInputs, *, min_car_w: float = 100.0) -> float | None:
    """W of extra grid import for the car, or None to release (not charging, unknown, off-grid)."""
    car, cons, pv = inputs.car_w, inputs.consumption_w, inputs.pv_w
    if not inputs.grid_present or car is None or cons is None or pv is None:
        return None
    if not all(math.isfinite(v) for v in (car, cons, pv)) or car < min_car_w:
        return None
    return min(max(cons - max(pv, 0.0), 0.0), car)
