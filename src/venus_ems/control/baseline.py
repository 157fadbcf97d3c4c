"""A naive P-step loop (the issue-6 benchmark's baseline, kept for tests) and an instant bound.

:func:`decide` is what most DIY scripts do (seed B's 4 s loop, seed A's 2 s loop): every
``period_s`` take the latest grid reading, whatever its age, and move the command by
``gain x (target - grid)`` — a proportional step on the last command (velocity form), no
dead-time awareness, no battery limits, no dead band. Same shape as the real cores:
``decide(inputs, state, settings, now) -> Decision``.

:func:`oracle_grid_w` is the bound an oracle reaches: knowing the load exactly and acting
instantly, grid power is the target unless the battery (or the Multi) cannot absorb or
supply the difference. The oracle itself lives in the benchmark harness.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .commands import Decision, SetGridSetpoint, SetPhaseSetpoints, check_finite
from .ess import EssMethod
from .inputs import EssInputs
from .reasons import Reason, ReasonCode, fmt_w, missing

__all__ = ["BaselineSettings", "BaselineState", "decide", "oracle_grid_w"]


@dataclass(frozen=True, slots=True)
class BaselineSettings:
    """Fixed-period P step: target (W, + = import), gain, period (s), command range (W)."""

    method: EssMethod = EssMethod.HUB4_OVERRIDE
    phases: int = 1
    target_w: float = 0.0
    gain: float = 1.0
    period_s: float = 1.0
    min_w: float = -10_000.0
    max_w: float = 10_000.0

    def __post_init__(self) -> None:
        """Validate (ValueError naming the field)."""
        object.__setattr__(self, "method", EssMethod(self.method))
        if isinstance(self.phases, bool) or self.phases not in (1, 2, 3):
            raise ValueError(f"phases = {self.phases!r}: expected 1, 2 or 3")
        for name in ("target_w", "gain", "period_s", "min_w", "max_w"):
            check_finite(name, getattr(self, name))
        if self.gain <= 0:
            raise ValueError(f"gain = {self.gain}: expected > 0")
        if self.period_s < 0:
            raise ValueError(f"period_s = {self.period_s}: expected >= 0")
        if self.min_w > self.max_w:
            raise ValueError(f"min_w = {self.min_w} is above max_w = {self.max_w}")


@dataclass(frozen=True, slots=True)
class BaselineState:
    """Last command total (W) and when the last step was taken (s)."""

    command_w: float | None = None
    decided_at: float | None = None


def decide(
    inputs: EssInputs, state: BaselineState, settings: BaselineSettings, now: float
) -> Decision[BaselineState]:
    """One baseline step (ValueError on a non-finite ``now``)."""
    check_finite("now", now)
    s = settings
    if state.decided_at is not None and now - state.decided_at < s.period_s - 1e-9:
        wait = s.period_s - (now - state.decided_at)
        return Decision((), state, (Reason(ReasonCode.PERIOD, f"next step in {wait:.1f} s", wait),))
    if inputs.grid is None:
        return Decision((), state, (missing("grid"),))
    base = state.command_w
    if base is None:
        base = sum(inputs.setpoint_w) if inputs.setpoint_w is not None else 0.0
    grid = inputs.grid.total_w
    u = min(max(base + s.gain * (s.target_w - grid), s.min_w), s.max_w)
    why = (Reason(ReasonCode.REGULATING, f"grid {fmt_w(grid)}, target {fmt_w(s.target_w)}", grid),)
    if s.method is EssMethod.HUB4_OVERRIDE:
        cmd: SetGridSetpoint | SetPhaseSetpoints = SetGridSetpoint(float(round(u)))
    else:
        cmd = SetPhaseSetpoints.of(tuple(float(round(u / s.phases)) for _ in range(s.phases)))
    return Decision((cmd,), BaselineState(u, now), why)


def oracle_grid_w(
    net_w: float, target_w: float, charge_max_w: float, discharge_max_w: float
) -> float:
    """Grid power (W, + = import) with perfect, instant control.

    ``net_w`` is grid power with the battery idle (loads - PV); the battery can take up to
    ``charge_max_w`` and give up to ``discharge_max_w`` (both W >= 0, already reduced by BMS
    limits, allow flags, SoC floor and Multi ratings; ``math.inf`` = unlimited). Raises
    ValueError on negative limits.
    """
    check_finite("net_w", net_w)
    check_finite("target_w", target_w)
    if charge_max_w < 0 or discharge_max_w < 0 or math.isnan(charge_max_w + discharge_max_w):
        raise ValueError("charge_max_w and discharge_max_w must be >= 0")
    return min(max(target_w, net_w - discharge_max_w), net_w + charge_max_w)
