"""Commands the control cores emit, and the :class:`Decision` that carries them.

All powers are W with Victron signs: setpoints + = import (take from the grid / AC-in),
- = export. A decision with no command means "hold what is in force".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Generic, TypeVar

from .reasons import Reason

__all__ = [
    "Command",
    "Decision",
    "ReleaseSetpoint",
    "RestartInverter",
    "SetGridSetpoint",
    "SetInverterLimit",
    "SetMaxDischargePower",
    "SetOutputLimit",
    "SetPhaseSetpoints",
    "check_finite",
]

S = TypeVar("S")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_finite(name: str, value: float) -> None:
    """Raise ValueError naming ``name`` unless ``value`` is a finite number (bools refused)."""
    if not _is_number(value):
        raise ValueError(f"{name} = {value!r}: expected a number")
    if not math.isfinite(value):
        raise ValueError(f"{name} = {value!r}: expected a finite number")


@dataclass(frozen=True, slots=True)
class SetGridSetpoint:
    """Grid setpoint (W, + = import) for hub4control: ``/Overrides/Setpoint`` (ESS mode 1/2)."""

    total_w: float

    def __post_init__(self) -> None:
        """Reject NaN/inf (ValueError)."""
        check_finite("total_w", self.total_w)


@dataclass(frozen=True, slots=True)
class SetPhaseSetpoints:
    """Mode-3 AC-input setpoints per phase (W, + = take from AC-in); ``None`` = phase absent."""

    l1_w: float
    l2_w: float | None = None
    l3_w: float | None = None

    def __post_init__(self) -> None:
        """Reject NaN/inf and an L3 without L2 (ValueError)."""
        for name in ("l1_w", "l2_w", "l3_w"):
            value = getattr(self, name)
            if value is not None:
                check_finite(name, value)
        if self.l3_w is not None and self.l2_w is None:
            raise ValueError("l3_w given without l2_w")

    @classmethod
    def of(cls, phases_w: tuple[float, ...]) -> SetPhaseSetpoints:
        """Build from a 1-3 tuple (ValueError on another length)."""
        if not 1 <= len(phases_w) <= 3:
            raise ValueError(f"expected 1 to 3 phase setpoints, got {len(phases_w)}")
        padded = (*phases_w, None, None)
        return cls(padded[0], padded[1], padded[2])  # type: ignore[arg-type]

    @property
    def phases_w(self) -> tuple[float, ...]:
        """The present phases' setpoints, L1 first."""
        return tuple(v for v in (self.l1_w, self.l2_w, self.l3_w) if v is not None)

    @property
    def total_w(self) -> float:
        """Sum over phases (W)."""
        return sum(self.phases_w)


@dataclass(frozen=True, slots=True)
class ReleaseSetpoint:
    """Give the ESS setpoint back (either method): the output returns to its safe value.

    hub4 override: hub4control follows the user's ESS grid setpoint again; mode 3: the
    configured safe setpoints. The core that sent it holds no command afterwards.
    """


@dataclass(frozen=True, slots=True)
class SetMaxDischargePower:
    """Cap on ESS inverter power (W >= 0); ``None`` (or -1 given) = no limit."""

    w: float | None

    def __post_init__(self) -> None:
        """Normalise -1 to ``None``; reject other negatives and NaN (ValueError)."""
        if self.w is None:
            return
        check_finite("w", self.w)
        if self.w == -1:
            object.__setattr__(self, "w", None)
        elif self.w < 0:
            raise ValueError(f"w = {self.w}: expected >= 0, or -1/None for no limit")

    @property
    def dbus_value(self) -> float:
        """Value for ``MaxDischargePower`` paths: -1 means no limit."""
        return -1.0 if self.w is None else float(self.w)


@dataclass(frozen=True, slots=True)
class SetOutputLimit:
    """Cap on the Multi's AC output (W, + = delivering to AC-out); ``None`` = released.

    ``per_phase_w`` holds the per-phase caps when limiting per phase; ``excess_w`` is how much the
    output was above the new cap when decided (W >= 0), so a feature applying the cap through the
    grid setpoint can raise the setpoint by exactly that much.
    """

    total_w: float | None
    per_phase_w: tuple[float, ...] | None = None
    excess_w: float = 0.0

    def __post_init__(self) -> None:
        """Reject NaN, negative caps and per-phase caps on a released limit (ValueError)."""
        if self.total_w is not None:
            check_finite("total_w", self.total_w)
            if self.total_w < 0:
                raise ValueError(f"total_w = {self.total_w}: expected >= 0")
        elif self.per_phase_w is not None:
            raise ValueError("per_phase_w given with a released (None) total")
        for i, value in enumerate(self.per_phase_w or ()):
            check_finite(f"per_phase_w[{i}]", value)
            if value < 0:
                raise ValueError(f"per_phase_w[{i}] = {value}: expected >= 0")
        check_finite("excess_w", self.excess_w)
        if self.excess_w < 0:
            raise ValueError(f"excess_w = {self.excess_w}: expected >= 0")

    @property
    def released(self) -> bool:
        """True when no cap applies."""
        return self.total_w is None

    def as_max_discharge_power(self) -> SetMaxDischargePower:
        """The same cap as a ``MaxDischargePower`` command (released → no limit)."""
        return SetMaxDischargePower(self.total_w)


@dataclass(frozen=True, slots=True)
class SetInverterLimit:
    """AC limit of one micro-inverter (W >= 0, + = producing), a whole percent of its nameplate.

    ``resend`` asks for the limit to be sent again although it is the one in force: the
    inverter lost it (restart, another tool), so the unchanged command must go out once more.
    """

    serial: str
    w: float
    resend: bool = False

    def __post_init__(self) -> None:
        """Reject NaN, negatives and an empty serial (ValueError)."""
        check_finite("w", self.w)
        if self.w < 0:
            raise ValueError(f"w = {self.w}: expected >= 0")
        if not self.serial:
            raise ValueError("serial must not be empty")


@dataclass(frozen=True, slots=True)
class RestartInverter:
    """Restart one micro-inverter (its limit commands keep failing); not an output write."""

    serial: str


Command = (
    SetGridSetpoint
    | SetPhaseSetpoints
    | ReleaseSetpoint
    | SetMaxDischargePower
    | SetOutputLimit
    | SetInverterLimit
    | RestartInverter
)


@dataclass(frozen=True)
class Decision(Generic[S]):
    """What a core decided: ``commands`` to send (empty = hold), the ``next_state`` and why."""

    commands: tuple[Command, ...]
    next_state: S
    reasons: tuple[Reason, ...]

    @property
    def held(self) -> bool:
        """True when nothing is to be sent."""
        return not self.commands

    @property
    def text(self) -> str:
        """All reasons joined for a status line."""
        return "; ".join(r.text for r in self.reasons)

    def codes(self) -> frozenset[str]:
        """The reason codes as plain strings."""
        return frozenset(r.code.value for r in self.reasons)
