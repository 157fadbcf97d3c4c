"""Battery with BMS: stored energy, SoC, voltage versus SoC, losses and CCL/DCL/CVL/allow flags."""

from __future__ import annotations

import itertools
import math

from .params import BatteryParams

__all__ = ["Battery"]

_J_PER_KWH = 3.6e6


class Battery:
    """A battery bank: power + = charging (W at the terminals); energy in J internally."""

    def __init__(self, params: BatteryParams) -> None:
        """Start at ``params.initial_soc``."""
        self.params = params
        self._capacity_j = params.capacity_wh * 3600.0
        self.energy_j = self._capacity_j * params.initial_soc / 100.0
        self.power_w = 0.0
        self.current_a = 0.0
        self.voltage_v = self.ocv()
        self.loss_w = 0.0
        self.temperature_c = params.ambient_temperature_c
        self.charged_kwh = 0.0
        self.discharged_kwh = 0.0
        self.ccl_exceeded_s = 0.0
        self.dcl_exceeded_s = 0.0
        # Fault knobs: None = the BMS decides.
        self.allow_charge_override: bool | None = None
        self.allow_discharge_override: bool | None = None
        self.ccl_override_a: float | None = None
        self.dcl_override_a: float | None = None

    @property
    def soc(self) -> float:
        """State of charge in % (0..100)."""
        return 100.0 * self.energy_j / self._capacity_j

    def set_soc(self, soc: float) -> None:
        """Jump to ``soc`` % (scenario set-up; not a physical process)."""
        self.energy_j = self._capacity_j * min(max(soc, 0.0), 100.0) / 100.0
        self.voltage_v = self.ocv()

    def ocv(self) -> float:
        """Open-circuit voltage in V at the present SoC (linear between curve points)."""
        soc = self.soc
        pts = self.params.ocv_curve
        if soc <= pts[0][0]:
            return pts[0][1]
        for (s0, v0), (s1, v1) in itertools.pairwise(pts):
            if soc <= s1:
                return v0 + (v1 - v0) * (soc - s0) / (s1 - s0)
        return pts[-1][1]

    @property
    def allow_charge(self) -> bool:
        """BMS allows charging (false at 100 % or when forced off)."""
        if self.allow_charge_override is not None:
            return self.allow_charge_override
        return self.soc < 100.0

    @property
    def allow_discharge(self) -> bool:
        """BMS allows discharging (false when empty or forced off)."""
        if self.allow_discharge_override is not None:
            return self.allow_discharge_override
        return self.soc > 0.0

    @property
    def ccl_a(self) -> float:
        """Charge current limit A, tapering linearly to 0 between the taper SoC and 100 %."""
        if self.ccl_override_a is not None:
            return max(self.ccl_override_a, 0.0)
        p = self.params
        soc = self.soc
        if soc <= p.ccl_taper_start_soc:
            return p.max_charge_current_a
        span = 100.0 - p.ccl_taper_start_soc
        frac = (100.0 - soc) / span if span > 0 else 0.0
        # A small floor keeps top balancing possible until the BMS says full.
        return max(
            p.max_charge_current_a * frac, 0.05 * p.max_charge_current_a if soc < 100 else 0.0
        )

    @property
    def dcl_a(self) -> float:
        """Discharge current limit A, tapering linearly to 0 below the taper SoC."""
        if self.dcl_override_a is not None:
            return max(self.dcl_override_a, 0.0)
        p = self.params
        if p.dcl_taper_end_soc <= 0 or self.soc >= p.dcl_taper_end_soc:
            return p.max_discharge_current_a
        return p.max_discharge_current_a * max(self.soc, 0.0) / p.dcl_taper_end_soc

    @property
    def cvl_v(self) -> float:
        """Charge voltage limit in V."""
        return self.params.max_charge_voltage_v

    def charge_limit_w(self) -> float:
        """BMS charge power limit W (CCL x voltage, 0 when charging is not allowed)."""
        return self.ccl_a * self.voltage_v if self.allow_charge else 0.0

    def discharge_limit_w(self) -> float:
        """BMS discharge power limit W (DCL x voltage, 0 when discharging is not allowed)."""
        return self.dcl_a * self.voltage_v if self.allow_discharge else 0.0

    def hard_charge_w(self, dt: float) -> float:
        """Most terminal power W the cells can physically take in ``dt`` s without passing 100 %."""
        return max(self._capacity_j - self.energy_j, 0.0) / dt

    def hard_discharge_w(self, dt: float) -> float:
        """Most terminal power W deliverable in ``dt`` s without passing 0 % (losses included)."""
        return 0.5 * max(self.energy_j, 0.0) / dt

    def _current_for(self, power_w: float, ocv: float) -> float:
        r = self.params.internal_resistance_ohm
        if r <= 0:
            return power_w / ocv
        disc = ocv * ocv + 4.0 * r * power_w
        return (-ocv + math.sqrt(max(disc, 0.0))) / (2.0 * r)

    def apply(self, power_w: float, dt: float) -> float:
        """Move ``power_w`` (+ = charging) through the terminals for ``dt`` s; returns loss W."""
        p = self.params
        ocv = self.ocv()
        current = self._current_for(power_w, ocv)
        loss = current * current * p.internal_resistance_ohm
        if power_w > 0:
            loss += (1.0 - p.charge_efficiency) * power_w
        self.energy_j += (power_w - loss) * dt
        self.power_w = power_w
        self.current_a = current
        self.voltage_v = ocv + current * p.internal_resistance_ohm
        self.loss_w = loss
        if power_w >= 0:
            self.charged_kwh += power_w * dt / _J_PER_KWH
            if current > self.ccl_a + 0.5:
                self.ccl_exceeded_s += dt
        else:
            self.discharged_kwh -= power_w * dt / _J_PER_KWH
            if -current > self.dcl_a + 0.5 or not self.allow_discharge:
                self.dcl_exceeded_s += dt
        target = p.ambient_temperature_c + p.thermal_resistance_k_per_w * loss
        self.temperature_c += (target - self.temperature_c) * min(
            dt / p.thermal_time_constant_s, 1.0
        )
        return loss
