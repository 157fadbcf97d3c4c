"""Small device protocols, the typed readings they return, and how a device is reached.

These protocols are the seam between features and drivers: a feature is written against
``PhaseMeter``, ``PowerMeter``, ``Switch`` or ``EvCharger`` (each also a ``Device`` with an
identity) and opens
its device through ``devices.registry`` by the driver name its config gives; it never imports
a driver family. Units are in the names (W, V, A, Hz, kWh, Wh). Every reading carries
``taken_at``: the clock's ``monotonic()`` seconds when the answer arrived, so a caller can tell
a stale value from a fresh one and treat it as missing, never as 0. Signs are the device's own
metering direction (+ = energy flowing in the meter's forward direction: import through a grid
CT, consumption through a plug); a feature maps them onto Victron's conventions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from types import MappingProxyType, TracebackType
from typing import Literal, Protocol, runtime_checkable

__all__ = [
    "CarState",
    "ChargeForce",
    "Connection",
    "Device",
    "DeviceIdentity",
    "EvCharger",
    "EvChargerReading",
    "EvPhase",
    "InverterReading",
    "LimitState",
    "LimitStatus",
    "LoadMode",
    "LoadReading",
    "MeterReading",
    "PersistentDevice",
    "PhaseMeter",
    "PhaseReading",
    "PowerLimiter",
    "PowerMeter",
    "PowerReading",
    "SteppedLoad",
    "Switch",
    "is_fresh",
]


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    """What a device says about itself: product name, model code, serial, firmware.

    ``firmware`` is the version a user reads (``1.1.0``); ``firmware_build`` the full build id
    when the device reports one (``20231219-134001/1.1.0-g34b5d4f``), else empty.
    ``generation`` is the API generation of families that have several (Shelly 1..4), else 0.
    """

    product_name: str
    model: str
    serial: str
    firmware: str
    generation: int = 0
    firmware_build: str = ""


@dataclass(frozen=True, slots=True)
class Connection:
    """Where a device is and how to log in: what the config gives every driver.

    ``host`` is ``name``, ``ip`` or ``host:port`` (a driver adds its scheme); ``timeout_s``
    bounds every single request. ``options`` holds driver-specific settings (e.g. the Shelly
    ``generation``); a driver rejects the ones it does not know with ConfigError. The password
    is left out of ``repr`` so that a logged connection never shows it.
    """

    host: str
    timeout_s: float = 2.0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    options: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class PhaseReading:
    """One CT channel: W (+ = forward), V, A (signed like the power), pf, Hz, kWh counters."""

    power_w: float
    voltage_v: float | None = None
    current_a: float | None = None
    power_factor: float | None = None
    frequency_hz: float | None = None
    energy_forward_kwh: float | None = None
    energy_reverse_kwh: float | None = None

    def inverted(self) -> PhaseReading:
        """The channel seen with its CT turned round: W and A negated, kWh counters swapped.

        The power factor passes through: its sign is not a direction on every model.
        """
        return replace(
            self,
            power_w=-self.power_w + 0.0,
            current_a=None if self.current_a is None else -self.current_a + 0.0,
            energy_forward_kwh=self.energy_reverse_kwh,
            energy_reverse_kwh=self.energy_forward_kwh,
        )


@dataclass(frozen=True, slots=True)
class MeterReading:
    """All channels of an energy meter, in device order, taken at ``taken_at`` (monotonic s)."""

    channels: tuple[PhaseReading, ...]
    taken_at: float

    @property
    def total_power_w(self) -> float:
        """Sum of the channels' power in W (+ = forward)."""
        return math.fsum(ch.power_w for ch in self.channels) + 0.0

    @property
    def frequency_hz(self) -> float | None:
        """Grid frequency in Hz from the first channel that reports one, else None."""
        return next((ch.frequency_hz for ch in self.channels if ch.frequency_hz is not None), None)


