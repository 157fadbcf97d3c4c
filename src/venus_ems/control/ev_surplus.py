"""Solar-surplus EV charging: start/stop, current and 1/3-phase switching with hysteresis.

Pure core: ``decide(inputs, state, settings, now) -> EvDecision``. The available power
``available_w`` (W the car may draw now: the distributor's grant, or the surplus measured at the
grid plus the car's own draw) becomes a per-phase current on 1 or 3 phases:

* amps per phase = available W / sum of the real voltages of the phases the car loads, rounded
  down to whole A (never above the surplus), at least ``min_current_a``, at most ``max_current_a``;
  the phases the car loads come from its measured per-phase currents (a 1-phase car on a
  3-phase setting loads one phase), not from L1 x 3;
* start when the power for ``min_current_a`` on one phase (x ``start_margin``) has been there
  for ``start_delay_s``; stop when it has been missing for ``stop_delay_s``; starts and stops
  are at least ``min_on_off_s`` apart;
* 1 -> 3 phases when the power for ``min_current_a`` on three phases (x ``start_margin``) has
  been there for ``up_delay_s``; 3 -> 1 when it has been missing for ``down_delay_s``; phase
  switches are at least ``min_phase_switch_s`` apart. While a switch or stop waits for its
  cooldown the car stays at its minimum current.

Times in s (monotonic), powers in W (+ = drawn by the car), currents in A per phase.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

__all__ = [
    "ChargerCommand",
    "EvDecision",
    "EvState",
    "SurplusInputs",
    "SurplusSettings",
    "decide",
    "min_power_w",
]

Force = Literal["on", "off", "neutral"]


@dataclass(frozen=True)
class ChargerCommand:
    """What the charger should do: force on/off/neutral, A per phase, 1 or 3 phases (None: keep)."""

    force: Force
    amps: int
    phases: int | None = None

    def __str__(self) -> str:
        """``on 8 A x 3`` (for status and logs)."""
        phases = "" if self.phases is None else f" x {self.phases}"
        return f"{self.force} {self.amps} A{phases}"


@dataclass(frozen=True)
class SurplusSettings:
    """Limits and timers of surplus charging (A, s, ratio); ValueError when inconsistent."""

    min_current_a: float = 6.0
    max_current_a: float = 16.0
    can_switch_phases: bool = True
    max_phases: int = 3
    start_margin: float = 1.1
    start_delay_s: float = 60.0
    stop_delay_s: float = 120.0
    up_delay_s: float = 120.0
    down_delay_s: float = 120.0
    min_on_off_s: float = 300.0
    min_phase_switch_s: float = 300.0
    nominal_v: float = 230.0

    def __post_init__(self) -> None:
        """Check ranges (ValueError)."""
        if not 0 < self.min_current_a <= self.max_current_a <= 80:
            raise ValueError("need 0 < min_current_a <= max_current_a <= 80 A")
        if self.max_phases not in (1, 3):
            raise ValueError("max_phases must be 1 or 3")
        if not 1.0 <= self.start_margin <= 2.0:
            raise ValueError("start_margin must be in 1..2")
        times = (
            self.start_delay_s,
            self.stop_delay_s,
            self.up_delay_s,
            self.down_delay_s,
            self.min_on_off_s,
            self.min_phase_switch_s,
        )
        if not all(math.isfinite(t) and t >= 0 for t in times):
            raise ValueError("delays and cooldowns must be finite and >= 0 s")
        if not 100 <= self.nominal_v <= 300:
            raise ValueError("nominal_v must be in 100..300 V")


@dataclass(frozen=True)
class SurplusInputs:
    """The available power W (None: unknown) and the charger's real per-phase V and A."""

    available_w: float | None
    voltages_v: tuple[float | None, float | None, float | None] = (None, None, None)
    currents_a: tuple[float | None, float | None, float | None] = (None, None, None)
    phases_selected: int | None = None
    charging: bool = False
    car_phases: int | None = None


@dataclass(frozen=True)
class EvState:
    """Timers of the core: on/off, phases, since when a condition holds, last switches (s)."""

    on: bool = False
    phases: int = 1
    last_on_off_at: float | None = None
    last_phase_switch_at: float | None = None
    enough_since: float | None = None
    short_since: float | None = None
    up_since: float | None = None
    down_since: float | None = None
    phase_switches: int = 0
    starts: int = 0


@dataclass(frozen=True)
class EvDecision:
    """The command, the next state and why (one line per reason)."""

    command: ChargerCommand
    next_state: EvState
    reasons: tuple[str, ...]


def _volts(inputs: SurplusInputs, n: int, nominal: float) -> float:
    """Sum of the real voltages of the first ``n`` phases (nominal where unknown), V."""
    total = 0.0
    for v in inputs.voltages_v[:n]:
        total += v if v is not None and math.isfinite(v) and 100.0 <= v <= 300.0 else nominal
    return total


