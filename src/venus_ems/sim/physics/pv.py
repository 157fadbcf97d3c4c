"""DC PV through an MPPT solar charger, and an AC PV inverter with a power limit."""

from __future__ import annotations

import math

from .params import PvInverterParams, SolarChargerParams

__all__ = [
    "MPP_MODE_LIMITED",
    "MPP_MODE_OFF",
    "MPP_MODE_TRACKING",
    "PvInverter",
    "SolarCharger",
]

# Victron solarcharger /MppOperationMode values.
MPP_MODE_OFF = 0
MPP_MODE_LIMITED = 1
MPP_MODE_TRACKING = 2

_J_PER_KWH = 3.6e6


class SolarCharger:
    """MPPT: harvests up to the array's available power W when the DC bus can take it."""

    def __init__(self, params: SolarChargerParams) -> None:
        """Idle, no sun."""
        self.params = params
        self.available_w = 0.0
        self.pv_power_w = 0.0
        self.output_w = 0.0
        self.potential_w = 0.0
        self.curtailed = False
        self.yield_kwh = 0.0
        self.link_charge_current_a: float | None = None
        self.enabled = True

    def potential_out_w(self, battery_voltage: float) -> float:
        """Battery-side power W the charger would deliver if nothing limited it."""
        if not self.enabled or self.available_w <= 0:
            return 0.0
        p = self.params
        limit_a = p.max_charge_current_a
        if self.link_charge_current_a is not None:
            limit_a = min(limit_a, max(self.link_charge_current_a, 0.0))
        return min(self.available_w * p.efficiency, limit_a * battery_voltage)

    def settle(self, potential_w: float, output_w: float, dt: float) -> float:
        """Record the delivered battery-side power W; returns the conversion loss W."""
        self.potential_w = potential_w
        self.output_w = output_w
        self.pv_power_w = output_w / self.params.efficiency
        self.curtailed = output_w < potential_w - 1.0 or (
            potential_w < self.available_w * self.params.efficiency - 1.0
        )
        self.yield_kwh += output_w * dt / _J_PER_KWH
        return self.pv_power_w - output_w

    def state(self, soc: float) -> int:
        """Victron ``/State``: 0 off, 3 bulk, 4 absorption, 5 float."""
        if self.available_w < 1.0 or not self.enabled:
            return 0
        if soc >= 99.5:
            return 5
        if soc >= 95.0 or self.curtailed:
            return 4
        return 3

    def mpp_mode(self) -> int:
        """Victron ``/MppOperationMode``: 0 off, 1 voltage/current limited, 2 tracking."""
        if self.available_w < 1.0 or not self.enabled:
            return MPP_MODE_OFF
        return MPP_MODE_LIMITED if self.curtailed else MPP_MODE_TRACKING

    def pv_voltage(self) -> float:
        """Array voltage V: the MPP voltage, moving towards Voc as the charger curtails."""
        p = self.params
        if self.available_w < 1.0:
            return 0.0
        frac = min(self.pv_power_w / self.available_w, 1.0)
        return p.mpp_voltage_v + (p.open_circuit_voltage_v - p.mpp_voltage_v) * (1.0 - frac)


class PvInverter:
    """AC-coupled PV inverter: output W follows min(available, rated, limits) with a lag."""

    def __init__(self, params: PvInverterParams) -> None:
        """Idle, no sun, no limit."""
        self.params = params
        self.available_w = 0.0
        self.power_w = 0.0
        self.limit_w: float | None = None
        self._limit_expires = 0.0
        self.hub4_limit_w: float | None = None
        self.energy_kwh = 0.0

    def set_limit(self, watts: float | None, now: float) -> None:
        """``/Ac/PowerLimit`` W (None clears); released ``limit_timeout_s`` after the last write."""
        self.limit_w = None if watts is None else max(float(watts), 0.0)
        self._limit_expires = now + self.params.limit_timeout_s

    def expire(self, now: float) -> None:
        """dbus-fronius resets a limit not renewed within ``limit_timeout_s``: back to MaxPower."""
        if self.limit_w is not None and now >= self._limit_expires:
            self.limit_w = None

    def ceiling_w(self, now: float) -> float:
        """What the inverter may produce now, W."""
        self.expire(now)
        c = min(self.available_w, self.params.rated_power_w)
        if self.limit_w is not None:
            c = min(c, self.limit_w)
        if self.hub4_limit_w is not None:
            c = min(c, self.hub4_limit_w)
        return max(c, 0.0)

    def step(self, now: float, dt: float) -> float:
        """Advance the output towards its ceiling; returns the output W."""
        target = self.ceiling_w(now)
        tau = self.params.time_constant_s
        if tau <= 0 or target < self.power_w:
            # Inverters curtail within a cycle or two; they ramp up slower.
            self.power_w = target
        else:
            self.power_w += (target - self.power_w) * (1.0 - math.exp(-dt / tau))
        self.energy_kwh += self.power_w * dt / _J_PER_KWH
        return self.power_w

    def scale_output(self, factor: float, dt: float) -> None:
        """Reduce the output produced this step by ``factor`` (frequency shift when islanded)."""
        removed = self.power_w * (1.0 - factor)
        self.power_w -= removed
        self.energy_kwh -= removed * dt / _J_PER_KWH

    def status_code(self, now: float) -> int:
        """Fronius-style ``/StatusCode``: 8 standby, 11 running MPPT, 12 throttled."""
        if self.available_w < 1.0:
            return 8
        limited = self.ceiling_w(now) < min(self.available_w, self.params.rated_power_w) - 1.0
        return 12 if limited else 11
