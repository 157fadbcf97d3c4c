"""Shared pieces of the ESS cores: actuator settings, actuation state and the per-decision view.

The ESS cores command one quantity ``u`` (W, + = import): the hub4 grid setpoint
(``/Overrides/Setpoint``, ESS mode 1/2 — hub4control closes the fast loop) or the mode-3
AC-input setpoints per phase (we close the loop). ``fb`` is the measured value of what ``u``
sets: grid power for the override, Multi AC-in for mode 3.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import TypeVar

from .commands import check_finite
from .inputs import BatterySample, EssInputs, GridSample, MultiSample
from .limits import BatteryLimits, Interval, battery_limits, battery_window
from .reasons import Reason, ReasonCode, at_bound, dead_time, stale

__all__ = [
    "ActuationState",
    "ActuatorSettings",
    "EssMethod",
    "Gate",
    "View",
    "make_gate",
    "make_view",
]


class EssMethod(str, Enum):
    """How commands reach the Multi."""

    HUB4_OVERRIDE = "hub4_override"
    MODE3 = "mode3"


@dataclass(frozen=True, slots=True)
class ActuatorSettings:
    """Facts about the Multi and the loop timing (W per phase, s, fraction).

    ``dead_time_s`` + ``meter_interval_s`` is when a command is expected to show in readings;
    ``tracking_tolerance_w`` is how far the measured actuator may sit from the command before
    the core re-bases on the measurement (anti-windup); ``safe_setpoint_w`` is commanded when
    essential readings are missing or stale (``None`` = hold the command in force), unless
    ``release_when_safe``: then the output is given back instead (``ReleaseSetpoint``).
    The Multi's low-power error (1 sigma, per phase; 0 = not modelled, the core's default) is
    ``low_power_error_w`` at 0 W conversion,
    falling as exp(-|W| / ``low_power_scale_w``) (MultiPlus: 10 W -> ±100 W, 100 W -> ±50 %);
    with the grid meter's own noise (``meter_noise_w`` per phase, 1 sigma) the grid dead band is
    at least ``noise_sigmas`` times that error, the aim keeps ``noise_aim_sigmas`` errors from a
    limit, and an error that the noise could explain is acted on only after ``noise_confirm_s``
    on one side.
    """

    method: EssMethod = EssMethod.HUB4_OVERRIDE
    phases: int = 1
    inverter_max_w: float = 4000.0
    charger_max_w: float = 4000.0
    efficiency: float = 0.92
    dead_time_s: float = 2.0
    meter_interval_s: float = 1.0
    stale_after_s: float = 10.0
    tracking_tolerance_w: float = 100.0
    min_change_w: float = 10.0
    safe_setpoint_w: float | None = None
    release_when_safe: bool = False
    soc_hysteresis_pct: float = 2.0
    fast_export: bool = True
    per_phase_balancing: bool = True
    feed_forward_w: float = 50.0
    low_power_error_w: float = 0.0
    low_power_scale_w: float = 150.0
    noise_sigmas: float = 3.0
    noise_aim_sigmas: float = 0.5
    noise_confirm_s: float = 3.0
    meter_noise_w: float = 0.0

    def __post_init__(self) -> None:
        """Validate every field (ValueError naming it); a method given as text is converted."""
        try:
            object.__setattr__(self, "method", EssMethod(self.method))
        except ValueError:
            choices = ", ".join(m.value for m in EssMethod)
            raise ValueError(f"method = {self.method!r}: expected one of {choices}") from None
        if isinstance(self.phases, bool) or self.phases not in (1, 2, 3):
            raise ValueError(f"phases = {self.phases!r}: expected 1, 2 or 3")
        positive = ("inverter_max_w", "charger_max_w", "stale_after_s", "low_power_scale_w")
        non_negative = (
            "dead_time_s",
            "meter_interval_s",
            "tracking_tolerance_w",
            "min_change_w",
            "soc_hysteresis_pct",
            "low_power_error_w",
            "noise_sigmas",
            "noise_aim_sigmas",
            "noise_confirm_s",
            "meter_noise_w",
            "feed_forward_w",
        )
        for name in (*positive, *non_negative):
            value = getattr(self, name)
            check_finite(name, value)
            if value < 0 or (name in positive and value == 0):
                raise ValueError(
                    f"{name} = {value}: expected {'> 0' if name in positive else '>= 0'}"
                )
        check_finite("efficiency", self.efficiency)
        if not 0 < self.efficiency <= 1:
            raise ValueError(f"efficiency = {self.efficiency}: expected 0 < efficiency <= 1")
        if self.safe_setpoint_w is not None:
            check_finite("safe_setpoint_w", self.safe_setpoint_w)
        if not isinstance(self.release_when_safe, bool):
            raise ValueError(f"release_when_safe = {self.release_when_safe!r}: expected a bool")  # noqa: TRY004
        if self.release_when_safe and self.safe_setpoint_w is not None:
            raise ValueError("safe_setpoint_w and release_when_safe exclude each other")

    @property
    def effect_delay_s(self) -> float:
        """Seconds after sending until a reading can show a command's effect."""
        return self.dead_time_s + self.meter_interval_s

    @property
    def command_phases(self) -> int:
        """Length of a command tuple: phases for mode 3, 1 for the grid setpoint."""
        return self.phases if self.method is EssMethod.MODE3 else 1