def car_phases(inputs: SurplusInputs, selected: int) -> int:
    """Phases the car loads on a ``selected`` setting: from its measured currents when charging.

    Measured currents count only while the charger is on that setting (right after a switch
    they still show the old one); ``car_phases`` is what the car was seen to load before.
    """
    if inputs.car_phases in (1, 2, 3):
        return min(selected, inputs.car_phases)
    if inputs.charging and inputs.phases_selected == selected:
        loaded = sum(1 for a in inputs.currents_a if a is not None and a >= 1.0)
        if loaded:
            return min(selected, loaded)
    return selected


def min_power_w(settings: SurplusSettings, inputs: SurplusInputs, phases: int) -> float:
    """Power W the car draws at the minimum current on ``phases`` (what it really loads)."""
    n = car_phases(inputs, phases)
    return settings.min_current_a * _volts(inputs, n, settings.nominal_v)


def _held(since: float | None, cond: bool, now: float) -> float | None:
    if not cond:
        return None
    return now if since is None else since


def _amps(settings: SurplusSettings, inputs: SurplusInputs, phases: int, power_w: float) -> int:
    n = car_phases(inputs, phases)
    amps = math.floor(power_w / _volts(inputs, n, settings.nominal_v) + 1e-9)
    low = math.ceil(settings.min_current_a - 1e-9)
    return int(min(max(amps, low), math.floor(settings.max_current_a + 1e-9)))


def _cool(last: float | None, cooldown: float, now: float) -> bool:
    return last is None or now - last >= cooldown


def decide(
    inputs: SurplusInputs, state: EvState, settings: SurplusSettings, now: float
) -> EvDecision:
    """One decision; unknown available power stops the car (after nothing: at once)."""
    s = settings
    min_on = math.ceil(s.min_current_a - 1e-9)
    if inputs.available_w is None or not math.isfinite(inputs.available_w):
        nxt = replace(
            state,
            on=False,
            enough_since=None,
            short_since=None,
            up_since=None,
            down_since=None,
            last_on_off_at=now if state.on else state.last_on_off_at,
        )
        return EvDecision(ChargerCommand("off", min_on, None), nxt, ("surplus unknown: paused",))
    avail = max(inputs.available_w, 0.0)
    one = min_power_w(s, inputs, 1)
    three = min_power_w(s, inputs, 3)
    enough = _held(state.enough_since, avail >= one * s.start_margin, now)
    short = _held(state.short_since, avail < one, now)
    top = 3 if s.can_switch_phases and s.max_phases == 3 else s.max_phases
    fixed = not s.can_switch_phases
    phases = state.phases if not fixed else top
    up = _held(state.up_since, avail >= three * s.start_margin, now) if phases == 1 else None
    down = _held(state.down_since, avail < three, now) if phases == 3 else None
    on, reasons = state.on, []
    last_on_off, last_switch = state.last_on_off_at, state.last_phase_switch_at
    switches, starts = state.phase_switches, state.starts
    if not on:
        start_w = (three if phases == 3 else one) * s.start_margin
        waited = enough is not None and now - enough >= s.start_delay_s
        if avail >= start_w and waited and _cool(last_on_off, s.min_on_off_s, now):
            on, last_on_off, starts = True, now, starts + 1
            reasons.append(f"start: {avail:.0f} W surplus")
        else:
            reasons.append(f"waiting for sun: {avail:.0f} W < {start_w:.0f} W")
    elif short is not None and now - short >= s.stop_delay_s:
        if _cool(last_on_off, s.min_on_off_s, now):
            on, last_on_off = False, now
            reasons.append(f"stop: {avail:.0f} W < {one:.0f} W for {s.stop_delay_s:g} s")
        else:
            reasons.append("too little surplus: at minimum current until the stop cooldown")
    if on and not fixed:
        if phases == 1 and up is not None and now - up >= s.up_delay_s and top == 3:
            if _cool(last_switch, s.min_phase_switch_s, now):
                phases, last_switch, switches, up = 3, now, switches + 1, None
                reasons.append(f"to 3 phases: {avail:.0f} W >= {three * s.start_margin:.0f} W")
        elif phases == 3 and down is not None and now - down >= s.down_delay_s:
            if _cool(last_switch, s.min_phase_switch_s, now):
                phases, last_switch, switches, down = 1, now, switches + 1, None
                reasons.append(f"to 1 phase: {avail:.0f} W < {three:.0f} W")
            else:
                reasons.append("3 phases at minimum current until the phase cooldown")
    nxt = EvState(
        on=on,
        phases=phases,
        last_on_off_at=last_on_off,
        last_phase_switch_at=last_switch,
        enough_since=enough,
        short_since=short,
        up_since=up if phases == 1 else None,
        down_since=down if phases == 3 else None,
        phase_switches=switches,
        starts=starts,
    )
    if not on:
        return EvDecision(ChargerCommand("off", min_on, phases), nxt, tuple(reasons))
    amps = _amps(s, inputs, phases, avail)
    reasons.append(f"{amps} A on {phases} phase{'s' if phases > 1 else ''}")
    return EvDecision(ChargerCommand("on", amps, phases), nxt, tuple(reasons))