@dataclass(frozen=True, slots=True)
class PowerReading:
    """A metered output (plug, 1PM, PM Mini) at ``taken_at`` (monotonic s).

    ``power_w`` is + when the load side consumes; when ``signed`` is False the device reports
    the magnitude only. ``energy_forward_kwh`` is the energy consumed through the meter and
    ``energy_reverse_kwh`` the energy fed back (None when the device does not count it
    separately). ``last_minutes_wh`` is the energy of the last whole minutes, newest first.
    """

    power_w: float
    taken_at: float
    signed: bool = False
    voltage_v: float | None = None
    current_a: float | None = None
    power_factor: float | None = None
    frequency_hz: float | None = None
    energy_forward_kwh: float | None = None
    energy_reverse_kwh: float | None = None
    last_minutes_wh: tuple[float, ...] = ()
    output: bool | None = None
    temperature_c: float | None = None

    @property
    def energy_total_kwh(self) -> float | None:
        """All energy that passed the meter in either direction (kWh), None if unknown."""
        if self.energy_forward_kwh is None:
            return None
        return self.energy_forward_kwh + (self.energy_reverse_kwh or 0.0)


class LoadMode(str, Enum):
    """Who decides a stepped load's power: we (``remote``) or a switch on the device."""

    REMOTE = "remote"
    """The device applies the steps we command (its normal mode)."""
    FORCED_ON = "forced_on"
    """A manual override on the device runs it at full power whatever we command."""


@dataclass(frozen=True, slots=True)
class LoadReading:
    """A stepped load (heater) at ``taken_at`` (monotonic s).

    ``power_w`` is what the device reports it applies now (W, + = consuming; for a heating rod
    the power of the outputs that are on, read back from its output pins). ``commanded_w`` is
    the last step we commanded (None before the first command). ``temperature_c`` is None when
    the device has no sensor or its reading failed (never 0, never an error value); the reason
    is then in ``faults``. ``device_heartbeat`` is a counter the device advances by itself
    (liveness), None if it has none.
    """

    power_w: float
    taken_at: float
    mode: LoadMode = LoadMode.REMOTE
    commanded_w: float | None = None
    temperature_c: float | None = None
    device_heartbeat: int | None = None
    faults: tuple[str, ...] = ()


CarState = Literal["no_car", "waiting", "charging", "complete", "error", "unknown"]
"""What the charger sees of the car: none plugged, plugged and waiting (not drawing: paused,
not allowed, or full), drawing current, finished (the car stopped taking), error, unknown."""

ChargeForce = Literal["neutral", "off", "on"]
"""Who decides whether to charge: the charger's own logic (neutral), forced off, forced on."""


@dataclass(frozen=True, slots=True)
class EvPhase:
    """One phase at a charger's output: V, A (>= 0, drawn by the car), W (+ = consuming), pf."""

    voltage_v: float | None = None
    current_a: float | None = None
    power_w: float | None = None
    power_factor: float | None = None


@dataclass(frozen=True, slots=True)
class EvChargerReading:
    """An EV charger's state at ``taken_at`` (monotonic s): the car, the setpoints, the meters.

    Currents are per phase (A); ``set_current_a`` is what the charger offers on *each* phase in
    use, within ``min_current_a``..``max_current_a``. ``phases_selected`` is 1 or 3 when the
    phase count is forced, None when the charger chooses (auto). ``phases_in_use`` counts the
    phases that carry current now (from the per-phase currents, 0 when not charging), so a
    single-phase car on a three-phase setting shows 1. ``phase_switching`` is True while the
    charger pauses to switch phases. Powers are W (+ = consuming), energies kWh; ``session``
    counts since the car was plugged in. Everything the charger does not report is None.
    """

    car: CarState
    force: ChargeForce
    set_current_a: float
    min_current_a: float
    max_current_a: float
    phases_selected: int | None
    phases_in_use: int
    phase_switching: bool
    phases: tuple[EvPhase, EvPhase, EvPhase]
    power_w: float
    session_energy_kwh: float | None
    taken_at: float
    total_energy_kwh: float | None = None
    charging_allowed: bool | None = None
    offered_current_a: float | None = None
    error_code: int | None = None
    reason_code: int | None = None

    @property
    def plugged(self) -> bool:
        """A car is connected (waiting, charging or complete)."""
        return self.car in ("waiting", "charging", "complete")

    @property
    def charging(self) -> bool:
        """The car is drawing current now."""
        return self.car == "charging"

    @property
    def currents_a(self) -> tuple[float | None, float | None, float | None]:
        """Current A on L1, L2, L3 (None where the charger does not measure it)."""
        return (self.phases[0].current_a, self.phases[1].current_a, self.phases[2].current_a)