@dataclass(frozen=True, slots=True)
class ActuationState:
    """What was commanded and when; what the last action was based on.

    ``command_w`` is per phase for mode 3 and a 1-tuple for the grid setpoint. ``unseen_rise_w``
    (>= 0) is the rise of ``u`` commanded but not yet visible in readings (fast export path);
    ``last_error_w`` is the control error of the previous new reading and ``off_band_since`` the
    time the error left the dead band on its current side (steadiness check). ``released`` is
    True from a ``ReleaseSetpoint`` until the next command (then no command is in force).
    """

    command_w: tuple[float, ...] | None = None
    sent_at: float | None = None
    last_sample_at: float | None = None
    unseen_rise_w: float = 0.0
    soc_blocked: bool = False
    last_error_w: float | None = None
    off_band_since: float | None = None
    released: bool = False
    producers_w: float | None = None

    @property
    def command_total_w(self) -> float | None:
        """Sum of the command in force (W), ``None`` before the first command."""
        return None if self.command_w is None else sum(self.command_w)

    def off_band_after(self, error_w: float, at: float, in_band: bool) -> float | None:
        """``off_band_since`` after a new reading with control error ``error_w`` taken ``at``."""
        if in_band:
            return None
        same_side = self.last_error_w is not None and (self.last_error_w > 0) == (error_w > 0)
        if self.off_band_since is not None and same_side:
            return self.off_band_since
        return at


@dataclass(frozen=True)
class View:
    """Fresh readings and derived limits for one decision (stale groups are ``None``)."""

    settings: ActuatorSettings
    now: float
    grid: GridSample | None
    battery: BatterySample | None
    multi: MultiSample | None
    max_feed_in_w: float | None
    u_last: tuple[float, ...] | None
    fb_w: float | None
    limits: BatteryLimits
    safety: Interval | None
    notes: tuple[Reason, ...] = field(default=())
    producers_w: float | None = None

    @property
    def u_last_total(self) -> float | None:
        """Total of the command in force (W)."""
        return None if self.u_last is None else sum(self.u_last)

    @property
    def conversion_w(self) -> float | None:
        """Multi conversion AC-in - AC-out (W, + = charging), if both are known."""
        m = self.multi
        if m is None or m.ac_in_w is None or m.ac_out_w is None:
            return None
        return sum(m.ac_in_w) - sum(m.ac_out_w)


def _check_lengths(inputs: EssInputs, s: ActuatorSettings, now: float) -> None:
    if not math.isfinite(now):
        raise ValueError(f"now = {now!r}: expected a finite number")
    if inputs.grid is not None and len(inputs.grid.power_w) not in (1, s.phases):
        raise ValueError(
            f"grid power_w has {len(inputs.grid.power_w)} phases; expected 1 or {s.phases}"
        )
    m = inputs.multi
    for name, values in (("ac_in_w", m and m.ac_in_w), ("ac_out_w", m and m.ac_out_w)):
        if values and len(values) != s.phases:
            raise ValueError(f"multi {name} has {len(values)} phases; expected {s.phases}")
    if inputs.setpoint_w is not None and len(inputs.setpoint_w) != s.command_phases:
        raise ValueError(
            f"setpoint_w has {len(inputs.setpoint_w)} values; expected {s.command_phases}"
        )
    for name, sample in (("grid", inputs.grid), ("battery", inputs.battery), ("multi", m)):
        if sample is not None and sample.measured_at > now + 1e-6:
            raise ValueError(f"{name} measured_at {sample.measured_at} is after now {now}")


T = TypeVar("T", GridSample, BatterySample, MultiSample)


