"""Battery-fed micro-inverter (Hoymiles behind OpenDTU): limit commands with dead time and ramp."""

from __future__ import annotations

import random

from .params import MicroInverterParams

__all__ = ["LIMIT_FAILURE", "LIMIT_OK", "LIMIT_PENDING", "MicroInverter"]

LIMIT_OK = "Ok"
LIMIT_PENDING = "Pending"
LIMIT_FAILURE = "Failure"

_J_PER_KWH = 3.6e6


class MicroInverter:
    """One inverter: AC output W (+ = producing), drawn from the battery bus via ``efficiency``."""

    def __init__(self, params: MicroInverterParams, rng: random.Random) -> None:
        """Start on, at ``initial_limit_w``."""
        self.params = params
        self._rng = rng
        self.limit_w = params.initial_limit_w
        self.on = True
        self.reachable = True
        self.power_w = 0.0
        self.dc_power_w = 0.0
        self.limit_status = LIMIT_OK
        self.power_status = LIMIT_OK
        self._pending_limit: tuple[float, float] | None = None
        self._pending_power: tuple[bool, float] | None = None
        self.yield_total_kwh = 0.0
        self.yield_day_wh = 0.0
        self.temperature_c = 25.0
        self.commands = 0

    def _due(self, now: float) -> float:
        p = self.params
        jitter = self._rng.uniform(0.0, p.dead_time_jitter_s) if p.dead_time_jitter_s else 0.0
        return now + p.dead_time_s + jitter

    def command_limit(self, value: float, *, relative: bool, now: float) -> None:
        """Queue a limit (W, or % of max power if ``relative``); applies after the dead time."""
        watts = value * self.params.max_power_w / 100.0 if relative else value
        watts = min(max(watts, 0.0), self.params.max_power_w)
        self._pending_limit = (watts, self._due(now))
        self.limit_status = LIMIT_PENDING
        self.commands += 1

    def command_power(self, on: bool, now: float) -> None:
        """Queue switching the inverter on or off; applies after the dead time."""
        self._pending_power = (on, self._due(now))
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

    def step(self, now: float, dt: float, dc_available: bool) -> float:
        """Apply due commands and ramp; returns the AC output W before any DC shortfall."""
        if self._pending_limit is not None and now >= self._pending_limit[1]:
            if self.reachable:
                self.limit_w = self._pending_limit[0]
                self.limit_status = LIMIT_OK
            else:
                self.limit_status = LIMIT_FAILURE
            self._pending_limit = None
        if self._pending_power is not None and now >= self._pending_power[1]:
            if self.reachable:
                self.on = self._pending_power[0]
                self.power_status = LIMIT_OK
            else:
                self.power_status = LIMIT_FAILURE
            self._pending_power = None
        target = self.limit_w if (self.on and dc_available) else 0.0
        step = self.params.ramp_w_per_s * dt
        if not dc_available:
            self.power_w = 0.0  # input under-voltage cut-off is immediate
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