LimitState = Literal["Ok", "Pending", "Failure", "Unknown"]
"""Life cycle of a limit command at the gateway: Pending, then Ok (acknowledged) or Failure."""


@dataclass(frozen=True, slots=True)
class InverterReading:
    """One micro-inverter as its gateway last polled it; ``None`` = not reported, never 0.

    ``data_at`` is when the gateway last heard from the inverter (monotonic s: ``taken_at``
    minus the data age it reports); values are as of then. AC power W is + when producing;
    DC power W, current A and energy kWh are + when drawn from the DC side (battery or panels),
    summed over the ``dc_inputs``; ``dc_voltage_v`` is input 0's; ``yield_*`` is the AC side.
    ``limit_pct`` is the limit in force in % of ``max_power_w`` (the nameplate; None until the
    gateway knows it), ``limit_w`` the same in W. ``model`` names the family when the serial
    tells it (``HM 2-input``), else "".
    """

    serial: str
    name: str
    reachable: bool
    producing: bool
    data_at: float
    taken_at: float
    model: str = ""
    ac_power_w: float | None = None
    ac_voltage_v: float | None = None
    ac_current_a: float | None = None
    ac_frequency_hz: float | None = None
    dc_power_w: float | None = None
    dc_voltage_v: float | None = None
    dc_current_a: float | None = None
    dc_inputs: int | None = None
    dc_yield_total_kwh: float | None = None
    yield_day_wh: float | None = None
    yield_total_kwh: float | None = None
    temperature_c: float | None = None
    efficiency_pct: float | None = None
    limit_pct: float | None = None
    limit_w: float | None = None
    max_power_w: float | None = None

    @property
    def detailed(self) -> bool:
        """True when the AC/DC values of the inverter's last poll are included."""
        return self.ac_power_w is not None


@dataclass(frozen=True, slots=True)
class LimitStatus:
    """The limit of one inverter at its gateway: % of ``max_power_w`` (None: not yet known)."""

    serial: str
    limit_pct: float
    state: LimitState
    taken_at: float
    max_power_w: float | None = None


def is_fresh(taken_at: float, now: float, max_age_s: float) -> bool:
    """True if a reading taken at ``taken_at`` (monotonic s) is at most ``max_age_s`` old."""
    return now - taken_at <= max_age_s


@runtime_checkable
class Device(Protocol):
    """Anything a driver opens: it can say what it is."""

    @property
    def identity(self) -> DeviceIdentity:
        """Product name, model, serial and firmware, as the device reported them."""
        ...


@runtime_checkable
class PhaseMeter(Device, Protocol):
    """An energy meter with ``channel_count`` CT channels (phases); raises DeviceError."""

    @property
    def channel_count(self) -> int:
        """Number of CT channels the meter has."""
        ...

    async def read_phases(self) -> MeterReading:
        """All channels now; DeviceError subclasses when the device fails."""
        ...


@runtime_checkable
class PowerMeter(Device, Protocol):
    """Metered outputs (W, V, A, kWh) numbered from 0; raises DeviceError."""

    @property
    def power_channels(self) -> tuple[int, ...]:
        """Channel numbers that carry a power meter."""
        ...

    async def read_power(self, channel: int = 0) -> PowerReading:
        """One metered channel now; DeviceError subclasses when the device fails."""
        ...


@runtime_checkable
class Switch(Device, Protocol):
    """Relays numbered from 0; raises DeviceError."""

    @property
    def outputs(self) -> tuple[int, ...]:
        """Relay numbers the device has."""
        ...

    async def set_output(self, channel: int, on: bool) -> None:
        """Switch relay ``channel`` on or off; DeviceError if the device did not confirm it."""
        ...

    async def read_output(self, channel: int = 0) -> bool:
        """Whether relay ``channel`` is on now; DeviceError subclasses when the device fails."""
        ...


