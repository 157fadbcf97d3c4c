"""Battery rules for battery-fed micro-inverters: when they may discharge, and how much.

* **Start/stop with hysteresis**: discharging stops at ``stop_soc_pct`` or ``stop_voltage_v``
  (or when the BMS forbids discharge or its DCL is 0) and starts again only once every
  configured start threshold (``start_soc_pct``, ``start_voltage_v``) is reached.
* **Seasonal stop SoC** (seed B's ``SocFloatingMax``): a memory of the daily SoC peaks. At each
  peak (SoC rises, then falls) the floating maximum jumps to 110 if the peak was 99 % or more,
  rises by half the gap if the peak was above it, and falls by 1 % if below (not below 74 %,
  seed B's lowest). With ``seasonal``
  the stop SoC is raised by ``99 - floating max``: a battery that no longer gets full (winter)
  keeps a larger reserve, one that gets full every day (summer) is used deeper.
* **Full battery**: with ``full_soc_pct`` set, once the battery was full recently (floating
  max >= 99) and its SoC is at or above ``full_soc_pct``, the inverters may run at their
  maximum (within the total cap) so that PV is not wasted; it ends ``full_hysteresis_pct``
  lower.
* **DCL**: the inverters' AC budget is what keeps the battery's discharge within the BMS limit:
  ``(DCL x V + battery power + their own DC draw) x efficiency`` (battery power + = charging).

Pure: no clock, no I/O. ``now`` is only compared with the sample's ``measured_at``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from .commands import check_finite
from .inputs import BatterySample
from .reasons import Reason, ReasonCode, at_bound, missing, stale

__all__ = ["BatteryRules", "BatteryState", "BatteryVerdict", "FloatingMax", "battery_gate"]

FULL_PEAK_PCT = 99
FLOATING_FULL = 110.0
FLOATING_LOW = 74.0
"""The floating max falls by 1 % per lower peak, but not below this (seed B's MINMAXSOC)."""


@dataclass(frozen=True, slots=True)
class BatteryRules:
    """Thresholds (% SoC, V; None = not used) and the DC->AC efficiency of the inverters."""

    stop_soc_pct: float | None = 20.0
    start_soc_pct: float | None = 25.0
    stop_voltage_v: float | None = None
    start_voltage_v: float | None = None
    seasonal: bool = False
    full_soc_pct: float | None = None
    full_hysteresis_pct: float = 2.0
    efficiency: float = 0.95
    stale_after_s: float = 30.0

    def __post_init__(self) -> None:
        """Start above stop, values finite and in range (ValueError naming the field)."""
        for name in (
            "stop_soc_pct",
            "start_soc_pct",
            "stop_voltage_v",
            "start_voltage_v",
            "full_soc_pct",
        ):
            value = getattr(self, name)
            if value is not None:
                check_finite(name, value)
        if (self.stop_soc_pct is None) != (self.start_soc_pct is None):
            raise ValueError("stop_soc_pct and start_soc_pct go together")
        if (self.stop_voltage_v is None) != (self.start_voltage_v is None):
            raise ValueError("stop_voltage_v and start_voltage_v go together")
        soc = (self.stop_soc_pct, self.start_soc_pct)
        if soc[0] is not None and soc[1] is not None and not 0 <= soc[0] < soc[1] <= 100:
            raise ValueError("expected 0 <= stop_soc_pct < start_soc_pct <= 100")
        volt = (self.stop_voltage_v, self.start_voltage_v)
        if volt[0] is not None and volt[1] is not None and not 0 < volt[0] < volt[1]:
            raise ValueError("expected 0 < stop_voltage_v < start_voltage_v")
        if self.seasonal and self.stop_soc_pct is None:
            raise ValueError("seasonal needs stop_soc_pct and start_soc_pct")
        if self.full_soc_pct is not None and not 50 <= self.full_soc_pct <= 100:
            raise ValueError("full_soc_pct must be in 50..100")
        check_finite("efficiency", self.efficiency)
        if not 0 < self.efficiency <= 1:
            raise ValueError("efficiency must be in (0, 1]")
        check_finite("stale_after_s", self.stale_after_s)


@dataclass(frozen=True, slots=True)
class FloatingMax:
    """Seed B's memory of daily SoC peaks (%, whole percent steps)."""

    value: float = 74.0
    last_soc: int | None = None
    rising: bool = False

    def update(self, soc_pct: float) -> FloatingMax:
        """Follow one SoC reading; a peak (rise, then fall) moves ``value`` (module docstring)."""
        soc = int(soc_pct)
        last = self.last_soc
        if last is None or soc == last:
            return replace(self, last_soc=soc)
        rising = soc > last
        value = self.value
        if self.rising and not rising:  # ``last`` was a peak
            if last >= FULL_PEAK_PCT:
                value = FLOATING_FULL
            elif last > value:
                value += math.floor((last - value + 1) / 2)
            elif last < value and value > FLOATING_LOW:
                value -= 1.0
        return FloatingMax(value, soc, rising)


@dataclass(frozen=True, slots=True)
class BatteryState:
    """Whether discharge is allowed, whether the battery counts as full, the floating max."""

    discharging: bool | None = None
    full: bool = False
    floating: FloatingMax = field(default_factory=FloatingMax)


@dataclass(frozen=True, slots=True)
class BatteryVerdict:
    """``allowed`` to discharge; ``full``: run at maximum; AC ``budget_w`` (None = no limit).

    ``usable`` is False when the battery readings are missing or stale (the caller goes safe).
    """

    usable: bool
    allowed: bool
    full: bool
    budget_w: float | None
    reasons: tuple[Reason, ...]
    next_state: BatteryState
    stop_soc_pct: float | None = None


def _stop_soc(rules: BatteryRules, floating: FloatingMax) -> float | None:
    """The stop SoC in force (raised by the seasonal rule, kept below the start SoC)."""
    stop = rules.stop_soc_pct
    if stop is None or not rules.seasonal:
        return stop
    start = rules.start_soc_pct if rules.start_soc_pct is not None else 100.0
    raised = stop + max(0.0, FULL_PEAK_PCT - min(floating.value, FULL_PEAK_PCT))
    return min(raised, start - 1.0)


def _allowed(
    rules: BatteryRules, b: BatterySample, stop_soc: float | None, was: bool | None
) -> tuple[bool, Reason | None]:
    """Start/stop with hysteresis; the reason when discharge is not allowed."""
    if b.allow_discharge is False:
        return False, Reason(ReasonCode.BATTERY_STOP, "BMS does not allow discharge")
    if b.dcl_a is not None and b.dcl_a <= 0:
        return False, at_bound(ReasonCode.DCL, "BMS discharge limit is 0 A", 0.0)
    soc, volt = b.soc_pct, b.voltage_v
    stop_reasons = []
    if stop_soc is not None and soc is not None and soc <= stop_soc:
        stop_reasons.append(f"SoC {soc:.0f} % <= stop {stop_soc:.0f} %")
    if rules.stop_voltage_v is not None and volt is not None and volt <= rules.stop_voltage_v:
        stop_reasons.append(f"battery {volt:.2f} V <= stop {rules.stop_voltage_v:.2f} V")
    if stop_reasons:
        return False, Reason(ReasonCode.BATTERY_STOP, "; ".join(stop_reasons), soc)
    if was is False:  # stopped: every configured start threshold must be reached
        waiting = []
        start = rules.start_soc_pct
        if start is not None and (soc is None or soc < start):
            waiting.append(f"SoC below start {start:.0f} %")
        if rules.start_voltage_v is not None and (volt is None or volt < rules.start_voltage_v):
            waiting.append(f"battery below start {rules.start_voltage_v:.2f} V")
        if waiting:
            return False, Reason(ReasonCode.BATTERY_STOP, "stopped: " + "; ".join(waiting), soc)
    return True, None


def _budget(b: BatterySample, micro_dc_w: float | None, efficiency: float) -> float | None:
    """AC W the inverters may take from the battery without exceeding its DCL."""
    if b.dcl_a is None or b.voltage_v is None:
        return None
    room_dc = b.dcl_a * b.voltage_v
    if b.power_w is not None and micro_dc_w is not None:
        room_dc += b.power_w + micro_dc_w  # what the battery gives others counts against DCL
    return max(room_dc, 0.0) * efficiency


def battery_gate(
    sample: BatterySample | None,
    micro_dc_w: float | None,
    rules: BatteryRules,
    state: BatteryState,
    now: float,
) -> BatteryVerdict:
    """Apply the rules to one battery sample (``micro_dc_w``: the inverters' DC draw now)."""
    if sample is None:
        return BatteryVerdict(False, False, False, None, (missing("battery"),), state)
    age = now - sample.measured_at
    if age > rules.stale_after_s:
        return BatteryVerdict(False, False, False, None, (stale("battery", age),), state)
    floating = state.floating
    if sample.soc_pct is not None:
        floating = floating.update(sample.soc_pct)
    stop_soc = _stop_soc(rules, floating)
    allowed, why = _allowed(rules, sample, stop_soc, state.discharging)
    reasons = [why] if why is not None else []
    full = False
    if allowed and rules.full_soc_pct is not None and sample.soc_pct is not None:
        recently_full = floating.value >= FULL_PEAK_PCT
        floor = rules.full_soc_pct - (rules.full_hysteresis_pct if state.full else 0.0)
        full = recently_full and sample.soc_pct >= floor
        if full:
            reasons.append(
                Reason(
                    ReasonCode.BATTERY_FULL,
                    f"battery full (SoC {sample.soc_pct:.0f} %): inverters at maximum",
                    sample.soc_pct,
                )
            )
    budget = _budget(sample, micro_dc_w, rules.efficiency) if allowed else 0.0
    nxt = BatteryState(discharging=allowed, full=full, floating=floating)
    return BatteryVerdict(True, allowed, full, budget, tuple(reasons), nxt, stop_soc)
