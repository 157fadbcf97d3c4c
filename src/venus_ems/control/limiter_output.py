"""How the output limiter's cap reaches the Multi: MaxDischargePower, or the grid setpoint.

:func:`decide` runs the cap core (:func:`venus_ems.control.output_limiter.decide`) on the
Multi's inverter output and turns the cap in force into the command for the output the
feature claims (docs/decisions.md D10):

* ``max_discharge_power``: :class:`SetMaxDischargePower`. MaxDischargePower limits what the
  Multi draws from the battery while the cap is on its AC output, so the cap is scaled by the
  DC draw per W of AC output measured when the cap changes (:func:`loss_ratio`, 1 to 1.3).
* ``setpoint``: :class:`SetGridSetpoint` at ``max(others, grid + output - cap)``, recomputed on
  every reading: output = net AC load - grid, so the grid must import at least net load - cap.
  It never goes below what the other claims (ESS grid control) or the ESS setting would hold:
  the cap only ever adds import, it never makes the Multi invert up to the cap.

Released caps give the output back (``SetMaxDischargePower(None)`` / :class:`ReleaseSetpoint`).
A decision carries a command only when the command in force changes; the feature keeps
claiming the last one (so missing readings keep the cap, as the cap core does).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

from . import output_limiter
from .commands import (
    Decision,
    ReleaseSetpoint,
    SetGridSetpoint,
    SetMaxDischargePower,
    SetOutputLimit,
)
from .inputs import MultiSample
from .output_limiter import LimiterSettings, LimiterState
from .reasons import Reason, missing

__all__ = [
    "CapCommand",
    "CapInputs",
    "CapMethod",
    "CapSettings",
    "CapState",
    "cap_setpoint_w",
    "decide",
    "inverter_output_w",
    "loss_ratio",
    "max_discharge_power_w",
]

LOSS_RATIO_MAX = 1.3
"""The largest DC draw per W of AC output believed (a Multi's conversion loss)."""
LOSS_MIN_OUTPUT_W = 500.0
"""Below this AC output (W) the ratio is too noisy to tell: 1 is used."""
SETPOINT_STEP_W = 10.0
"""The setpoint is rounded to this (W) so that meter noise does not rewrite it every second."""

CapCommand = SetMaxDischargePower | SetGridSetpoint | ReleaseSetpoint


class CapMethod(str, Enum):
    """Which output carries the cap."""

    MAX_DISCHARGE_POWER = "max_discharge_power"
    SETPOINT = "setpoint"


def inverter_output_w(
    ac_out_w: Sequence[float | None], ac_in_w: Sequence[float | None]
) -> tuple[float, ...] | None:
    """What the Multi inverts per phase (W, + = DC to AC): AC-out - AC-in.

    None when an AC-out is unknown; an unknown AC-in counts as 0 (islanded: all the output is
    the Multi's own). ValueError when the phase counts differ.
    """
    if len(ac_out_w) != len(ac_in_w):
        raise ValueError(f"{len(ac_out_w)} AC-out phases, {len(ac_in_w)} AC-in phases")
    out: list[float] = []
    for ac_out, ac_in in zip(ac_out_w, ac_in_w, strict=True):
        if ac_out is None:
            return None
        out.append(ac_out - (ac_in or 0.0))
    return tuple(out)


def loss_ratio(dc_power_w: float | None, output_w: Sequence[float]) -> float:
    """DC draw per W of AC output, 1 to :data:`LOSS_RATIO_MAX`.

    ``dc_power_w`` is the Multi's DC power (vebus ``/Dc/0/Power``, + = charging); 1 while it is
    unknown, the Multi is not drawing from DC, or inverts less than :data:`LOSS_MIN_OUTPUT_W`.
    """
    ac = sum(output_w)
    if dc_power_w is None or ac < LOSS_MIN_OUTPUT_W or -dc_power_w <= 0:
        return 1.0
    return min(max(-dc_power_w / ac, 1.0), LOSS_RATIO_MAX)


def max_discharge_power_w(
    cap_w: float, output_w: Sequence[float], dc_power_w: float | None
) -> float:
    """MaxDischargePower (W, whole, rounded down: never above the cap) for ``cap_w`` AC (W >= 0)."""
    return float(math.floor(cap_w * loss_ratio(dc_power_w, output_w)))


def cap_setpoint_w(
    cap_w: float, output_w: Sequence[float], grid_w: Sequence[float], others_w: float | None
) -> float:
    """Grid setpoint (W, + = import) that keeps the inverter output at most ``cap_w``.

    At least ``grid + output - cap`` (the import the cap needs), never below ``others_w`` (what
    the setpoint would be without the cap; None = no other), rounded to :data:`SETPOINT_STEP_W`.
    """
    floor = sum(grid_w) + sum(output_w) - cap_w
    want = floor if others_w is None else max(floor, others_w)
    return float(SETPOINT_STEP_W * round(want / SETPOINT_STEP_W))


@dataclass(frozen=True, slots=True)
class CapInputs:
    """Readings for one decision.

    ``output`` holds the inverter output per phase in ``ac_out_w`` (W, + = DC to AC: what the
    cap core limits); ``dc_power_w`` the Multi's DC power (+ = charging); ``grid_w`` grid power
    per phase (+ = import); ``others_setpoint_w`` what the other claims on the grid setpoint
    would hold, else ``ess_setpoint_w`` (the ESS setting ``AcPowerSetPoint``) is used.
    """

    output: MultiSample | None
    dc_power_w: float | None = None
    grid_w: tuple[float, ...] | None = None
    others_setpoint_w: float | None = None
    ess_setpoint_w: float | None = None


@dataclass(frozen=True, slots=True)
class CapSettings:
    """The cap core's settings and the output that carries the cap."""

    limiter: LimiterSettings
    method: CapMethod = CapMethod.MAX_DISCHARGE_POWER

    def __post_init__(self) -> None:
        """A method given as text is converted (ValueError naming the choices)."""
        try:
            object.__setattr__(self, "method", CapMethod(self.method))
        except ValueError:
            choices = ", ".join(m.value for m in CapMethod)
            raise ValueError(f"method = {self.method!r}: expected one of {choices}") from None


@dataclass(frozen=True, slots=True)
class CapState:
    """The cap core's state, the total cap in force (W) and the command in force (None = none)."""

    limiter: LimiterState = field(default_factory=LimiterState)
    cap_total_w: float | None = None
    command: SetMaxDischargePower | SetGridSetpoint | None = None


def _released(method: CapMethod) -> CapCommand:
    if method is CapMethod.SETPOINT:
        return ReleaseSetpoint()
    return SetMaxDischargePower(None)


def decide(
    inputs: CapInputs, state: CapState, settings: CapSettings, now: float
) -> Decision[CapState]:
    """One limiter decision; at most one command, for the output of ``settings.method``.

    Raises ValueError as the cap core does (phase counts, readings from the future); the
    state passed in is never modified.
    """
    d = output_limiter.decide(inputs.output, state.limiter, settings.limiter, now)
    limiter = d.next_state
    reasons: list[Reason] = list(d.reasons)
    if limiter.cap_w is None:
        if state.command is None:
            return Decision((), CapState(limiter), tuple(reasons))
        return Decision((_released(settings.method),), CapState(limiter), tuple(reasons))
    cap = next((c for c in d.commands if isinstance(c, SetOutputLimit)), None)
    out = inputs.output.ac_out_w if inputs.output is not None else None
    total = state.cap_total_w
    value: SetMaxDischargePower | SetGridSetpoint | None = None
    if settings.method is CapMethod.SETPOINT:
        if cap is not None and cap.total_w is not None:
            total = cap.total_w
        if total is not None and out is not None:
            if inputs.grid_w is None:
                reasons.append(missing("grid"))
            else:
                others = inputs.others_setpoint_w
                if others is None:
                    others = inputs.ess_setpoint_w
                value = SetGridSetpoint(cap_setpoint_w(total, out, inputs.grid_w, others))
    elif cap is not None and cap.total_w is not None and out is not None:
        total = cap.total_w
        value = SetMaxDischargePower(max_discharge_power_w(total, out, inputs.dc_power_w))
    if value is None or value == state.command:
        return Decision((), CapState(limiter, total, state.command), tuple(reasons))
    return Decision((value,), CapState(limiter, total, value), tuple(reasons))
