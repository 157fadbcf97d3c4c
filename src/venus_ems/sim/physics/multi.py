"""The Multi (one inverter/charger per phase): lagging conversion power, losses, low-power error.

Per phase, ``conv_w`` is the AC power flowing into the converter (+ = charging the battery,
- = inverting); ``acin = acout_net + conv + idle`` while grid-connected.
"""

from __future__ import annotations

import math
import random

from .params import MultiParams

__all__ = [
    "MODE_CHARGER_ONLY",
    "MODE_INVERTER_ONLY",
    "MODE_OFF",
    "MODE_ON",
    "Multi",
    "to_conv",
    "to_dc",
]

# vebus /Mode values.
MODE_CHARGER_ONLY = 1
MODE_INVERTER_ONLY = 2
MODE_ON = 3
MODE_OFF = 4

_J_PER_KWH = 3.6e6


def to_dc(conv_w: float, efficiency: float) -> float:
    """DC power W (+ = into the battery bus) for an AC-side conversion power ``conv_w``."""
    return conv_w * efficiency if conv_w >= 0 else conv_w / efficiency


def to_conv(dc_w: float, efficiency: float) -> float:
    """Inverse of :func:`to_dc`."""
    return dc_w / efficiency if dc_w >= 0 else dc_w * efficiency


class Multi:
    """Inverter/charger dynamics: ``conv_w`` follows ``target_w`` with a first-order lag."""

    def __init__(self, params: MultiParams, rng: random.Random) -> None:
        """On, passthrough."""
        self.params = params
        self._rng = rng
        n = params.phases
        self.mode = MODE_ON
        self.starved = False
        """Islanded on an empty battery: shut down (no output, no no-load loss) for this step."""
        self.target_w = [0.0] * n
        self._lag_w = [0.0] * n
        self._noise = [0.0] * n
        self.conv_w = [0.0] * n
        self.dc_w = [0.0] * n
        self.loss_w = 0.0
        self.regulating = False
        self._alpha_dt = -1.0
        self._alpha = 0.0
        self._noise_a = 0.0
        self.energy_acin_to_dc_kwh = 0.0
        self.energy_dc_to_acout_kwh = 0.0

    @property
    def grid_connected(self) -> bool:
        """The AC-in relay is closed (mode on or charger only)."""
        return self.mode in (MODE_ON, MODE_CHARGER_ONLY)

    @property
    def output_live(self) -> bool:
        """AC-out has voltage."""
        return self.mode != MODE_OFF

    def _coefficients(self, dt: float) -> None:
        if dt != self._alpha_dt:
            tau = self.params.time_constant_s
            self._alpha = 1.0 if tau <= 0 else 1.0 - math.exp(-dt / tau)
            self._noise_a = math.exp(-dt / self.params.low_power_correlation_s)
            self._alpha_dt = dt

    def advance(self, dt: float) -> None:
        """Move the conversion power towards the targets (grid-connected modes)."""
        self._coefficients(dt)
        p = self.params
        if self.mode == MODE_OFF:
            for i in range(p.phases):
                self._lag_w[i] = self.conv_w[i] = 0.0
            return
        alpha = self._alpha
        amp0 = p.low_power_error_w
        a = self._noise_a
        b = math.sqrt(1.0 - a * a)
        gauss = self._rng.gauss
        for i in range(p.phases):
            lag = self._lag_w[i] + (self.target_w[i] - self._lag_w[i]) * alpha
            self._lag_w[i] = lag
            if self.regulating and amp0 > 0:
                self._noise[i] = a * self._noise[i] + b * gauss(0.0, 1.0)
                err = amp0 * math.exp(-abs(self.target_w[i]) / p.low_power_scale_w) * self._noise[i]
            else:
                err = 0.0
            self.conv_w[i] = lag + err

    def island(self, acout_net_w: list[float]) -> None:
        """Inverter-only mode: the Multi alone balances AC-out (no lag, no grid)."""
        for i, w in enumerate(acout_net_w):
            self.conv_w[i] = self._lag_w[i] = self.target_w[i] = -w

    def dc_total(self) -> float:
        """DC power W into the battery bus (+ = charging), idle loss excluded."""
        eta = self.params.efficiency
        total = 0.0
        for i, c in enumerate(self.conv_w):
            d = c * eta if c >= 0 else c / eta
            self.dc_w[i] = d
            total += d
        return total

    def clamp_dc(self, dc_target: float) -> None:
        """Scale the charging (or inverting) phases so the DC total becomes ``dc_target`` W."""
        eta = self.params.efficiency
        total = self.dc_total()
        if abs(total - dc_target) < 1e-9:
            return
        charging = total > dc_target
        side = sum(d for d in self.dc_w if (d > 0) == charging and d != 0.0)
        if side == 0.0:
            return
        factor = min(max(1.0 - (total - dc_target) / side, 0.0), 1.0)
        for i, d in enumerate(self.dc_w):
            if d != 0.0 and (d > 0) == charging:
                self.dc_w[i] = d * factor
                self.conv_w[i] = to_conv(self.dc_w[i], eta)
                self._lag_w[i] = (
                    min(self._lag_w[i], self.conv_w[i])
                    if charging
                    else max(self._lag_w[i], self.conv_w[i])
                )

    def idle_w(self) -> float:
        """No-load loss W per phase unit (0 when off)."""
        return self.params.idle_power_w if self.mode != MODE_OFF and not self.starved else 0.0

    def settle(self, dt: float) -> float:
        """Count energies after the DC solve; returns the conversion loss W (idle included)."""
        eta = self.params.efficiency
        loss = 0.0
        for c in self.conv_w:
            d = c * eta if c >= 0 else c / eta
            loss += c - d
            if c >= 0:
                self.energy_acin_to_dc_kwh += c * dt / _J_PER_KWH
            else:
                self.energy_dc_to_acout_kwh -= d * dt / _J_PER_KWH
        loss += self.idle_w() * self.params.phases
        self.loss_w = loss
        return loss
