"""Stepped water heater: which power step to run (W), from surplus, mode, tank temperature.

Replaces the control law of dbus_water_heater (seed C), which took the surplus from the grid
meter *after* its own load (a 1 Hz limit cycle), switched every second and had no hysteresis.
Here, every call of :func:`decide`:

1. **Hard limits first, immediately** (any mode): temperature unknown (sensor error, stale) or at
   or above ``max_c`` -> 0 W; mode ``off`` -> 0 W; the device's FORCE ON switch -> 0 W commanded
   (the device heats on its own; we do not fight it, only report it).
2. **Thermostat** with hysteresis: heating stops at ``target_c`` and resumes below
   ``target_c - hysteresis_k``.
3. **On** (or a boost that has not ended yet): the ``on_w`` step until the thermostat is
   satisfied, whatever the surplus.
4. **Daily minimum (legionella guard)**: when the water did not reach ``guard_c`` today, inside
   the daily window heat at ``on_w`` from whatever source until it does.
5. **Auto** with a grant from the surplus distributor: the highest step <= the grant.
   **Auto** standalone: surplus = export + our own present draw (what would be exported with
   the heater off) - what the battery discharges (an ESS holding the grid at 0 W would feed
   the heater from the battery), so the heater does not see its own load as a missing surplus
   and does not empty the battery. A higher
   step needs ``surplus - margin_w`` to cover it continuously for ``up_delay_s``, and no
   switch for ``min_switch_interval_s``; the present step is kept while the surplus covers it
   (a ``margin_w`` band of hysteresis) and left after ``down_delay_s`` of import (short:
   drawing from the grid or battery costs more than a switch). A stale or missing grid reading
   -> 0 W. For ``settle_s`` after a switch the meter still shows the old step: no decision.

Powers in W (grid + = import, draw + = consumed), temperatures in °C, times in s (``now``
monotonic; ``day`` and ``time_of_day_s`` local, for the daily window). Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Literal

__all__ = [
    "HeaterInputs",
    "HeaterMode",
    "HeaterSettings",
    "HeaterState",
    "HeaterStep",
    "decide",
    "in_window",
    "step_at_most",
]

HeaterMode = Literal["off", "auto", "on"]
DAY_S = 86400.0


@dataclass(frozen=True, slots=True)
class HeaterSettings:
    """Steps (W, ascending from 0), margin (W), delays (s), temperatures (°C), daily window (s).

    ``guard_c`` None disables the daily minimum; its window is ``guard_start_s`` ..
    ``guard_end_s`` seconds after local midnight (may wrap past midnight). ValueError if
    inconsistent.
    """

    levels_w: tuple[float, ...] = tuple(500.0 * i for i in range(8))
    margin_w: float = 100.0
    up_delay_s: float = 30.0
    down_delay_s: float = 10.0
    min_switch_interval_s: float = 60.0
    settle_s: float = 3.0
    grid_stale_s: float = 5.0
    target_c: float = 60.0
    hysteresis_k: float = 4.0
    max_c: float = 75.0
    on_w: float | None = None
    guard_c: float | None = None
    guard_start_s: float = 17 * 3600.0
    guard_end_s: float = 20 * 3600.0

    def __post_init__(self) -> None:
        """Check the steps, times and temperatures (ValueError)."""
        lv = self.levels_w
        if not lv or lv[0] != 0.0 or any(b <= a for a, b in pairwise(lv)):
            raise ValueError(f"levels_w must start at 0 W and rise: {lv}")
        numbers = (self.margin_w, self.up_delay_s, self.down_delay_s, self.min_switch_interval_s)
        if not all(math.isfinite(x) and x >= 0 for x in (*lv, *numbers)):
            raise ValueError("steps, margin and delays must be finite and >= 0")
        if not self.settle_s >= 0 or not self.grid_stale_s > 0:
            raise ValueError("settle_s must be >= 0 and grid_stale_s > 0")
        if not self.hysteresis_k >= 0:
            raise ValueError("hysteresis_k must be >= 0")
        if not self.target_c <= self.max_c:
            raise ValueError(f"target_c ({self.target_c}) must not exceed max_c ({self.max_c})")
        if self.guard_c is not None and not self.guard_c <= self.max_c:
            raise ValueError(f"guard_c ({self.guard_c}) must not exceed max_c ({self.max_c})")
        if self.on_w is not None and self.on_w not in lv:
            raise ValueError(f"on_w ({self.on_w}) must be one of the steps {lv}")
        if not (0 <= self.guard_start_s < DAY_S and 0 <= self.guard_end_s < DAY_S):
            raise ValueError("the daily window must lie within 0..86400 s")

    @property
    def full_w(self) -> float:
        """The step run in mode On, a boost and the daily minimum, W."""
        return self.levels_w[-1] if self.on_w is None else self.on_w


@dataclass(frozen=True, slots=True)
class HeaterInputs:
    """One moment: mode, grid (W, + import) with when it was measured, draw, tank, grant.

    ``battery_w`` is the battery's power (+ charging, None unknown: no discharge assumed);
    ``grant_w`` is the distributor's allowance (None: standalone); ``forced`` the device's
    FORCE ON switch; ``boost`` a boost that has not ended yet; ``day`` an ordinal of the local
    date and ``time_of_day_s`` seconds since local midnight.
    """

    mode: HeaterMode
    temperature_c: float | None
    grid_w: float | None = None
    grid_at: float | None = None
    draw_w: float | None = None
    battery_w: float | None = None
    grant_w: float | None = None
    forced: bool = False
    boost: bool = False
    day: int = 0
    time_of_day_s: float = 0.0


@dataclass(frozen=True, slots=True)
class HeaterState:
    """What the core remembers: step (W), last switch, pending up/down timers, thermostat, day."""

    level_w: float = 0.0
    switched_at: float | None = None
    up_since: float | None = None
    up_to_w: float = 0.0
    down_since: float | None = None
    satisfied: bool = False
    guard_met_day: int | None = None
    switches: int = 0


@dataclass(frozen=True, slots=True)
class HeaterStep:
    """The decision: the step to run (W), why, the source it heats from, the next state."""

    level_w: float
    reason: str
    source: Literal["off", "surplus", "grant", "grid"]
    next_state: HeaterState


def step_at_most(levels_w: tuple[float, ...], power_w: float) -> float:
    """The highest step <= ``power_w`` (0 W when none, or when ``power_w`` is not finite)."""
    if not math.isfinite(power_w):
        return 0.0
    best = 0.0
    for level in levels_w:
        if level <= power_w:
            best = level
    return best


def in_window(t: float, start: float, end: float) -> bool:
    """Whether ``t`` (s after midnight) lies in ``[start, end)``, which may wrap past midnight."""
    t %= DAY_S
    if start <= end:
        return start <= t < end
    return t >= start or t < end


def _to(state: HeaterState, level: float, now: float) -> HeaterState:
    """``state`` at ``level``; a change is a switch (timers reset)."""
    if level == state.level_w:
        return replace(state, up_since=None, down_since=None, up_to_w=0.0)
    return replace(
        state,
        level_w=level,
        switched_at=now,
        up_since=None,
        up_to_w=0.0,
        down_since=None,
        switches=state.switches + 1,
    )


def _thermostat(state: HeaterState, t: float, target: float, hyst: float) -> HeaterState:
    if t >= target:
        return replace(state, satisfied=True) if not state.satisfied else state
    if t <= target - hyst and state.satisfied:
        return replace(state, satisfied=False)
    return state


def decide(inp: HeaterInputs, state: HeaterState, s: HeaterSettings, now: float) -> HeaterStep:
    """The step to run now (see the module docstring); never raises for any inputs."""
    t = inp.temperature_c
    if t is not None and not math.isfinite(t):
        t = None
    if t is not None and s.guard_c is not None and t >= s.guard_c:
        state = replace(state, guard_met_day=inp.day)

    def stop(reason: str) -> HeaterStep:
        return HeaterStep(0.0, reason, "off", _to(state, 0.0, now))

    if inp.mode == "off" and not inp.boost:
        return stop("mode off")
    if t is None:
        return stop("tank temperature unknown: off")
    if t >= s.max_c:
        return stop(f"tank {t:.1f} °C at or above the hard maximum {s.max_c:g} °C")
    if inp.forced:
        return stop("FORCE ON switch at the device: it heats by itself")
    state = _thermostat(state, t, s.target_c, s.hysteresis_k)
    if inp.mode == "on" or inp.boost:
        if state.satisfied:
            return stop(f"target {s.target_c:g} °C reached ({t:.1f} °C)")
        what = "boost" if inp.boost else "mode on"
        return HeaterStep(
            s.full_w, f"{what}: heating to {s.target_c:g} °C", "grid", _to(state, s.full_w, now)
        )
    guard = _guard(inp, state, s, t)
    if guard is not None:
        return HeaterStep(s.full_w, guard, "grid", _to(state, s.full_w, now))
    if state.satisfied:
        return stop(f"target {s.target_c:g} °C reached ({t:.1f} °C)")
    if inp.grant_w is not None:
        level = step_at_most(s.levels_w, inp.grant_w)
        why = f"granted {inp.grant_w:.0f} W by the surplus distributor"
        return HeaterStep(level, why, "grant", _to(state, level, now))
    return _standalone(inp, state, s, now)


def _guard(inp: HeaterInputs, state: HeaterState, s: HeaterSettings, t: float) -> str | None:
    """The daily minimum's reason to heat now, or None."""
    if s.guard_c is None or state.guard_met_day == inp.day:
        return None
    if not in_window(inp.time_of_day_s, s.guard_start_s, s.guard_end_s):
        return None
    return f"daily minimum: {t:.1f} °C, {s.guard_c:g} °C not reached today"