@runtime_checkable
class SteppedLoad(Device, Protocol):
    """A load with a fixed set of power steps (heating rod, relay stages); raises DeviceError.

    The device falls back to 0 W by itself when it hears nothing for ``watchdog_s``: a caller
    that controls it calls ``keep_alive`` well within that time, and simply stops doing so (after
    ``release``) to hand the device back to its safe state.
    """

    @property
    def steps_w(self) -> tuple[float, ...]:
        """The powers the device can run at, W, ascending, the first 0."""
        ...

    @property
    def watchdog_s(self) -> float | None:
        """Seconds without ``keep_alive`` after which the device turns itself off (None: never)."""
        ...

    async def set_step(self, power_w: float) -> LoadReading:
        """Run at ``power_w`` (one of ``steps_w``), confirmed by the device's read-back.

        ValueError for a power that is not a step; DeviceError when the device did not confirm
        it (the reading of a device in ``FORCED_ON`` mode is returned: it is not ours to run).
        """
        ...

    async def keep_alive(self) -> LoadReading:
        """Renew the device's watchdog with the present command (confirmed like ``set_step``)."""
        ...

    async def read(self) -> LoadReading:
        """The device's state now; DeviceError subclasses when it fails."""
        ...

    async def release(self) -> None:
        """Stop controlling: command 0 W if the device answers, and renew nothing afterwards."""


@runtime_checkable
class PersistentDevice(Device, Protocol):
    """A device with a connection of its own (a websocket): ``async with device:`` keeps it.

    Entering starts the device's reader (and its reconnects, with backoff) in a task group of
    its own; leaving closes the connection. Readings and commands work only inside.
    """

    async def __aenter__(self) -> PersistentDevice:
        """Start keeping the connection; returns the device."""
        ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the reader and close the connection."""
        ...


@runtime_checkable
class EvCharger(Device, Protocol):
    """An EV charger: read the car and the meters, set current and phases, start and stop.

    Every command returns once the charger has acknowledged it (the reading then shows it)
    and raises otherwise: DeviceProtocolError when refused, DeviceTimeoutError when not
    acknowledged in time, DeviceConnectionError when the connection is down; ConfigError for
    what the charger cannot do (a current outside its range, phase switching it lacks).
    """

    @property
    def can_switch_phases(self) -> bool:
        """Whether the charger can switch between 1 and 3 phases."""
        ...

    async def read_charger(self) -> EvChargerReading:
        """The latest state; DeviceError subclasses when it is not known (connection down)."""
        ...

    async def wait_reading(self, newer_than: float, timeout_s: float) -> EvChargerReading:
        """The first state taken after ``newer_than`` (monotonic s), within ``timeout_s`` s.

        DeviceTimeoutError when none comes in time, other DeviceErrors when the connection
        is down.
        """
        ...

    async def set_current(self, amps: float) -> None:
        """Offer ``amps`` A per phase (within the reading's min..max); acknowledged."""
        ...

    async def set_phases(self, phases: int | None) -> None:
        """Charge on 1 or 3 phases, or None: let the charger choose; acknowledged."""
        ...

    async def set_force(self, force: ChargeForce) -> None:
        """Force charging on or off, or hand it back to the charger (neutral); acknowledged."""


@runtime_checkable
class PowerLimiter(Device, Protocol):
    """Micro-inverters behind one gateway whose AC output can be limited; raises DeviceError.

    Limits are relative (whole % of each inverter's nameplate) and not persistent: the
    inverter forgets them on a restart. A command is only queued when the call returns; its
    acknowledgement shows in :meth:`read_limits` (``Pending`` → ``Ok`` or ``Failure``).
    """

    @property
    def inverter_serials(self) -> tuple[str, ...]:
        """Serials of the inverters the gateway listed last, in its order."""
        ...

    async def read_inverters(self) -> tuple[InverterReading, ...]:
        """Every inverter now (values as of the gateway's last poll of each)."""
        ...

    async def read_limits(self) -> dict[str, LimitStatus]:
        """Limit and command state per serial."""
        ...

    async def set_limit(self, serial: str, percent: int) -> None:
        """Queue a non-persistent limit of ``percent`` % (DeviceProtocolError if refused)."""
        ...

    async def set_power(self, serial: str, on: bool) -> None:
        """Queue switching the inverter's output on or off (DeviceProtocolError if refused)."""
        ...

    async def restart(self, serial: str) -> None:
        """Queue a restart of the inverter (it comes back at its persistent limit)."""
        ...
