"""Heizstab-Regelung: a DIY three-stage heating rod controller on Modbus (registry: "heizstab").

Device facts (``shared/vectors/heizstab-modbus-frames.md``; firmware transistorgit/
Heizstab-Regelung ``src/main.cpp``, facts only): an Arduino Nano with three solid-state relays,
Modbus RTU slave id 33 at 9600 baud (8N1 assumed). Any of them may sit behind a serial-to-TCP
gateway (``transport = "rtu-over-tcp"``) or a Modbus TCP bridge.

======== ===== ================================================================================
area     addr  meaning
======== ===== ================================================================================
coil     0-2   SSR 500 W, 1000 W, 2000 W: 0..3500 W in 500 W steps (FC01 / FC05 / FC15)
input    0     water temperature x 100 (DS18B20, written as uint16); **8500 = a failed reading**
input    1     device heartbeat, +1 per second, wraps at 0xFFFF
input    2     power feedback W = 500 SSR1 + 1000 SSR2 + 2000 SSR3, read from the output pins
input    3     device type, constant 0xE5E1
input    4     mode: 0 AUTO, 1 FORCE ON (manual switch: all SSRs on, whatever the coils say)
holding  0     client heartbeat: the coils reach the SSRs only when this value *changes*
======== ===== ================================================================================

The firmware latches the coils into the SSRs in the loop iteration where it sees a new holding
register 0, and switches everything off after 300 s without a change (its watchdog). So this
driver writes the coils first (FC15) and then a new heartbeat (FC06): the new step applies on
that heartbeat, not one cycle later as with heartbeat-first (the reference client's order).
Every command is confirmed by reading the power feedback back (a few reads, the device's next
loop); a mismatch is a ``DeviceProtocolError``. The firmware has no over-temperature cut-off:
the caller stops heating at its target. The heartbeat cycles through 0..99 like the reference
client (whose comment says the device wants small values), starting after the value found in
the device, so a restarted daemon's first command is a change too.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..clock import Clock
from ..errors import ConfigError, DeviceError, DeviceProtocolError
from .base import Connection, DeviceIdentity, LoadMode, LoadReading
from .modbus import TRANSPORT_OPTIONS, ModbusClient, ModbusLink, parse_endpoint

__all__ = [
    "DEFAULT_UNIT",
    "DEVICE_TYPE",
    "SENSOR_ERROR_RAW",
    "STEPS_W",
    "WATCHDOG_S",
    "HeizstabHeater",
    "coils_for",
    "open_device",
    "parse_inputs",
]

DEFAULT_UNIT = 33
DEVICE_TYPE = 0xE5E1
SENSOR_ERROR_RAW = 8500
"""Input register 0 after a failed sensor read (85.00 °C, also the DS18B20's power-on value)."""
STAGES_W = (500.0, 1000.0, 2000.0)
STEPS_W = tuple(float(500 * i) for i in range(8))
WATCHDOG_S = 300.0
HEARTBEAT_WRAP = 100
CONFIRM_READS = 3
"""Reads of the power feedback after a command before a mismatch is an error."""
SENSOR_RANGE_C = (-55.0, 125.0)
"""The DS18B20's measuring range: a value outside it is no reading [datasheet, U]."""
_OPTIONS = TRANSPORT_OPTIONS | {"unit"}


def coils_for(power_w: float) -> list[bool]:
    """Coils 0..2 for a step (500 W -> [on, off, off]); ValueError if not a step."""
    if power_w not in STEPS_W:
        steps = ", ".join(f"{s:g}" for s in STEPS_W)
        raise ValueError(f"{power_w!r} W is not a step of this heater ({steps} W)")
    level = int(power_w) // 500
    return [bool(level & 1), bool(level & 2), bool(level & 4)]


def parse_inputs(
    regs: Sequence[int], taken_at: float, commanded_w: float | None = None
) -> LoadReading:
    """Input registers 0..4 -> reading stamped ``taken_at``; DeviceProtocolError if not ours."""
    if len(regs) != 5:
        raise DeviceProtocolError(f"expected input registers 0..4, got {len(regs)} values")
    raw_t, heartbeat, power, kind, mode = regs
    if kind != DEVICE_TYPE:
        raise DeviceProtocolError(f"device type 0x{kind:04X}, expected 0x{DEVICE_TYPE:04X}")
    if power not in STEPS_W:
        raise DeviceProtocolError(f"power feedback {power} W is no combination of the SSRs")
    if mode not in (0, 1):
        raise DeviceProtocolError(f"mode {mode} is neither 0 (auto) nor 1 (force on)")
    faults: list[str] = []
    temperature: float | None = None
    if raw_t == SENSOR_ERROR_RAW:
        faults.append("temperature sensor error (85.00 °C)")
    else:
        value = (raw_t - 0x10000 if raw_t >= 0x8000 else raw_t) / 100.0  # written as uint16
        lo, hi = SENSOR_RANGE_C
        if lo <= value <= hi:
            temperature = value
        else:
            faults.append(f"temperature {value:.2f} °C is outside the sensor's range")
    return LoadReading(
        power_w=float(power),
        taken_at=taken_at,
        mode=LoadMode.FORCED_ON if mode == 1 else LoadMode.REMOTE,
        commanded_w=commanded_w,
        temperature_c=temperature,
        device_heartbeat=heartbeat,
        faults=tuple(faults),
    )


class HeizstabHeater:
    """The heating rod controller: implements ``SteppedLoad`` (see ``devices.base``)."""

    def __init__(
        self, link: ModbusLink, clock: Clock, identity: DeviceIdentity, heartbeat: int
    ) -> None:
        """Built by :func:`open_device`; ``heartbeat`` is holding register 0 as found."""
        self._link = link
        self._clock = clock
        self._identity = identity
        self._heartbeat = heartbeat
        self._commanded: float | None = None

    @property
    def identity(self) -> DeviceIdentity:
        """Product name and model (the firmware reports no serial or version)."""
        return self._identity

    @property
    def steps_w(self) -> tuple[float, ...]:
        """0, 500, ..., 3500 W."""
        return STEPS_W

    @property
    def watchdog_s(self) -> float:
        """300 s: the firmware switches off when the heartbeat stops changing for this long."""
        return WATCHDOG_S

    @property
    def commanded_w(self) -> float | None:
        """The step last commanded (None before the first one and after ``release``)."""
        return self._commanded

    @property
    def where(self) -> str:
        """The bus and unit, for messages (``Modbus RTU on /dev/ttyUSB0 (9600 8N1) unit 33``)."""
        return self._link.where

    async def read(self) -> LoadReading:
        """Input registers 0..4 in one request; DeviceError subclasses when it fails."""
        regs = await self._link.read_input_registers(0, 5)
        try:
            return parse_inputs(regs, self._clock.monotonic(), self._commanded)
        except DeviceProtocolError as err:
            raise DeviceProtocolError(f"{self.where}: {err}") from None

    async def set_step(self, power_w: float) -> LoadReading:
        """Coils, then a new heartbeat, then the read-back (see the module docstring)."""
        coils = coils_for(power_w)
        self._commanded = power_w
        await self._link.write_coils(0, coils)
        self._heartbeat = (self._heartbeat + 1) % HEARTBEAT_WRAP
        await self._link.write_register(0, self._heartbeat)
        return await self._confirm(power_w)

    async def keep_alive(self) -> LoadReading:
        """Re-send the present command (renews the watchdog); only a read once released."""
        if self._commanded is None:
            return await self.read()
        return await self.set_step(self._commanded)

    async def release(self) -> None:
        """Command 0 W if the device answers, then renew nothing: its watchdog takes over."""
        try:
            await self.set_step(0.0)
        except DeviceError:
            pass  # unreachable or unconfirmed: the firmware's watchdog switches off in 300 s
        finally:
            self._commanded = None

    async def _confirm(self, power_w: float) -> LoadReading:
        reading = await self.read()
        for _ in range(CONFIRM_READS - 1):
            if reading.mode is LoadMode.FORCED_ON or reading.power_w == power_w:
                return reading
            reading = await self.read()
        if reading.mode is LoadMode.FORCED_ON or reading.power_w == power_w:
            return reading
        raise DeviceProtocolError(
            f"{self.where}: commanded {power_w:g} W, the device reports {reading.power_w:g} W "
            f"after {CONFIRM_READS} reads (watchdog tripped, SSR or firmware fault?)"
        )


async def open_device(session: ModbusClient, conn: Connection, *, clock: Clock) -> HeizstabHeater:
    """Check options, identify the device (input register 3), read the heartbeat it holds.

    ``session`` is the bus's pymodbus client (``devices.registry.open_session``); options are
    the transport's (``devices.modbus``) plus ``unit`` (slave id, default 33). ConfigError for
    an unknown option, a bad value, a session that is no Modbus client or another device type;
    DeviceError subclasses when the device does not answer.
    """
    unknown = sorted(set(conn.options) - _OPTIONS)
    if unknown:
        known = ", ".join(sorted(_OPTIONS))
        raise ConfigError(f"unknown heizstab option {unknown[0]!r} (known: {known})")
    unit = conn.options.get("unit", DEFAULT_UNIT)
    if isinstance(unit, bool) or not isinstance(unit, int) or not 1 <= unit <= 247:
        raise ConfigError(f"unit must be a Modbus slave id 1..247, got {unit!r}")
    endpoint = parse_endpoint(conn)
    if not isinstance(session, ModbusClient):
        raise ConfigError("driver heizstab needs a Modbus client as its session (open_session)")
    link = ModbusLink(session, unit, conn.timeout_s, f"{endpoint.describe()} unit {unit}")
    kind = (await link.read_input_registers(3, 1))[0]
    if kind != DEVICE_TYPE:
        raise ConfigError(
            f"{link.where}: device type 0x{kind:04X} is not a Heizstab-Regelung "
            f"(0x{DEVICE_TYPE:04X})"
        )
    heartbeat = (await link.read_holding_registers(0, 1))[0]
    identity = DeviceIdentity(
        product_name="Heizstab-Regelung water heater",
        model=f"0x{DEVICE_TYPE:04X}",
        serial="",
        firmware="",
    )
    return HeizstabHeater(link, clock, identity, heartbeat)