def _standalone(inp: HeaterInputs, state: HeaterState, s: HeaterSettings, now: float) -> HeaterStep:
    """Auto without a distributor: own surplus, margin, delays, minimum switch interval."""
    level = state.level_w
    if inp.grid_w is None or inp.grid_at is None or not math.isfinite(inp.grid_w):
        return HeaterStep(0.0, "grid power unknown: off", "off", _to(state, 0.0, now))
    age = now - inp.grid_at
    if age > s.grid_stale_s:
        why = f"grid reading {age:.0f} s old (stale): off"
        return HeaterStep(0.0, why, "off", _to(state, 0.0, now))
    draw = inp.draw_w if inp.draw_w is not None and math.isfinite(inp.draw_w) else level
    battery = inp.battery_w if inp.battery_w is not None and math.isfinite(inp.battery_w) else 0.0
    surplus = draw - inp.grid_w - max(-battery, 0.0)
    keep = HeaterStep(level, f"surplus {surplus:.0f} W", "surplus" if level else "off", state)
    if state.switched_at is not None and now - state.switched_at < s.settle_s:
        return keep
    up = step_at_most(s.levels_w, surplus - s.margin_w)
    if up > level:
        since = state.up_since if state.up_since is not None else now
        up_to = min(up, state.up_to_w) if state.up_since is not None else up
        state = replace(state, up_since=since, up_to_w=up_to, down_since=None)
        last = state.switched_at
        spaced = last is None or now - last >= s.min_switch_interval_s
        if now - since >= s.up_delay_s and spaced:
            why = f"surplus {surplus:.0f} W covers {up_to:.0f} W for {now - since:.0f} s"
            return HeaterStep(up_to, why, "surplus", _to(state, up_to, now))
        return replace(keep, next_state=state)
    if surplus >= level or level == 0.0:
        return replace(keep, next_state=replace(state, up_since=None, down_since=None))
    since = state.down_since if state.down_since is not None else now
    state = replace(state, down_since=since, up_since=None)
    if now - since >= s.down_delay_s:
        down = step_at_most(s.levels_w, surplus)
        why = f"surplus {surplus:.0f} W below the {level:.0f} W step for {now - since:.0f} s"
        return HeaterStep(down, why, "surplus" if down else "off", _to(state, down, now))
    return replace(keep, next_state=state)
