"""ESS control modes, switchable at run time with a minimum interval.

* ``grid_target`` — see :mod:`venus_ems.control.grid_target`.
* ``inverter_power`` — hold the Multi's conversion at ``inverter_power_w`` (W, + = inverting
  DC→AC, - = charging from AC; the name says the direction).
* ``battery_current`` — hold battery current at ``battery_current_a`` (A, + = charging).
* ``soc_target`` — move SoC to ``target_pct``: charge with ``charge_power_w`` below
  ``target - hysteresis``, discharge with ``discharge_power_w`` above ``target + hysteresis``,
  and keep the battery idle once the target is reached until SoC leaves the hysteresis band.

All modes share the dead-time gate, the battery/Multi limits and the per-phase split of
:mod:`venus_ems.control.actuation`. The requested mode is ``EssSettings.mode``; the active
mode is in the state and follows the request once ``min_mode_interval_s`` has passed since the
last switch (the first decision enters the requested mode at once).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum

from .actuation import Goal, actuate, missing_essentials, safe_decision, used_times
from .commands import Decision, check_finite
from .ess import ActuationState, ActuatorSettings, EssMethod, Gate, View, make_gate, make_view
from .grid_target import GridTargetSettings, grid_goal
from .grid_target import needs as grid_needs
from .inputs import EssInputs
from .reasons import Reason, ReasonCode, fmt_w, missing

__all__ = ["EssMode", "EssSettings", "EssState", "SocPhase", "SocTargetSettings", "decide"]


class EssMode(str, Enum):
    """The active control mode."""

    GRID_TARGET = "grid_target"
    INVERTER_POWER = "inverter_power"
    BATTERY_CURRENT = "battery_current"
    SOC_TARGET = "soc_target"


class SocPhase(str, Enum):
    """Where the SoC-target mode is in its hysteresis cycle."""

    IDLE = "idle"
    CHARGING = "charging"
    DISCHARGING = "discharging"


@dataclass(frozen=True, slots=True)
class SocTargetSettings:
    """SoC target (%) with hysteresis (%) and the powers used to get there (W >= 0)."""

    target_pct: float = 50.0
    hysteresis_pct: float = 2.0
    charge_power_w: float = 1000.0
    discharge_power_w: float = 1000.0

    def __post_init__(self) -> None:
        """Validate (ValueError naming the field)."""
        for name in ("target_pct", "hysteresis_pct", "charge_power_w", "discharge_power_w"):
            check_finite(name, getattr(self, name))
            if getattr(self, name) < 0:
                raise ValueError(f"{name} = {getattr(self, name)}: expected >= 0")
        if self.target_pct > 100:
            raise ValueError(f"target_pct = {self.target_pct}: expected 0..100 %")


@dataclass(frozen=True, slots=True)
class EssSettings:
    """Requested mode, each mode's parameters, and the shared actuator settings.

    ``power_dead_band_w`` is the dead band of the power modes (inverter, battery, SoC).
    """

    mode: EssMode = EssMode.GRID_TARGET
    actuator: ActuatorSettings = field(default_factory=ActuatorSettings)
    grid_target: GridTargetSettings = field(default_factory=GridTargetSettings)
    inverter_power_w: float = 0.0
    battery_current_a: float = 0.0
    soc_target: SocTargetSettings = field(default_factory=SocTargetSettings)
    power_dead_band_w: float = 50.0
    min_mode_interval_s: float = 30.0

    def __post_init__(self) -> None:
        """Validate (ValueError naming the field); a mode given as text is converted."""
        try:
            object.__setattr__(self, "mode", EssMode(self.mode))
        except ValueError:
            choices = ", ".join(m.value for m in EssMode)
            raise ValueError(f"mode = {self.mode!r}: expected one of {choices}") from None
        for name in ("inverter_power_w", "battery_current_a", "power_dead_band_w"):
            check_finite(name, getattr(self, name))
        check_finite("min_mode_interval_s", self.min_mode_interval_s)
        for name in ("power_dead_band_w", "min_mode_interval_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} = {getattr(self, name)}: expected >= 0")


@dataclass(frozen=True, slots=True)
class EssState:
    """Active mode and when it was entered (``None`` before the first decision)."""

    mode: EssMode | None = None
    mode_entered_at: float | None = None
    actuation: ActuationState = field(default_factory=ActuationState)
    soc_phase: SocPhase = SocPhase.IDLE


def _resolve_mode(
    state: EssState, settings: EssSettings, now: float
) -> tuple[EssMode, float, tuple[Reason, ...]]:
    wanted = settings.mode
    if state.mode is None or state.mode_entered_at is None:
        return wanted, now, (Reason(ReasonCode.MODE_CHANGED, f"mode {wanted.value}"),)
    if state.mode is wanted:
        return wanted, state.mode_entered_at, ()
    wait = settings.min_mode_interval_s - (now - state.mode_entered_at)
    if wait <= 0:
        text = f"mode {state.mode.value} -> {wanted.value}"
        return wanted, now, (Reason(ReasonCode.MODE_CHANGED, text),)
    text = f"switching to {wanted.value} in {wait:.0f} s"
    return state.mode, state.mode_entered_at, (Reason(ReasonCode.MODE_PENDING, text, wait),)


def _needs(mode: EssMode, s: ActuatorSettings) -> tuple[str, ...]:
    if mode is EssMode.GRID_TARGET:
        return grid_needs(s)
    base = ("grid",) if s.method is EssMethod.HUB4_OVERRIDE else ("multi_in",)
    if mode is EssMode.INVERTER_POWER:
        return (*base, "multi_in", "multi_out")
    split = ("multi_out",) if s.method is EssMethod.MODE3 and s.phases > 1 else ()
    return (*base, *split, "battery")


def _next_soc_phase(phase: SocPhase, soc_pct: float, s: SocTargetSettings) -> SocPhase:
    if phase is SocPhase.CHARGING:
        return SocPhase.IDLE if soc_pct >= s.target_pct else phase
    if phase is SocPhase.DISCHARGING:
        return SocPhase.IDLE if soc_pct <= s.target_pct else phase
    if soc_pct < s.target_pct - s.hysteresis_pct:
        return SocPhase.CHARGING
    if soc_pct > s.target_pct + s.hysteresis_pct:
        return SocPhase.DISCHARGING
    return SocPhase.IDLE


def _power_goal(
    view: View, gate: Gate, delta_w: float, note: Reason, dead_band_w: float, primary_at: float
) -> Goal:
    """Move ``u`` by ``delta_w`` from the measured operating point (absolute, no integration)."""
    if not gate.open:
        return Goal(None, (note,))
    if abs(delta_w) <= dead_band_w:
        band = Reason(ReasonCode.IN_BAND, f"within {fmt_w(dead_band_w)} of target", delta_w)
        return Goal(None, (note, band))
    assert view.fb_w is not None
    return Goal(view.fb_w + delta_w, (note,), primary_at)


def _mode_goal(
    mode: EssMode,
    view: View,
    settings: EssSettings,
    gate: Gate,
    state: EssState,
    soc_phase: SocPhase,
) -> tuple[Goal, SocPhase]:
    db = settings.power_dead_band_w
    if mode is EssMode.GRID_TARGET:
        return grid_goal(view, settings.grid_target, gate, state.actuation), soc_phase
    if mode is EssMode.INVERTER_POWER:
        multi, conversion = view.multi, view.conversion_w
        assert multi is not None
        assert conversion is not None
        want = settings.inverter_power_w
        note = Reason(ReasonCode.INVERTER_POWER, f"inverter power target {fmt_w(want)}", want)
        return _power_goal(view, gate, -want - conversion, note, db, multi.measured_at), soc_phase
    battery = view.battery
    assert battery is not None
    assert battery.power_w is not None
    if mode is EssMode.BATTERY_CURRENT:
        if battery.voltage_v is None:
            return Goal(None, (missing("battery voltage"),)), soc_phase
        amps = settings.battery_current_a
        note = Reason(ReasonCode.BATTERY_CURRENT, f"battery current target {amps:g} A", amps)
        delta = amps * battery.voltage_v - battery.power_w
        return _power_goal(view, gate, delta, note, db, battery.measured_at), soc_phase
    if battery.soc_pct is None:
        return Goal(None, (missing("SoC"),)), soc_phase
    soc = settings.soc_target
    soc_phase = _next_soc_phase(soc_phase, battery.soc_pct, soc)
    want = {
        SocPhase.CHARGING: soc.charge_power_w,
        SocPhase.DISCHARGING: -soc.discharge_power_w,
        SocPhase.IDLE: 0.0,
    }[soc_phase]
    text = (
        f"SoC {battery.soc_pct:g} % -> target {soc.target_pct:g} % "
        f"± {soc.hysteresis_pct:g} %: {soc_phase.value} ({fmt_w(want)})"
    )
    note = Reason(ReasonCode.SOC_TARGET, text, battery.soc_pct)
    delta = want - battery.power_w
    return _power_goal(view, gate, delta, note, db, battery.measured_at), soc_phase


def _primary_at(mode: EssMode, view: View) -> float | None:
    sample = {
        EssMode.GRID_TARGET: view.grid,
        EssMode.INVERTER_POWER: view.multi,
    }.get(mode, view.battery)
    return None if sample is None else sample.measured_at


def decide(
    inputs: EssInputs, state: EssState, settings: EssSettings, now: float
) -> Decision[EssState]:
    """One ESS decision in the active mode (``now`` in s on the injected clock).

    Raises ValueError on malformed inputs (phase counts that do not match the settings,
    readings from the future); the state passed in is never modified.
    """
    mode, entered, mode_reasons = _resolve_mode(state, settings, now)
    actuation = state.actuation
    soc_phase = state.soc_phase
    if mode is not state.mode:
        actuation = replace(actuation, last_error_w=None, off_band_since=None)
        soc_phase = SocPhase.IDLE
    act = settings.actuator
    view = make_view(inputs, actuation, act, now)
    gone = missing_essentials(view, inputs, _needs(mode, act))
    primary_at = _primary_at(mode, view)
    if gone or primary_at is None:
        decision = safe_decision(view, actuation, gone)
    else:
        gate = make_gate(actuation, act, now, primary_at, used_times(view))
        sub = replace(state, actuation=actuation)
        goal, soc_phase = _mode_goal(mode, view, settings, gate, sub, soc_phase)
        decision = actuate(view, actuation, goal, gate)
    next_state = EssState(mode, entered, decision.next_state, soc_phase)
    return Decision(decision.commands, next_state, (*mode_reasons, *decision.reasons))
