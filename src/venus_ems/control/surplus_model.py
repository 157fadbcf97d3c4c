"""Solar surplus distributor, the data it works on (see :mod:`venus_ems.control.surplus`).

Stable API (the ``[surplus]`` feature and the Opportunity-Loads bridge build on it):

* :class:`ReservationCurve` — the battery reservation (W) as a function of SoC (%): points
  ``(soc, w)`` with SoC rising and W never rising, W >= 0, interpolated linearly, flat outside.
  :meth:`ReservationCurve.from_function` samples any ``soc -> W`` function (e.g. an es-ESS
  ``MinBatteryCharge`` expression, evaluated safely by the config layer) at every whole per
  cent and raises ValueError when it fails, is not finite or rises with SoC; negative values
  are clamped to 0.
* :class:`SurplusSettings` — reservation, hysteresis (W), settle time (s), request and input
  ages (s).
* :class:`Site` — grid (W, + = import), battery (W, + = charging), SoC (%), PV (W) and when
  they were read (monotonic s).
* :class:`Load` — one consumer as the distributor sees it: priority (lower = served first),
  priority shift per grant, stepped ``levels_w`` or continuous ``min_w``/``max_w``/``step_w``,
  minimum on/off times (s), ``ignore_reservation``, its own measured draw (W), whether it is
  ready (automatic) and when it last reported (monotonic s).
* :class:`LoadMemory` — what the distributor remembers about a consumer between decisions
  (its grant, when that changed, when it switched on/off, its settle contribution).
* :class:`Allocation`, :class:`Distribution` — the result of one decision.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "Allocation",
    "Distribution",
    "Load",
    "LoadMemory",
    "ReservationCurve",
    "Site",
    "SurplusSettings",
]

_SOC_SAMPLES = tuple(float(s) for s in range(101))


@dataclass(frozen=True, slots=True)
class ReservationCurve:
    """Battery reservation W by SoC %: ``points`` ((soc, W), ...), SoC rising, W falling, >= 0.

    Raises ValueError when the points are empty, not finite, SoC does not rise or W rises.
    """

    points: tuple[tuple[float, float], ...] = ((0.0, 0.0),)

    def __post_init__(self) -> None:
        """Check the shape (ValueError)."""
        pts = self.points
        if not pts:
            raise ValueError("a reservation curve needs at least one (soc, W) point")
        if not all(math.isfinite(s) and math.isfinite(w) for s, w in pts):
            raise ValueError("reservation points must be finite")
        if any(w < 0 for _, w in pts):
            raise ValueError("a reservation is never negative")
        for (s0, w0), (s1, w1) in itertools.pairwise(pts):
            if s1 <= s0:
                raise ValueError(f"reservation SoC points must rise: {s0} then {s1}")
            if w1 > w0 + 1e-9:
                raise ValueError(
                    f"the reservation must not rise with SoC: {w0:g} W at {s0:g} % "
                    f"but {w1:g} W at {s1:g} %"
                )

    def at(self, soc: float | None) -> float:
        """The reservation in W at ``soc`` %; unknown SoC gives the largest (SoC 0) value."""
        pts = self.points
        if soc is None or not math.isfinite(soc):
            return pts[0][1]
        if soc <= pts[0][0]:
            return pts[0][1]
        for (s0, w0), (s1, w1) in itertools.pairwise(pts):
            if soc <= s1:
                return w0 + (w1 - w0) * (soc - s0) / (s1 - s0)
        return pts[-1][1]

    @classmethod
    def constant(cls, w: float) -> ReservationCurve:
        """A flat reservation of ``w`` W (ValueError when negative)."""
        return cls(((0.0, float(w)),))

    @classmethod
    def from_function(cls, fn: Callable[[float], float]) -> ReservationCurve:
        """Sample ``fn(soc)`` at SoC 0..100 %; negative values clamp to 0.

        Raises ValueError when ``fn`` raises or returns a non-number/non-finite value at some
        SoC, or when the result rises with SoC.
        """
        pts: list[tuple[float, float]] = []
        for soc in _SOC_SAMPLES:
            try:
                raw = fn(soc)
            except Exception as exc:  # noqa: BLE001 - any failure of a user formula is reported
                raise ValueError(f"fails at SoC {soc:g} %: {exc}") from None
            w = (
                float(raw)
                if isinstance(raw, int | float) and not isinstance(raw, bool)
                else math.nan
            )
            if math.isnan(w) and not isinstance(raw, float):
                raise ValueError(f"gives {raw!r} at SoC {soc:g} %, not a number")
            if not math.isfinite(w):
                raise ValueError(f"gives {w} at SoC {soc:g} %")
            pts.append((soc, max(0.0, w)))
        return cls(tuple(pts))


@dataclass(frozen=True, slots=True)
class SurplusSettings:
    """Reservation; hysteresis W; settle, request-age and input-age times in s.

    ``hysteresis_w``: a consumer that runs keeps its level while the surplus is up to this much
    short of it; starting (or going up) needs the full amount. ``settle_s``: after its grant
    changed a consumer is held there and counted with the smaller of its old draw and its new
    grant, so the meters can catch up before the surplus is shared again (feed-forward).
    ``request_max_age_s``: a consumer whose report is older gets nothing (expired request).
    ``input_max_age_s``: a grid reading older than this puts every consumer off.
    ``borrow_s``: battery as a buffer: a running consumer (not ``ignore_reservation``) that
    the room above the reservation no longer covers keeps its level from the reservation
    (the battery's share of the surplus; never from the grid) for at most this long in a row;
    0 = never.
    """

    reservation: ReservationCurve = field(default_factory=ReservationCurve)
    hysteresis_w: float = 100.0
    settle_s: float = 10.0
    request_max_age_s: float = 120.0
    input_max_age_s: float = 15.0
    borrow_s: float = 0.0

    def __post_init__(self) -> None:
        """Check the numbers (ValueError)."""
        names = ("hysteresis_w", "settle_s", "request_max_age_s", "input_max_age_s", "borrow_s")
        for name in names:
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")


@dataclass(frozen=True, slots=True)
class Site:
    """What the meters say: grid W (+ import), battery W (+ charging), SoC %, PV W, at (mono s).

    ``grid_w`` None = no reading (every consumer goes off); ``battery_w`` None counts as 0;
    ``soc`` None takes the largest reservation; ``pv_w`` None = no cap (the surplus can never
    exceed what PV makes, so grid charging of the battery is not surplus).
    """

    grid_w: float | None
    battery_w: float | None = None
    soc: float | None = None
    pv_w: float | None = None
    taken_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Load:
    """One consumer (W, s; lower priority = served first). ValueError when inconsistent.

    Stepped: ``levels_w`` ascending from 0 (a grant is always one of them). Continuous
    (``levels_w`` None): 0 or ``min_w``..``max_w``; ``step_w`` > 0 grants in steps above
    ``min_w``, 0 takes any whole number of W. ``draw_w``: its own measured draw now (None = unknown,
    counted 0). ``ready`` False (manual, full, thermostat open): gets 0 and is not counted.
    ``reported_at`` None = never reported (expired).
    """

    name: str
    priority: float = 50.0
    priority_shift: float = 0.0
    levels_w: tuple[float, ...] | None = None
    min_w: float = 0.0
    max_w: float = 0.0
    step_w: float = 0.0
    min_on_s: float = 0.0
    min_off_s: float = 0.0
    ignore_reservation: bool = False
    draw_w: float | None = None
    ready: bool = True
    reported_at: float | None = None

    def __post_init__(self) -> None:
        """Check levels, bounds and times (ValueError)."""
        if self.levels_w is not None:
            lv = self.levels_w
            if len(lv) < 2 or lv[0] != 0.0 or any(b <= a for a, b in itertools.pairwise(lv)):
                raise ValueError(f"{self.name}: levels_w must start at 0 and rise: {lv}")
            if not all(math.isfinite(w) for w in lv):
                raise ValueError(f"{self.name}: levels_w must be finite")
        elif not (0.0 <= self.min_w <= self.max_w and math.isfinite(self.max_w)):
            raise ValueError(f"{self.name}: need 0 <= min_w <= max_w")
        nums = (self.priority, self.priority_shift, self.step_w, self.min_on_s, self.min_off_s)
        if not all(math.isfinite(v) for v in nums):
            raise ValueError(f"{self.name}: priority, shift, step and times must be finite")
        if self.step_w < 0 or self.min_on_s < 0 or self.min_off_s < 0 or self.priority_shift < 0:
            raise ValueError(f"{self.name}: shift, step and times must be >= 0")

    @property
    def top_w(self) -> float:
        """The most it can draw, W."""
        return self.levels_w[-1] if self.levels_w is not None else self.max_w

    @property
    def first_w(self) -> float:
        """The smallest non-zero grant, W (0 when it can take nothing)."""
        if self.levels_w is not None:
            return self.levels_w[1]
        if self.max_w <= 0:
            return 0.0
        if self.min_w > 0:
            return self.min_w
        return min(self.step_w, self.max_w) if self.step_w > 0 else min(1.0, self.max_w)


@dataclass(frozen=True, slots=True)
class LoadMemory:
    """The distributor's memory of one consumer: grant W and the times (mono s) it changed.

    ``settle_w`` is what the consumer counts for in the surplus until ``changed_at +
    settle_s``: the smaller of its draw before the change and its new grant.
    ``borrowing_since``: since when it has been kept from the reservation (None = it is not).
    """

    granted_w: float = 0.0
    changed_at: float | None = None
    on_at: float | None = None
    off_at: float | None = None
    settle_w: float = 0.0
    borrowing_since: float | None = None


@dataclass(frozen=True, slots=True)
class Allocation:
    """One consumer's allowance: ``power_w`` W (0 = off) and why, in a few words."""

    power_w: float
    reason: str


@dataclass(frozen=True, slots=True)
class Distribution:
    """One decision: allowance per consumer, the figures behind it (W) and the next memory.

    ``surplus_w``: export + counted consumers' draw + battery charge (None when the grid reading
    is missing or stale; ``stale`` then says why). ``assigned_w``: sum of the allowances;
    ``remaining_w``: surplus minus that (may be negative while consumers are held).
    """

    allocations: Mapping[str, Allocation]
    surplus_w: float | None
    reservation_w: float
    assigned_w: float
    remaining_w: float
    memory: Mapping[str, LoadMemory]
    stale: str | None = None
