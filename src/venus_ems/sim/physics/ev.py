"""EV charging: a charger (current setpoint, 1/3 phases, start/stop) and the car plugged into it.

The charger offers ``current_setpoint_a`` on each phase it switches in (1 or 3; switching pauses
charging for ``phase_switch_pause_s``, evcharger ``/Status`` 22/23 meanwhile). The car draws at
most the offer and at most what it accepts: its on-board charger (``Car.phases``: a 1- or 2-phase
car on a 3-phase setting loads only its phases; ``max_current_a`` per phase), the battery's
acceptance tapering linearly from ``taper_start_pct`` to nothing at 100 % SoC, and optionally a
replayed power profile from data (car W against kWh delivered). It is complete at
``target_soc_pct``, or once its acceptance falls below ``stop_current_a`` (cars end a charge
when the current has tapered off).
Power per phase W = A x 230 V (+ = consuming); it ramps up over ``ramp_time_s`` and drops at once.
Energy reaches the car's battery with ``Car.efficiency`` (the rest is the car's loss, still
load for the site). The site places the per-phase power on AC-in or AC-out, starting at
``params.phase`` (the charger's L1) and rotating, so a 1-phase charge lands on that phase.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import ConfigError
from .params import EvChargerParams

__all__ = [
    "EV_CHARGED",
    "EV_CHARGING",
    "EV_CONNECTED",
    "EV_DISCONNECTED",
    "EV_SWITCHING_TO_1P",
    "EV_SWITCHING_TO_3P",
    "Car",
    "EvCharger",
]

# com.victronenergy.evcharger /Status values.
EV_DISCONNECTED = 0
EV_CONNECTED = 1
EV_CHARGING = 2
EV_CHARGED = 3
EV_SWITCHING_TO_3P = 22
EV_SWITCHING_TO_1P = 23

_J_PER_KWH = 3.6e6
NOMINAL_V = 230.0


@dataclass(frozen=True)
class Car:
    """A car: battery kWh and SoC %, on-board charger phases and A, taper, efficiency."""

    capacity_kwh: float = 60.0
    soc_pct: float = 30.0
    target_soc_pct: float = 100.0
    phases: int = 3
    max_current_a: float = 16.0
    taper_start_pct: float = 90.0
    stop_current_a: float = 1.0
    efficiency: float = 0.9
    profile: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        """Validate ranges; ConfigError names the field."""
        checks = (
            (self.capacity_kwh > 0, "car.capacity_kwh must be > 0"),
            (0 <= self.soc_pct <= 100, "car.soc_pct must be in 0..100"),
            (0 < self.target_soc_pct <= 100, "car.target_soc_pct must be in (0, 100]"),
            (self.phases in (1, 2, 3), "car.phases must be 1, 2 or 3"),
            (self.max_current_a > 0, "car.max_current_a must be > 0"),
            (0 <= self.taper_start_pct <= 100, "car.taper_start_pct must be in 0..100"),
            (self.stop_current_a >= 0, "car.stop_current_a must be >= 0"),
            (0 < self.efficiency <= 1, "car.efficiency must be in (0, 1]"),
            (all(w >= 0 and kwh >= 0 for kwh, w in self.profile), "car.profile must be >= 0"),
        )
        for ok, why in checks:
            if not ok:
                raise ConfigError(why)

    @classmethod
    def wanting(cls, energy_kwh: float, profile: tuple[tuple[float, float], ...] = ()) -> Car:
        """A car that takes exactly ``energy_kwh`` from the charger, limited only by ``profile``."""
        if not energy_kwh >= 0:
            raise ConfigError(f"energy_kwh must be >= 0, got {energy_kwh!r}")
        return cls(
            capacity_kwh=max(energy_kwh, 1e-9),
            soc_pct=0.0 if energy_kwh > 0 else 100.0,
            max_current_a=1000.0,
            taper_start_pct=100.0,
            stop_current_a=0.0,
            efficiency=1.0,
            profile=profile,
        )


class EvCharger:
    """The charger with the car it has (if any); power W (+ = consuming)."""

    def __init__(self, params: EvChargerParams) -> None:
        """No car, enabled, at the initial current and phase count."""
        self.params = params
        self.enabled = True
        self.current_setpoint_a = params.initial_current_a
        self.phases = params.initial_phases
        self.car: Car | None = None
        self.car_energy_kwh = 0.0
        self.power_w = 0.0
        self.session_kwh = 0.0
        self.session_s = 0.0
        self.total_kwh = 0.0
        self._pause_until = 0.0
        self._target_phases = params.initial_phases

    # --- the car --------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        """A car is plugged in."""
        return self.car is not None

    def plug_in_car(self, car: Car) -> None:
        """A car arrives; the session counters start from 0."""
        self.car = car
        self.car_energy_kwh = car.capacity_kwh * car.soc_pct / 100.0
        self.session_kwh = 0.0
        self.session_s = 0.0

    def plug_in(self, energy_kwh: float, taper: tuple[tuple[float, float], ...] = ()) -> None:
        """A car arrives wanting ``energy_kwh``; ``taper`` = (delivered kWh, car max W) steps."""
        self.plug_in_car(Car.wanting(energy_kwh, taper))

    def unplug(self) -> None:
        """The car leaves."""
        self.car = None
        self.power_w = 0.0

    @property
    def car_soc_pct(self) -> float | None:
        """The plugged car's state of charge %, None without a car."""
        car = self.car
        return None if car is None else 100.0 * self.car_energy_kwh / car.capacity_kwh

    @property
    def complete(self) -> bool:
        """The car is done: at its target SoC, or its acceptance fell below its stop current."""
        car = self.car
        if car is None:
            return False
        full = self.car_energy_kwh >= car.capacity_kwh * car.target_soc_pct / 100.0 - 1e-9
        return full or self._acceptance_a() < car.stop_current_a

    def _acceptance_a(self) -> float:
        """Per-phase A the car's battery takes now: its maximum, tapering above taper_start."""
        car = self.car
        if car is None:
            return 0.0
        soc = self.car_soc_pct or 0.0
        amps = car.max_current_a
        if soc > car.taper_start_pct:
            amps *= max(100.0 - soc, 0.0) / max(100.0 - car.taper_start_pct, 1e-9)
        return amps

    @property
    def phases_in_use(self) -> int:
        """Phases the car loads: the charger's phases, at most the car's on-board ones."""
        car = self.car
        return self.phases if car is None else min(self.phases, car.phases)

    # --- commands -------------------------------------------------------------------------
    def set_current(self, amps: float) -> None:
        """Requested current A per phase, clamped to the charger's range."""
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
    def target_phases(self) -> int:
        """The phase count the charger is on or switching to."""
        return self._target_phases

    def switching(self, now: float) -> bool:
        """Whether the charger is pausing to switch phases at ``now``."""
        return now < self._pause_until

    # --- physics --------------------------------------------------------------------------
    def _car_limit_w(self, n: int) -> float:
        """What the car accepts now W on ``n`` phases: on-board charger, SoC taper, profile."""
        car = self.car
        if car is None or self.complete:
            return 0.0
        amps = self._acceptance_a()
        limit = amps * NOMINAL_V * n
        for kwh, watts in car.profile:
            if self.session_kwh >= kwh - 1e-12:
                limit = min(amps * NOMINAL_V * n, watts)
        return limit

    def step(self, now: float, dt: float, powered: bool = True) -> float:
        """Advance ``dt`` s (``powered`` False: its AC bus is dead); returns consumed W."""
        if now >= self._pause_until and self.phases != self._target_phases:
            self.phases = self._target_phases
        car = self.car
        target = 0.0
        if powered and car is not None and self.enabled and not self.switching(now):
            n = self.phases_in_use
            target = min(self.current_setpoint_a * NOMINAL_V * n, self._car_limit_w(n))
            room_kwh = car.capacity_kwh * car.target_soc_pct / 100.0 - self.car_energy_kwh
            target = min(target, max(room_kwh, 0.0) / car.efficiency * _J_PER_KWH / dt)
        ramp = self.params.ramp_time_s
        if ramp <= 0 or target < self.power_w:
            self.power_w = target
        else:
            rate = self.params.max_current_a * NOMINAL_V * 3 / ramp
            self.power_w = min(target, self.power_w + rate * dt)
        energy = self.power_w * dt / _J_PER_KWH
        self.session_kwh += energy
        self.total_kwh += energy
        if car is not None:
            self.car_energy_kwh = min(
                self.car_energy_kwh + energy * car.efficiency, car.capacity_kwh
            )
            self.session_s += dt
        return self.power_w

    def phase_currents_a(self) -> tuple[float, float, float]:
        """Current A on the charger's L1, L2, L3 (its own terminals, before rotation)."""
        n = self.phases_in_use
        amps = self.power_w / (NOMINAL_V * n) if self.power_w > 0 else 0.0
        return (amps, amps if n >= 2 else 0.0, amps if n >= 3 else 0.0)

    def site_phase_w(self, site_phases: int) -> list[float]:
        """Power W per site phase: the charger's L1 on ``params.phase``, then rotating."""
        out = [0.0] * site_phases
        if site_phases == 1:
            out[0] = self.power_w
            return out
        for k, amps in enumerate(self.phase_currents_a()):
            out[(self.params.phase - 1 + k) % site_phases] += amps * NOMINAL_V
        return out

    def status(self, now: float) -> int:
        """``/Status`` of com.victronenergy.evcharger."""
        if self.car is None:
            return EV_DISCONNECTED
        if self.switching(now):
            return EV_SWITCHING_TO_1P if self._target_phases == 1 else EV_SWITCHING_TO_3P
        if self.complete:
            return EV_CHARGED
        return EV_CHARGING if self.power_w > 0 else EV_CONNECTED

    @property
    def current_a(self) -> float:
        """Actual current per active phase A."""
        return self.phase_currents_a()[0]
