"""Controllable loads: water heater with coils, switched relays (the EV charger is in ``ev``)."""

from __future__ import annotations

from .params import HeaterParams, RelayParams

__all__ = ["Heater", "Relay"]

_J_PER_KWH = 3.6e6


class Heater:
    """Water heater: coils switched on/off (W), tank temperature °C, safety thermostat."""

    def __init__(self, params: HeaterParams) -> None:
        """All coils off, tank at its initial temperature."""
        self.params = params
        self.coils = [False] * len(params.coil_powers_w)
        self.temperature_c = params.initial_temperature_c
        self.power_w = 0.0
        self.energy_kwh = 0.0
        self.thermostat_open = False
        self.switches = 0

    def set_coil(self, index: int, on: bool) -> None:
        """Switch coil ``index`` (0-based); raises IndexError for a coil that does not exist."""
        if self.coils[index] != on:
            self.switches += 1
        self.coils[index] = on

    def set_power(self, watts: float) -> float:
        """Choose the coil combination with the most power not above ``watts``; returns it."""
        powers = self.params.coil_powers_w
        best_mask, best = 0, 0.0
        for mask in range(1 << len(powers)):
            total = sum(p for i, p in enumerate(powers) if mask >> i & 1)
            if best < total <= watts + 1e-9:
                best_mask, best = mask, total
        for i in range(len(powers)):
            self.set_coil(i, bool(best_mask >> i & 1))
        return best

    @property
    def level_w(self) -> float:
        """Power W the switched-on coils draw when the thermostat is closed."""
        return sum(p for p, on in zip(self.params.coil_powers_w, self.coils, strict=True) if on)

    def step(self, dt: float, powered: bool = True) -> float:
        """Advance the tank temperature (``powered`` False: bus dead); returns consumed W."""
        p = self.params
        if self.temperature_c >= p.thermostat_c:
            self.thermostat_open = True
        elif self.temperature_c <= p.thermostat_c - 5.0:
            self.thermostat_open = False
        self.power_w = 0.0 if self.thermostat_open or not powered else self.level_w
        heat_capacity = p.tank_litres * 4186.0
        loss = p.loss_w_per_k * (self.temperature_c - p.ambient_temperature_c)
        self.temperature_c += (self.power_w - loss) * dt / heat_capacity
        self.energy_kwh += self.power_w * dt / _J_PER_KWH
        return self.power_w


class Relay:
    """A switched load: ``power_w`` when on."""

    def __init__(self, params: RelayParams) -> None:
        """Off."""
        self.params = params
        self.on = False
        self.power_w = 0.0
        self.energy_kwh = 0.0

    def step(self, dt: float, powered: bool = True) -> float:
        """Count energy (``powered`` False: bus dead); returns consumed power W."""
        self.power_w = self.params.power_w if self.on and powered else 0.0
        self.energy_kwh += self.power_w * dt / _J_PER_KWH
        return self.power_w
