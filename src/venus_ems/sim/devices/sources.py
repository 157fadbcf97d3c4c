"""What an emulated meter or switch measures: small protocols plus in-memory implementations.

The emulators read these objects at request time and never keep their own copy of a measured
value, so whatever implements the protocol (the site physics, or the in-memory classes below in
tests and the demo) is the single source of truth.

Signs follow the Victron conventions: a meter channel's ``power_w`` is + when energy flows in the
CT's forward direction (import for a grid meter), a switch's ``power_w`` is + when the load behind
it consumes. Energy counters are cumulative watt-hours and never decrease.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

from ...clock import Clock, RealClock

__all__ = [
    "MemorySwitch",
    "MeterSource",
    "PhaseReading",
    "StaticMeter",
    "SwitchReading",
    "SwitchSource",
]


@dataclass(frozen=True)
class PhaseReading:
    """One CT channel or phase: W (+ = forward/import), V, A (unsigned), pf, Hz, var, Wh."""

    power_w: float
    voltage_v: float = 230.0
    current_a: float = 0.0
    power_factor: float = 1.0
    frequency_hz: float = 50.0
    reactive_var: float = 0.0
    energy_forward_wh: float = 0.0
    energy_reverse_wh: float = 0.0

    @classmethod
    def of(
        cls,
        power_w: float,
        *,
        voltage_v: float = 230.0,
        power_factor: float = 1.0,
        frequency_hz: float = 50.0,
        energy_forward_wh: float = 0.0,
        energy_reverse_wh: float = 0.0,
    ) -> PhaseReading:
        """Reading with current and reactive power derived from W, V and pf; ValueError if bad."""
        if voltage_v < 0 or not -1.0 <= power_factor <= 1.0:
            raise ValueError(f"voltage {voltage_v} V must be >= 0 and pf {power_factor} in [-1, 1]")
        pf = abs(power_factor)
        apparent = abs(power_w) / pf if pf > 0 else 0.0
        current = apparent / voltage_v if voltage_v > 0 else 0.0
        reactive = math.copysign(math.sqrt(max(apparent**2 - power_w**2, 0.0)), power_w or 1.0)
        return cls(
            power_w=power_w,
            voltage_v=voltage_v,
            current_a=current,
            power_factor=power_factor,
            frequency_hz=frequency_hz,
            reactive_var=reactive,
            energy_forward_wh=energy_forward_wh,
            energy_reverse_wh=energy_reverse_wh,
        )

    @property
    def apparent_va(self) -> float:
        """Apparent power in VA (V x A, unsigned)."""
        return self.voltage_v * self.current_a


@runtime_checkable
class MeterSource(Protocol):
    """An energy meter with one or more channels (phases A, B, C or CT channels 0, 1)."""

    def read(self) -> Sequence[PhaseReading]:
        """The channels as measured now; the length never changes."""
        ...


@dataclass(frozen=True)
class SwitchReading:
    """A relay with power meter: on/off, W (+ = load consumes), V, A, pf, Hz, Wh counters, degC."""

    output: bool
    power_w: float = 0.0
    voltage_v: float = 230.0
    current_a: float = 0.0
    power_factor: float = 1.0
    frequency_hz: float = 50.0
    energy_wh: float = 0.0
    returned_energy_wh: float = 0.0
    temperature_c: float = 30.0


@runtime_checkable
class SwitchSource(Protocol):
    """A switched (or always-on metered) output, such as a plug, a 1PM or a PM Mini."""

    def read(self) -> SwitchReading:
        """The state and measurements now."""
        ...

    def set_output(self, on: bool) -> None:
        """Switch the relay; the next ``read()`` shows the new state."""
        ...


class _Integrator:
    """Cumulative energy of a power that changes in steps, on a clock."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._t = clock.monotonic()

    def step(self) -> float:
        """Hours elapsed since the previous call."""
        now = self._clock.monotonic()
        dt_h = max(now - self._t, 0.0) / 3600.0
        self._t = now
        return dt_h


