"""From a core's commands to actuator claims: the only thing a feature does with a decision.

A core emits a command when the command in force changes (``Decision.commands``; empty =
hold). A :class:`CommandHolder` keeps the last command of one output and claims it on that
output's actuator at every step, which renews the claim; a command without a value (no limit,
setpoint released) releases the claim, so the actuator's safe value applies. A feature with
several outputs gives each its own holder with the command types of that output (``kinds``)
and hands every holder the whole decision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, get_args

from ..control import (
    Command,
    ReleaseSetpoint,
    SetGridSetpoint,
    SetInverterLimit,
    SetMaxDischargePower,
    SetPhaseSetpoints,
)
from ..runtime.actuator import Actuator

__all__ = ["CommandHolder", "claim_value"]

ClaimValue = float | tuple[float, ...]


def claim_value(cmd: Command) -> ClaimValue | None:
    """The value ``cmd`` claims on its output (W, + = import for setpoints); None = release.

    TypeError for a command that is not an output write (``SetOutputLimit`` is a cap that
    :mod:`venus_ems.control.limiter_output` turns into one; ``RestartInverter`` is an action).
    """
    if isinstance(cmd, SetGridSetpoint):
        return cmd.total_w
    if isinstance(cmd, SetPhaseSetpoints):
        return cmd.phases_w
    if isinstance(cmd, SetMaxDischargePower):
        return cmd.w  # None = no limit from us: give the output back
    if isinstance(cmd, ReleaseSetpoint):
        return None
    if isinstance(cmd, SetInverterLimit):
        return cmd.w
    raise TypeError(f"{cmd!r} is not a command for an output")


@dataclass
class CommandHolder:
    """The command in force on one output, claimed for ``feature`` at ``priority``.

    ``kinds`` are the command types of this output (default: every command type).
    """

    feature: str
    priority: int = 0
    kinds: tuple[type, ...] = get_args(Command)
    command: Command | None = None

    @property
    def value(self) -> ClaimValue | None:
        """What is claimed now (None: nothing, or released)."""
        return None if self.command is None else claim_value(self.command)

    def apply(self, act: Actuator[Any], commands: Sequence[Command]) -> None:
        """Take the newest of ``commands`` of this output's kinds, then claim, renew or release.

        TypeError, and nothing changes, for a command that writes no output.
        """
        mine = [c for c in commands if isinstance(c, self.kinds)]
        if mine:
            claim_value(mine[-1])
            self.command = mine[-1]
        if self.command is None:
            return  # no command yet: nothing to claim (and nothing of ours to release)
        value = claim_value(self.command)
        if value is None:
            act.release(self.feature)
        else:
            act.claim(self.feature, value, priority=self.priority)

    def reset(self) -> None:
        """Forget the command (the caller released or abandoned the output)."""
        self.command = None
