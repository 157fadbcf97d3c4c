"""What an emulated EV charger reads and drives: a small protocol over the EV physics.

The Wattpilot emulator serves a :class:`Wallbox`: the site's charger (``sim.wiring.SiteWallbox``,
stepped by the simulated GX) or :class:`ModelWallbox`, the same physics model stepped on a clock
by itself (tests, standalone use). Values are the charger's own, per terminal L1..L3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ...clock import Clock
from ..physics.ev import NOMINAL_V, Car, EvCharger
from ..physics.params import EvChargerParams

__all__ = ["ModelWallbox", "Wallbox", "WallboxState"]


@dataclass(frozen=True)
class WallboxState:
    """The charger now: car, setpoints, per-terminal V/A/W, energies Wh (session, total)."""

    plugged: bool
    complete: bool
    enabled: bool
    current_setpoint_a: float
    min_current_a: float
    max_current_a: float
    phases: int
    target_phases: int
    switching: bool
    voltage_v: tuple[float, float, float]
    current_a: tuple[float, float, float]
    power_w: tuple[float, float, float]
    session_wh: float
    total_wh: float


class Wallbox(Protocol):
    """A charger the emulator serves; commands raise ValueError for what it refuses."""

    def state(self) -> WallboxState:
        """The charger now."""
        ...

    def set_current(self, amps: float) -> None:
        """Offer ``amps`` A per phase."""
        ...

    def set_phases(self, phases: int) -> None:
        """Charge on 1 or 3 phases (charging pauses while switching)."""
        ...

    def set_enabled(self, on: bool) -> None:
        """Let the car charge (True) or not (False)."""
        ...


def charger_state(ev: EvCharger, now: float, voltage_v: float = NOMINAL_V) -> WallboxState:
    """A physics charger as a :class:`WallboxState` at ``now`` (its own terminals)."""
    amps = ev.phase_currents_a()
    return WallboxState(
        plugged=ev.connected,
        complete=ev.complete,
        enabled=ev.enabled,
        current_setpoint_a=ev.current_setpoint_a,
        min_current_a=ev.params.min_current_a,
        max_current_a=ev.params.max_current_a,
        phases=ev.phases,
        target_phases=ev.target_phases,
        switching=ev.switching(now),
        voltage_v=(voltage_v, voltage_v, voltage_v),
        current_a=amps,
        power_w=(amps[0] * NOMINAL_V, amps[1] * NOMINAL_V, amps[2] * NOMINAL_V),
        session_wh=ev.session_kwh * 1000.0,
        total_wh=ev.total_kwh * 1000.0,
    )


class ModelWallbox:
    """The EV physics on its own, advanced to the clock's time whenever it is read."""

    def __init__(self, clock: Clock, params: EvChargerParams | None = None) -> None:
        """A charger with ``params`` (defaults: 6..16 A, 3 phases) and no car."""
        self.clock = clock
        self.ev = EvCharger(params or EvChargerParams())
        self._t = clock.monotonic()
        self._t0 = self._t

    @property
    def now(self) -> float:
        """Seconds since this wallbox was made (the physics' time)."""
        return self._t - self._t0

    def advance(self) -> None:
        """Step the physics up to the clock's time, at most 1 s per step."""
        end = self.clock.monotonic()
        while self._t < end - 1e-9:
            dt = min(1.0, end - self._t)
            self.ev.step(self._t - self._t0, dt)
            self._t += dt

    def plug_in(self, car: Car) -> None:
        """A car arrives."""
        self.advance()
        self.ev.plug_in_car(car)

    def unplug(self) -> None:
        """The car leaves."""
        self.advance()
        self.ev.unplug()

    def state(self) -> WallboxState:
        """The charger now."""
        self.advance()
        return charger_state(self.ev, self.now)

    def set_current(self, amps: float) -> None:
        """Offer ``amps`` A per phase (clamped to the charger's range)."""
        self.advance()
        self.ev.set_current(amps)

    def set_phases(self, phases: int) -> None:
        """1 or 3 phases; ValueError otherwise."""
        self.advance()
        self.ev.set_phases(phases, self.now)

    def set_enabled(self, on: bool) -> None:
        """Start or stop charging."""
        self.advance()
        self.ev.enabled = on