class StaticMeter:
    """A meter with values set by hand; its energy counters follow the power on ``clock``."""

    def __init__(
        self,
        channels: int | Sequence[PhaseReading] = 1,
        *,
        clock: Clock | None = None,
        integrate: bool = True,
    ) -> None:
        """``channels``: a count (all 0 W) or initial readings; ValueError if there are none."""
        if isinstance(channels, int):
            initial: list[PhaseReading] = [PhaseReading.of(0.0) for _ in range(channels)]
        else:
            initial = list(channels)
        if not initial:
            raise ValueError("a meter needs at least one channel")
        self._channels = initial
        self._integrate = integrate
        self._clock = clock if clock is not None else RealClock()
        self._integrator = _Integrator(self._clock)

    def _accrue(self) -> None:
        dt_h = self._integrator.step()
        if not self._integrate or dt_h == 0.0:
            return
        self._channels = [
            replace(
                ch,
                energy_forward_wh=ch.energy_forward_wh + max(ch.power_w, 0.0) * dt_h,
                energy_reverse_wh=ch.energy_reverse_wh + max(-ch.power_w, 0.0) * dt_h,
            )
            for ch in self._channels
        ]

    def read(self) -> tuple[PhaseReading, ...]:
        """Current readings, counters brought up to the clock's now."""
        self._accrue()
        return tuple(self._channels)

    def set_power(self, channel: int, power_w: float, *, power_factor: float | None = None) -> None:
        """Set one channel's W (+ = forward), re-deriving A and var; IndexError if no channel."""
        self._accrue()
        old = self._channels[channel]
        self._channels[channel] = PhaseReading.of(
            power_w,
            voltage_v=old.voltage_v,
            power_factor=old.power_factor if power_factor is None else power_factor,
            frequency_hz=old.frequency_hz,
            energy_forward_wh=old.energy_forward_wh,
            energy_reverse_wh=old.energy_reverse_wh,
        )

    def set_reading(self, channel: int, reading: PhaseReading) -> None:
        """Replace one channel's reading (counters included); IndexError if no such channel."""
        self._accrue()
        self._channels[channel] = reading


class MemorySwitch:
    """An in-memory relay with ``load_w`` behind it (negative = a generator feeding back)."""

    def __init__(
        self,
        *,
        load_w: float = 0.0,
        on: bool = False,
        voltage_v: float = 230.0,
        power_factor: float = 1.0,
        frequency_hz: float = 50.0,
        temperature_c: float = 30.0,
        energy_wh: float = 0.0,
        returned_energy_wh: float = 0.0,
        clock: Clock | None = None,
    ) -> None:
        """Initial state; counters in Wh; ValueError on a pf outside [-1, 1] or negative volts."""
        if voltage_v < 0 or not -1.0 <= power_factor <= 1.0:
            raise ValueError(f"voltage {voltage_v} V must be >= 0 and pf {power_factor} in [-1, 1]")
        self._on = on
        self._load_w = load_w
        self.voltage_v = voltage_v
        self.power_factor = power_factor
        self.frequency_hz = frequency_hz
        self.temperature_c = temperature_c
        self._energy_wh = energy_wh
        self._returned_wh = returned_energy_wh
        self._integrator = _Integrator(clock if clock is not None else RealClock())
        self.switch_count = 0

    def _accrue(self) -> None:
        dt_h = self._integrator.step()
        power = self._power()
        self._energy_wh += max(power, 0.0) * dt_h
        self._returned_wh += max(-power, 0.0) * dt_h

    def _power(self) -> float:
        return self._load_w if self._on else 0.0

    @property
    def load_w(self) -> float:
        """Power the load takes when the relay is on, W (+ = consuming)."""
        return self._load_w

    @load_w.setter
    def load_w(self, value: float) -> None:
        self._accrue()
        self._load_w = value

    def read(self) -> SwitchReading:
        """State and measurements now, counters brought up to the clock's now."""
        self._accrue()
        power = self._power()
        pf = abs(self.power_factor)
        current = abs(power) / (self.voltage_v * pf) if self.voltage_v > 0 and pf > 0 else 0.0
        return SwitchReading(
            output=self._on,
            power_w=power,
            voltage_v=self.voltage_v,
            current_a=current,
            power_factor=self.power_factor,
            frequency_hz=self.frequency_hz,
            energy_wh=self._energy_wh,
            returned_energy_wh=self._returned_wh,
            temperature_c=self.temperature_c,
        )

    def set_output(self, on: bool) -> None:
        """Switch the relay (counted in ``switch_count`` when the state changes)."""
        self._accrue()
        if on != self._on:
            self.switch_count += 1
        self._on = on
