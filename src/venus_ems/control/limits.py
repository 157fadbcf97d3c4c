"""Battery, Multi and grid limits, mapped onto the one number the ESS cores command.

The cores command ``u``: the grid setpoint (hub4 override) or the sum of the mode-3 AC-input
setpoints. Both move the battery the same way: raising ``u`` by Δ raises battery power
(+ = charging) by about Δ once the command has taken effect. Limits are therefore mapped
through the operating point measured at one instant: ``fb`` (the measured value of what ``u``
sets — grid power for the override, Multi AC-in for mode 3) and the battery power at that
instant. Because ``fb`` and battery power are read together, a bound computed from them does not
depend on commands still in flight, so bounds may be enforced at any time.

Conversion losses make the mapping uncertain; bounds that must not be crossed use the
pessimistic side (Δbattery = Δu / η when discharging more, Δu · η of headroom when charging);
a limit already violated is corrected with the nominal Δu = Δbattery and re-checked next time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .inputs import BatterySample
from .reasons import Reason, ReasonCode, at_bound, missing

__all__ = ["BatteryLimits", "Interval", "battery_limits", "battery_window"]

INF = math.inf


@dataclass(frozen=True, slots=True)
class BatteryLimits:
    """Battery power limits now (W >= 0; ``None`` = unknown: do not move further that way)."""

    charge_w: float | None
    discharge_w: float | None
    soc_blocked: bool
    charge_reason: Reason
    discharge_reason: Reason


def battery_limits(
    battery: BatterySample | None, soc_blocked: bool, soc_hysteresis_pct: float
) -> BatteryLimits:
    """Charge ≤ CCL x V (0 if not allowed); discharge ≤ DCL x V (0 if not allowed or at SoC floor).

    The SoC floor (``active_soc_limit_pct``) blocks discharge at or below the floor and releases
    only once SoC is ``soc_hysteresis_pct`` above it; ``soc_blocked`` carries that latch.
    """
    if battery is None:
        gone = missing("battery")
        return BatteryLimits(None, None, soc_blocked, gone, gone)
    b = battery
    charge_w: float | None
    if b.allow_charge is False:
        charge_w = 0.0
        charge_reason = at_bound(ReasonCode.CHARGE_NOT_ALLOWED, "charging not allowed by BMS", 0.0)
    elif b.allow_charge is None or b.ccl_a is None or b.voltage_v is None:
        charge_w, charge_reason = None, missing("BMS charge limit")
    else:
        charge_w = b.ccl_a * b.voltage_v
        charge_reason = at_bound(ReasonCode.CCL, f"capped by CCL {b.ccl_a:g} A", b.ccl_a)

    if b.soc_pct is not None and b.active_soc_limit_pct is not None:
        floor = b.active_soc_limit_pct
        soc_blocked = b.soc_pct < floor + soc_hysteresis_pct if soc_blocked else b.soc_pct <= floor
    discharge_w: float | None
    if b.allow_discharge is False:
        discharge_w = 0.0
        discharge_reason = at_bound(
            ReasonCode.DISCHARGE_NOT_ALLOWED, "discharge not allowed by BMS", 0.0
        )
    elif b.soc_pct is None or b.active_soc_limit_pct is None:
        discharge_w, discharge_reason = None, missing("SoC or SoC floor")
    elif soc_blocked:
        discharge_w = 0.0
        discharge_reason = at_bound(
            ReasonCode.SOC_FLOOR,
            f"SoC {b.soc_pct:g} % at floor {b.active_soc_limit_pct:g} %",
            b.soc_pct,
        )
    elif b.allow_discharge is None or b.dcl_a is None or b.voltage_v is None:
        discharge_w, discharge_reason = None, missing("BMS discharge limit")
    else:
        discharge_w = b.dcl_a * b.voltage_v
        discharge_reason = at_bound(ReasonCode.DCL, f"capped by DCL {b.dcl_a:g} A", b.dcl_a)
    return BatteryLimits(charge_w, discharge_w, soc_blocked, charge_reason, discharge_reason)


@dataclass(frozen=True, slots=True)
class Interval:
    """Allowed range for ``u`` (W) with the reason behind each finite side."""

    lo: float = -INF
    hi: float = INF
    lo_reason: Reason | None = None
    hi_reason: Reason | None = None

    def narrow(self, other: Interval) -> Interval:
        """Intersect with ``other``; where they do not overlap, ``self`` (higher priority) wins."""
        if other.lo > self.hi:
            return Interval(self.hi, self.hi, self.hi_reason, self.hi_reason)
        if other.hi < self.lo:
            return Interval(self.lo, self.lo, self.lo_reason, self.lo_reason)
        lo, lo_reason = (
            (other.lo, other.lo_reason) if other.lo > self.lo else (self.lo, self.lo_reason)
        )
        hi, hi_reason = (
            (other.hi, other.hi_reason) if other.hi < self.hi else (self.hi, self.hi_reason)
        )
        return Interval(lo, hi, lo_reason, hi_reason)

    def clamp(self, u: float) -> tuple[float, Reason | None]:
        """``u`` moved into the range, with the reason of the side that bound it (if any)."""
        if u < self.lo:
            return self.lo, self.lo_reason
        if u > self.hi:
            return self.hi, self.hi_reason
        return u, None

    def contains(self, u: float, slack: float = 0.0) -> bool:
        """True if ``u`` is within the range widened by ``slack`` W."""
        return self.lo - slack <= u <= self.hi + slack


def battery_window(
    fb_w: float | None,
    battery_power_w: float | None,
    limits: BatteryLimits,
    efficiency: float,
    frozen_w: float | None,
) -> Interval | None:
    """Range of ``u`` that keeps battery power within ``limits``, mapped through ``fb_w``.

    A side whose data is unknown is frozen: no movement that way beyond ``frozen_w`` (the
    command in force) or ``fb_w``, whichever is more cautious. Returns ``None`` when no bound
    can be placed at all.
    """
    no_power = missing("battery power or Multi")
    hi_reason = limits.charge_reason if limits.charge_w is None else no_power
    lo_reason = limits.discharge_reason if limits.discharge_w is None else no_power
    # An unknown side is frozen at the command in force or the measured point, whichever
    # moves the battery less that way.
    known = [v for v in (frozen_w, fb_w) if v is not None]
    lo = max(known) if known else None
    hi = min(known) if known else None
    lo_known = hi_known = False
    if fb_w is not None and battery_power_w is not None:
        if limits.charge_w is not None:
            room = limits.charge_w - battery_power_w
            hi = fb_w + (efficiency * room if room >= 0 else room)
            hi_reason, hi_known = limits.charge_reason, True
        if limits.discharge_w is not None:
            room = battery_power_w + limits.discharge_w
            lo = fb_w - (efficiency * room if room >= 0 else room)
            lo_reason, lo_known = limits.discharge_reason, True
    if lo is None or hi is None:
        return None
    if lo > hi:
        # The sides cross: a known limit beats a frozen (unknown) side; between two known
        # limits, the one being violated is corrected.
        too_much_discharge = (
            lo_known
            and battery_power_w is not None
            and limits.discharge_w is not None
            and battery_power_w < -limits.discharge_w
        )
        if lo_known and (not hi_known or too_much_discharge):
            hi, hi_reason = lo, lo_reason
        elif hi_known:
            lo, lo_reason = hi, hi_reason
        else:  # nothing known: stay where the command in force is
            lo = hi = frozen_w if frozen_w is not None else lo
    return Interval(lo, hi, lo_reason, hi_reason)