def _fresh(
    name: str, sample: T | None, now: float, limit_s: float, notes: list[Reason]
) -> T | None:
    if sample is None:
        return None
    age = now - sample.measured_at
    if age > limit_s:
        notes.append(stale(name, age))
        return None
    return sample


def make_view(
    inputs: EssInputs, state: ActuationState, settings: ActuatorSettings, now: float
) -> View:
    """Drop stale groups, derive feedback and the safety window (ValueError on bad input)."""
    _check_lengths(inputs, settings, now)
    notes: list[Reason] = []

    limit = settings.stale_after_s
    grid = _fresh("grid", inputs.grid, now, limit, notes)
    battery = _fresh("battery", inputs.battery, now, limit, notes)
    multi = _fresh("Multi", inputs.multi, now, limit, notes)
    u_last = state.command_w if state.command_w is not None else inputs.setpoint_w
    if settings.method is EssMethod.HUB4_OVERRIDE:
        fb = grid.total_w if grid is not None else None
    else:
        fb = sum(multi.ac_in_w) if multi is not None and multi.ac_in_w is not None else None
    limits = battery_limits(battery, state.soc_blocked, settings.soc_hysteresis_pct)
    u_total = None if u_last is None else sum(u_last)
    safety = battery_window(
        fb, battery.power_w if battery else None, limits, settings.efficiency, u_total
    )
    conversion = None
    if multi is not None and multi.ac_in_w is not None and multi.ac_out_w is not None:
        conversion = sum(multi.ac_in_w) - sum(multi.ac_out_w)
    if safety is not None and fb is not None and conversion is not None:
        if battery is not None and battery.power_w is not None and limits.charge_w is not None:
            safety = _charge_by_multi_only(safety, fb, conversion)
        safety = safety.narrow(_multi_window(settings, fb, conversion))
    return View(
        settings,
        now,
        grid,
        battery,
        multi,
        inputs.max_feed_in_w,
        u_last,
        fb,
        limits,
        safety,
        tuple(notes),
        inputs.acin_producers_w,
    )


def _charge_by_multi_only(safety: Interval, fb: float, conversion: float) -> Interval:
    """Let a known charge limit stop the Multi charging, never make it invert.

    DVCC keeps the DC chargers (MPPTs) within CCL. When they bring the battery to it, the
    Multi inverting more does not relieve the battery (the MPPTs take back every watt it
    inverts), it only sends DC PV to the grid; inverting less is harmless (they curtail).
    So the charge limit never bounds ``u`` below the point where the Multi converts nothing.
    (Bounding it at the noisy measured point instead ratchets ``u`` down, reading after
    reading, into export whenever the battery sits at CCL.)
    """
    stop_charging = fb - conversion
    if safety.hi >= stop_charging:
        return safety
    lo = min(safety.lo, stop_charging)
    return Interval(lo, stop_charging, safety.lo_reason, safety.hi_reason)


def _multi_window(settings: ActuatorSettings, fb: float, conversion: float) -> Interval:
    """The Multi's total inverter/charger rating mapped onto ``u``."""
    n = settings.phases
    inverter, charger = n * settings.inverter_max_w, n * settings.charger_max_w
    return Interval(
        fb - (inverter + conversion),
        fb + (charger - conversion),
        at_bound(ReasonCode.INVERTER_LIMIT, f"capped by inverter limit {inverter:g} W", inverter),
        at_bound(ReasonCode.CHARGER_LIMIT, f"capped by charger limit {charger:g} W", charger),
    )


@dataclass(frozen=True, slots=True)
class Gate:
    """Whether the readings may be acted on: after the last command's effect, and new."""

    settled: bool
    new: bool
    wait: Reason | None

    @property
    def open(self) -> bool:
        """True when a normal (non-urgent) action is allowed."""
        return self.settled and self.new


def make_gate(
    state: ActuationState,
    settings: ActuatorSettings,
    now: float,
    primary_at: float,
    used_at: tuple[float, ...],
) -> Gate:
    """Dead-time gate: every used reading must be taken after the expected effect time."""
    effect_at = None if state.sent_at is None else state.sent_at + settings.effect_delay_s
    settled = effect_at is None or min(used_at) >= effect_at
    new = state.last_sample_at is None or primary_at > state.last_sample_at
    wait: Reason | None = None
    if not settled:
        assert effect_at is not None
        wait = dead_time(max(0.0, effect_at - now))
    elif not new:
        wait = Reason(ReasonCode.NO_NEW_READING, "no new reading since the last action")
    return Gate(settled, new, wait)
