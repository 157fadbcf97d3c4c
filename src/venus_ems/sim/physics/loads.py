"""Controllable loads: EV charger with car sessions, water heater with coils, switched relays."""

from __future__ import annotations

from .params import EvChargerParams, HeaterParams, RelayParams

__all__ = [
    "EV_CHARGED",
    "EV_CHARGING",
    "EV_CONNECTED",
    "EV_DISCONNECTED",
    "EvCharger",
    "Heater",
    "Relay",
]

# com.victronenergy.evcharger /Status values.
EV_DISCONNECTED = 0
EV_CONNECTED = 1
EV_CHARGING = 2
EV_CHARGED = 3
EV_SWITCHING_TO_1P = 22
EV_SWITCHING_TO_3P = 23

_J_PER_KWH = 3.6e6
_NOMINAL_V = 230.0


class EvCharger:
    """EV charger: power W (+ = consuming) = current x voltage x phases, limited by the car."""

    def __init__(self, params: EvChargerParams) -> None:
        """No car, enabled, at the initial current and phase count."""
        self.params = params
        self.enabled = True
        self.current_setpoint_a = params.initial_current_a
        self.phases = params.initial_phases
        self.connected = False
        self.power_w = 0.0
        self.energy_needed_kwh = 0.0
        self.session_kwh = 0.0
        self.session_s = 0.0
        self.total_kwh = 0.0
        self._taper: tuple[tuple[float, float], ...] = ()
        self._pause_until = 0.0
        self._target_phases = params.initial_phases

    def plug_in(self, energy_kwh: float, taper: tuple[tuple[float, float], ...] = ()) -> None:
        """A car arrives wanting ``energy_kwh``; ``taper`` = (delivered kWh, car max W) steps."""
        self.connected = True
        self.energy_needed_kwh = max(energy_kwh, 0.0)
        self._taper = taper
        self.session_kwh = 0.0
        self.session_s = 0.0

    def unplug(self) -> None:
        """The car leaves."""
        self.connected = False
        self.power_w = 0.0

    def set_current(self, amps: float) -> None:
        """Requested current A, clamped to the charger's range."""
        p = self.params
        self.current_setpoint_a = min(max(float(amps), p.min_current_a), p.max_current_a)

    def set_phases(self, phases: int, now: float) -> None:
        """Switch between 1 and 3 phases; charging pauses for ``phase_switch_pause_s``."""
        if phases not in (1, 3):
            raise ValueError(f"EV charger phases must be 1 or 3, got {phases!r}")
        if phases != self._target_phases:
            self._target_phases = phases
            self._pause_until = now + self.params.phase_switch_pause_s
            self.power_w = 0.0

    @property
    def complete(self) -> bool:
        """The car has what it wanted."""
        return self.connected and self.session_kwh >= self.energy_needed_kwh - 1e-9

    def _car_max_w(self) -> float:
        limit = float("inf")
        for kwh, watts in self._taper:
            if self.session_kwh >= kwh:
                limit = watts
        return limit

    def step(self, now: float, dt: float, powered: bool = True) -> float:
        """Advance the charger (``powered`` False: its AC bus is dead); returns consumed W."""
        if now >= self._pause_until and self.phases != self._target_phases:
            self.phases = self._target_phases
        paused = now < self._pause_until
        target = 0.0
        if powered and self.connected and self.enabled and not paused and not self.complete:
            target = self.current_setpoint_a * _NOMINAL_V * self.phases
            target = min(target, self._car_max_w())
            remaining_w = (self.energy_needed_kwh - self.session_kwh) * _J_PER_KWH / dt
            target = min(target, max(remaining_w, 0.0))
        ramp = self.params.ramp_time_s
        if ramp <= 0 or target < self.power_w:
            self.power_w = target
        else:
            rate = self.params.max_current_a * _NOMINAL_V * 3 / ramp
            self.power_w = min(target, self.power_w + rate * dt)
        energy = self.power_w * dt / _J_PER_KWH
        self.session_kwh += energy
        self.total_kwh += energy
        if self.connected:
            self.session_s += dt
        return self.power_w

    def status(self, now: float) -> int:
        """``/Status`` of com.victronenergy.evcharger."""
        if not self.connected:
            return EV_DISCONNECTED
        if now < self._pause_until:
            return EV_SWITCHING_TO_1P if self._target_phases == 1 else EV_SWITCHING_TO_3P
        if self.complete:
            return EV_CHARGED
        return EV_CHARGING if self.power_w > 0 else EV_CONNECTED

    @property
    def current_a(self) -> float:
        """Actual current per active phase A."""
        return self.power_w / (_NOMINAL_V * self.phases) if self.power_w > 0 else 0.0


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
