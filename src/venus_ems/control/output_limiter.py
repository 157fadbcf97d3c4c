"""Multi output limiter: keep the Multi's AC output at or below a contract or fuse limit.

The core reads the Multi's AC-out power (total, or per phase) and keeps a cap on what the
Multi delivers (:class:`~venus_ems.control.commands.SetOutputLimit`):

* released (no cap) while the output stays at or below ``limit_w + dead_band_w``;
* output above that → engage at the limit itself (a hard limit: one jump, so the excess lasts
  no longer than the dead time);
* engaged: output still above the limit → lower the cap by at most ``max_step_w`` per
  decision (never below ``floor_w``); output below ``limit - dead_band`` with the cap below
  the limit → raise the cap by at most ``max_step_w``, never so far that the output would
  cross the limit. Gradual steps avoid the large swings that can make a Multi restart;
* decisions wait for the dead time (``dead_time_s`` + ``meter_interval_s``) after each change;
* release only after the output has stayed ``release_hysteresis_w`` below the limit for
  ``release_after_s`` with the cap back at the limit. Missing or stale readings keep the cap.

How a feature applies the cap — the trade-off:

* **MaxDischargePower** (hub4 ``/Overrides/MaxDischargePower``, or the persisted setting
  ``/Settings/CGwacs/MaxDischargePower``): limits what the Multi inverts, independently of the
  grid-setpoint loop; hub4control keeps honouring it between our decisions. It acts on the
  DC side (losses make the AC output a little lower than the cap) and, when the setting is
  used, every write goes to flash — write only on change and no faster than a minimum
  interval (the cap changes at most once per dead time here). ``SetOutputLimit.total_w``
  with ``as_max_discharge_power()`` is this path; per phase it is conservative
  (phases x the smallest phase cap: assumes the Multi shares its output evenly).
* **Grid setpoint**: raise the import setpoint by ``excess_w`` (how far the output is above
  the new cap) when a command arrives, return to the normal setpoint on release. Fast, exact
  on the AC side and works in mode 3 (per phase with ``per_phase_w``), but it shares the
  setpoint with the grid-target feature (the actuator must arbitrate) and needs the grid to
  take the difference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .commands import Decision, SetOutputLimit, check_finite
from .inputs import MultiSample
from .reasons import Reason, ReasonCode, dead_time, fmt_w, missing, stale

__all__ = ["LimiterSettings", "LimiterState", "decide"]


@dataclass(frozen=True, slots=True)
class LimiterSettings:
    """Limit (W, total or per phase), floor, step, hysteresis (W) and timing (s)."""

    limit_w: float
    phases: int = 1
    per_phase: bool = False
    phase_limits_w: tuple[float, ...] | None = None
    floor_w: float = 0.0
    max_step_w: float = 500.0
    dead_band_w: float = 25.0
    release_hysteresis_w: float = 200.0
    release_after_s: float = 60.0
    dead_time_s: float = 5.0
    meter_interval_s: float = 1.0
    stale_after_s: float = 10.0

    def __post_init__(self) -> None:
        """Validate every field and the cross-field rules (ValueError naming the field)."""
        if isinstance(self.phases, bool) or self.phases not in (1, 2, 3):
            raise ValueError(f"phases = {self.phases!r}: expected 1, 2 or 3")
        for name in (
            "limit_w",
            "floor_w",
            "max_step_w",
            "dead_band_w",
            "release_hysteresis_w",
            "release_after_s",
            "dead_time_s",
            "meter_interval_s",
            "stale_after_s",
        ):
            value = getattr(self, name)
            check_finite(name, value)
            strict = name in ("limit_w", "max_step_w", "stale_after_s")
            if value < 0 or (strict and value == 0):
                raise ValueError(f"{name} = {value}: expected {'> 0' if strict else '>= 0'}")
        if self.phase_limits_w is not None:
            if not self.per_phase:
                raise ValueError("phase_limits_w needs per_phase = true")
            if len(self.phase_limits_w) != self.phases:
                raise ValueError(
                    f"phase_limits_w has {len(self.phase_limits_w)} values; expected {self.phases}"
                )
            for i, value in enumerate(self.phase_limits_w):
                check_finite(f"phase_limits_w[{i}]", value)
                if value <= 0:
                    raise ValueError(f"phase_limits_w[{i}] = {value}: expected > 0")
        if self.floor_w >= min(self.channel_limits_w):
            raise ValueError(
                f"floor_w = {self.floor_w}: expected below the limit {min(self.channel_limits_w)}"
            )

    @property
    def channel_limits_w(self) -> tuple[float, ...]:
        """The limit of each controlled channel: one total, or one per phase."""
        if not self.per_phase:
            return (self.limit_w,)
        return self.phase_limits_w or tuple(self.limit_w for _ in range(self.phases))

    @property
    def effect_delay_s(self) -> float:
        """Seconds after a change until a reading can show it."""
        return self.dead_time_s + self.meter_interval_s


@dataclass(frozen=True, slots=True)
class LimiterState:
    """Cap in force per channel (``None`` = released), when it was sent, release timer."""

    cap_w: tuple[float, ...] | None = None
    sent_at: float | None = None
    last_sample_at: float | None = None
    below_since: float | None = None


def _channels(sample: MultiSample, s: LimiterSettings) -> tuple[float, ...]:
    assert sample.ac_out_w is not None
    return sample.ac_out_w if s.per_phase else (sum(sample.ac_out_w),)


def _command(
    caps: tuple[float, ...] | None, ys: tuple[float, ...], s: LimiterSettings
) -> SetOutputLimit:
    if caps is None:
        return SetOutputLimit(None)
    excess = sum(max(0.0, y - c) for y, c in zip(ys, caps, strict=True))
    if not s.per_phase:
        return SetOutputLimit(caps[0], None, excess)
    return SetOutputLimit(len(caps) * min(caps), caps, excess)


def _validate(sample: MultiSample | None, s: LimiterSettings, now: float) -> None:
    if not math.isfinite(now):
        raise ValueError(f"now = {now!r}: expected a finite number")
    if sample is None:
        return
    if sample.ac_out_w is not None and len(sample.ac_out_w) != s.phases:
        raise ValueError(f"multi ac_out_w has {len(sample.ac_out_w)} phases; expected {s.phases}")
    if sample.measured_at > now + 1e-6:
        raise ValueError(f"multi measured_at {sample.measured_at} is after now {now}")


def _describe(ys: tuple[float, ...], limits: tuple[float, ...]) -> str:
    return ", ".join(f"{fmt_w(y)} / {fmt_w(lim)}" for y, lim in zip(ys, limits, strict=True))


def _adjust(
    caps: tuple[float, ...], ys: tuple[float, ...], s: LimiterSettings
) -> tuple[tuple[float, ...], list[Reason]]:
    new: list[float] = []
    reasons: list[Reason] = []
    for cap, y, limit in zip(caps, ys, s.channel_limits_w, strict=True):
        over = y - limit
        if over > s.dead_band_w:
            lowered = max(s.floor_w, cap - min(s.max_step_w, over))
            if lowered == s.floor_w and cap - min(s.max_step_w, over) < s.floor_w:
                reasons.append(
                    Reason(ReasonCode.OUTPUT_FLOOR, f"cap at floor {fmt_w(s.floor_w)}", s.floor_w)
                )
            reasons.append(
                Reason(
                    ReasonCode.OUTPUT_ABOVE_LIMIT,
                    f"AC output {fmt_w(y)} above limit {fmt_w(limit)}",
                    over,
                )
            )
            new.append(lowered)
        elif y < limit - s.dead_band_w and cap < limit:
            room = limit - s.dead_band_w - y
            new.append(min(limit, cap + min(s.max_step_w, room)))
            reasons.append(
                Reason(ReasonCode.OUTPUT_RECOVERING, f"cap raised toward {fmt_w(limit)}", limit)
            )
        else:
            new.append(cap)
    return tuple(float(round(c)) for c in new), reasons


def decide(
    inputs: MultiSample | None, state: LimiterState, settings: LimiterSettings, now: float
) -> Decision[LimiterState]:
    """One limiter decision on the Multi's AC-out reading (W, + = to the loads).

    Raises ValueError on a reading whose phase count does not match the settings or that is
    from the future; the state passed in is never modified.
    """
    s = settings
    _validate(inputs, s, now)
    limits = s.channel_limits_w
    keep = "keeping cap" if state.cap_w is not None else "no cap in force"
    if inputs is None or inputs.ac_out_w is None:
        return Decision((), state, (missing("Multi AC-out"), Reason(ReasonCode.STALE, keep)))
    age = now - inputs.measured_at
    if age > s.stale_after_s:
        return Decision((), state, (stale("Multi AC-out", age), Reason(ReasonCode.STALE, keep)))
    ys = _channels(inputs, s)
    if state.last_sample_at is not None and inputs.measured_at <= state.last_sample_at:
        return Decision(
            (), state, (Reason(ReasonCode.NO_NEW_READING, "no new reading since the last action"),)
        )
    seen = replace(state, last_sample_at=inputs.measured_at)
    if state.cap_w is None:
        if any(y - lim > s.dead_band_w for y, lim in zip(ys, limits, strict=True)):
            caps = tuple(float(lim) for lim in limits)
            why = Reason(
                ReasonCode.OUTPUT_ABOVE_LIMIT, f"AC output above limit ({_describe(ys, limits)})"
            )
            nxt = LimiterState(caps, now, inputs.measured_at, None)
            return Decision((_command(caps, ys, s),), nxt, (why,))
        why = Reason(ReasonCode.OUTPUT_BELOW_LIMIT, f"AC output {_describe(ys, limits)}: no cap")
        return Decision((), seen, (why,))
    assert state.sent_at is not None
    effect_at = state.sent_at + s.effect_delay_s
    if inputs.measured_at < effect_at:
        return Decision((), state, (dead_time(max(0.0, effect_at - now)),))
    caps, reasons = _adjust(state.cap_w, ys, s)
    recovered = all(c >= lim for c, lim in zip(caps, limits, strict=True))
    quiet = all(y <= lim - s.release_hysteresis_w for y, lim in zip(ys, limits, strict=True))
    below_since = None
    if recovered and quiet:
        below_since = state.below_since if state.below_since is not None else inputs.measured_at
        waited = inputs.measured_at - below_since
        if waited >= s.release_after_s:
            why = Reason(
                ReasonCode.RELEASED,
                f"AC output {fmt_w(s.release_hysteresis_w)} below limit for {waited:.0f} s",
                waited,
            )
            return Decision(
                (_command(None, ys, s),), LimiterState(None, now, inputs.measured_at), (why,)
            )
        reasons.append(
            Reason(
                ReasonCode.RELEASE_PENDING,
                f"releasing in {s.release_after_s - waited:.0f} s",
                s.release_after_s - waited,
            )
        )
    if caps == state.cap_w:
        reasons.append(
            Reason(ReasonCode.OUTPUT_CAPPED, f"cap held (output / limit: {_describe(ys, limits)})")
        )
        return Decision((), replace(seen, below_since=below_since), tuple(reasons))
    nxt = LimiterState(caps, now, inputs.measured_at, below_since)
    return Decision((_command(caps, ys, s),), nxt, tuple(reasons))
