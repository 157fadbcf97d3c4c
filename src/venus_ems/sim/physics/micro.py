"""Battery-fed micro-inverter (Hoymiles behind OpenDTU): limit commands with ack, dead time, ramp.

A limit command goes ``Pending``; ``ack_s`` later the inverter acknowledges it (``Ok``, and the
DTU reports the new limit) or, when it is unreachable or refuses limits (fault knobs), the
command fails (``Failure``) and nothing changes. The output starts moving to the new limit
``dead_time_s`` after the command was sent and ramps at ``ramp_w_per_s``. A restart switches
the output off for ``restart_s``; the inverter comes back at its persistent limit (non-persistent
limits are forgotten).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .params import MicroInverterParams

__all__ = ["LIMIT_FAILURE", "LIMIT_OK", "LIMIT_PENDING", "MicroInverter"]

LIMIT_OK = "Ok"
LIMIT_PENDING = "Pending"
LIMIT_FAILURE = "Failure"

_J_PER_KWH = 3.6e6


@dataclass
class _Pending:
    """A command in flight: value, when it is acknowledged, when it takes effect."""

    value: float
    ack_at: float
    apply_at: float
    acked: bool = False


class MicroInverter:
    """One inverter: AC output W (+ = producing), drawn from the battery bus via ``efficiency``."""

    def __init__(self, params: MicroInverterParams, rng: random.Random) -> None:
        """Start on, at ``initial_limit_w``."""
        self.params = params
        self._rng = rng
        self.limit_w = params.initial_limit_w  # acknowledged (what the DTU reports)
        self.effective_limit_w = params.initial_limit_w  # what the output follows
        self.on = True
        self.reachable = True
        self.refuse_limits = False
        self.power_w = 0.0
        self.dc_power_w = 0.0
        self.limit_status = LIMIT_OK
        self.power_status = LIMIT_OK
        self._limits: list[_Pending] = []
        self._pending_power: tuple[bool, float] | None = None
        self._restart_ack: float | None = None
        self._back_at: float | None = None
        self.yield_total_kwh = 0.0
        self.yield_day_wh = 0.0
        self.temperature_c = 25.0
        self.commands = 0
        self.restarts = 0

    def _times(self, now: float) -> tuple[float, float]:
        p = self.params
        jitter = self._rng.uniform(0.0, p.dead_time_jitter_s) if p.dead_time_jitter_s else 0.0
        apply_at = now + p.dead_time_s + jitter
        ack_at = apply_at if p.ack_s is None else now + p.ack_s
        return ack_at, apply_at

    def command_limit(self, value: float, *, relative: bool, now: float) -> None:
        """Queue a limit (W, or % of max power if ``relative``); see the module docstring."""
        watts = value * self.params.max_power_w / 100.0 if relative else value
        watts = min(max(watts, 0.0), self.params.max_power_w)
        ack_at, apply_at = self._times(now)
        self._limits.append(_Pending(watts, ack_at, apply_at))
        self.limit_status = LIMIT_PENDING
        self.commands += 1

    def command_power(self, on: bool, now: float) -> None:
        """Queue switching the inverter on or off; applies after the dead time."""
        self._pending_power = (on, self._times(now)[1])
        self.power_status = LIMIT_PENDING
        self.commands += 1

    def command_restart(self, now: float) -> None:
        """Queue a restart: acknowledged like a limit, then off for ``restart_s``."""
        self._restart_ack = self._times(now)[0]
        self.power_status = LIMIT_PENDING
        self.commands += 1

    @property
    def limit_relative(self) -> float:
        """Acknowledged limit in % of max power."""
        return 100.0 * self.limit_w / self.params.max_power_w

    @property
    def producing(self) -> bool:
        """OpenDTU ``producing``: AC power above zero."""
        return self.power_w > 0.5

    def _commands_due(self, now: float) -> None:
        for cmd in list(self._limits):
            if not cmd.acked and now >= cmd.ack_at:
                if self.reachable and not self.refuse_limits:
                    cmd.acked = True
                    self.limit_w = cmd.value
                    self.limit_status = LIMIT_OK
                else:
                    self._limits.remove(cmd)
                    self.limit_status = LIMIT_FAILURE
                    continue
            if cmd.acked and now >= cmd.apply_at:
                self.effective_limit_w = cmd.value
                self._limits.remove(cmd)
        if self._pending_power is not None and now >= self._pending_power[1]:
            if self.reachable:
                self.on = self._pending_power[0]
                self.power_status = LIMIT_OK
            else:
                self.power_status = LIMIT_FAILURE
            self._pending_power = None
        if self._restart_ack is not None and now >= self._restart_ack:
            self._restart_ack = None
            if self.reachable:
                self.power_status = LIMIT_OK
                self.restarts += 1
                self._back_at = now + self.params.restart_s
                self._limits.clear()
                self.power_w = 0.0
            else:
                self.power_status = LIMIT_FAILURE
        if self._back_at is not None and now >= self._back_at:
            self._back_at = None
            persistent = self.params.persistent_limit_w
            back = self.params.max_power_w if persistent is None else persistent
            self.limit_w = self.effective_limit_w = back
            self.limit_status = LIMIT_OK
            self.on = True

    def step(self, now: float, dt: float, dc_available: bool) -> float:
        """Apply due commands and ramp; returns the AC output W before any DC shortfall."""
        self._commands_due(now)
        restarting = self._back_at is not None
        target = self.effective_limit_w if (self.on and dc_available and not restarting) else 0.0
        step = self.params.ramp_w_per_s * dt
        if not dc_available or restarting:
            self.power_w = 0.0  # input under-voltage cut-off (or a restart) is immediate
        elif target > self.power_w:
            self.power_w = min(self.power_w + step, target)
        else:
            self.power_w = max(self.power_w - step, target)
        self.dc_power_w = self.power_w / self.params.efficiency
        return self.power_w

    def settle(self, factor: float, dt: float) -> float:
        """Scale this step's output by ``factor`` (DC shortfall); count energy; returns loss W."""
        if factor < 1.0:
            self.power_w *= factor
            self.dc_power_w *= factor
        self.yield_total_kwh += self.power_w * dt / _J_PER_KWH
        self.yield_day_wh += self.power_w * dt / 3600.0
        target = 25.0 + 0.03 * self.power_w
        self.temperature_c += (target - self.temperature_c) * min(dt / 300.0, 1.0)
        return self.dc_power_w - self.power_w
