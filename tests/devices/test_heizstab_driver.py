"""The Heizstab driver against the emulator over real Modbus: TCP, RTU over TCP, RTU on a pty.

Identity, every step with its read-back, the write order, the watchdog kept alive and left to
expire, and every fault mapped to its error with recovery on the next call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from venus_ems.clock import SteppedClock
from venus_ems.devices import Connection, LoadMode, SteppedLoad
from venus_ems.devices.heizstab import HeizstabHeater
from venus_ems.devices.modbus import ModbusLink
from venus_ems.devices.registry import open_device, open_session
from venus_ems.errors import (
    ConfigError,
    DeviceConnectionError,
    DeviceProtocolError,
    DeviceTimeoutError,
)
from venus_ems.sim.devices.heizstab import HeizstabEmulator
from venus_ems.sim.devices.heizstab_firmware import MemoryPlant

pytestmark = pytest.mark.anyio
TIMEOUT_S = 0.3
TRANSPORTS = ["tcp", "rtu-over-tcp", "rtu"]


@dataclass
class Rig:
    """An emulator, the plant it switches, a connected session and the clock."""

    emu: HeizstabEmulator
    plant: MemoryPlant
    conn: Connection
    session: object
    clock: SteppedClock

    async def open(self) -> HeizstabHeater:
        heater = await open_device("heizstab", self.session, self.conn, clock=self.clock)
        assert isinstance(heater, HeizstabHeater)
        return heater


@pytest.fixture(params=TRANSPORTS)
async def rig(request) -> AsyncIterator[Rig]:
    transport = request.param
    clock = SteppedClock()
    plant = MemoryPlant(52.25)
    emu = HeizstabEmulator(
        plant,
        clock=clock,
        tcp=transport != "rtu",
        framing="rtu" if transport == "rtu-over-tcp" else "tcp",
        rtu=transport == "rtu",
    )
    async with emu:
        if transport == "rtu":
            conn = Connection(emu.rtu_path, TIMEOUT_S)
        else:
            conn = Connection(f"127.0.0.1:{emu.port}", TIMEOUT_S, options={"transport": transport})
        async with open_session("heizstab", conn) as session:
            yield Rig(emu, plant, conn, session, clock)


async def test_identity_and_every_step_with_its_read_back(rig):
    heater = await rig.open()
    assert isinstance(heater, SteppedLoad)
    assert heater.identity.model == "0xE5E1"
    assert heater.identity.product_name == "Heizstab-Regelung water heater"
    assert heater.watchdog_s == 300.0
    assert heater.steps_w == tuple(500.0 * i for i in range(8))
    for watts in (*heater.steps_w, 0.0):
        await rig.clock.advance(1.0)
        reading = await heater.set_step(watts)
        assert (reading.power_w, reading.commanded_w) == (watts, watts)
        assert reading.mode is LoadMode.REMOTE
        assert reading.temperature_c == 52.25
        assert reading.taken_at == rig.clock.monotonic()
        on = sum(w for w, x in zip((500, 1000, 2000), rig.plant.elements, strict=True) if x)
        assert on == watts  # the SSRs really switched
    with pytest.raises(ValueError, match="not a step"):
        await heater.set_step(750.0)


async def test_coils_before_heartbeat_applies_on_that_heartbeat(rig):
    """The reference client's order (heartbeat, then coils) is one heartbeat late; ours is not."""
    heater = await rig.open()
    link = ModbusLink(rig.session, 33, TIMEOUT_S, "raw")  # type: ignore[arg-type]
    fw = rig.emu.firmware
    assert fw is not None
    # heartbeat first, coils second: the firmware latched the old (off) coils on the heartbeat
    await link.write_register(0, 90)
    await link.write_coils(0, [True, False, True])  # 2500 W
    assert (await heater.read()).power_w == 0.0
    await link.write_register(0, 91)  # only the next heartbeat brings it
    assert (await heater.read()).power_w == 2500.0
    # coils first, then the heartbeat: the new pattern applies on that very heartbeat
    await link.write_coils(0, [False, True, False])
    assert (await heater.read()).power_w == 2500.0  # coils alone change nothing
    await link.write_register(0, 92)
    assert (await heater.read()).power_w == 1000.0
    # and the driver does it in that order: one command, confirmed at once
    latches = fw.latches
    assert (await heater.set_step(3500.0)).power_w == 3500.0
    assert fw.latches == latches + 1


async def test_a_restarted_client_changes_the_heartbeat_it_finds(rig):
    fw = rig.emu.firmware
    assert fw is not None
    fw.holding = 7  # what a killed daemon left
    heater = await rig.open()
    assert (await heater.set_step(500.0)).power_w == 500.0
    assert fw.holding == 8


async def test_keep_alive_holds_the_step_and_release_hands_back(rig):
    heater = await rig.open()
    await heater.set_step(2000.0)
    for _ in range(3):  # 3 x 290 s: beyond the watchdog, but renewed in time
        await rig.clock.advance(290.0)
        assert (await heater.keep_alive()).power_w == 2000.0
    await heater.release()
    assert rig.plant.elements == (False, False, False)  # off at once, not in 300 s
    assert heater.commanded_w is None
    # released: keep_alive no longer renews anything (only reads)
    fw = rig.emu.firmware
    assert fw is not None
    held = fw.holding
    assert (await heater.keep_alive()).power_w == 0.0
    assert fw.holding == held


async def test_the_watchdog_switches_off_when_we_stop_renewing(rig):
    """A client that dies (no release) leaves the device to its watchdog: off after 300 s."""
    heater = await rig.open()
    await heater.set_step(3500.0)
    await rig.clock.advance(299.0)
    assert rig.plant.elements == (True, True, True)
    await rig.clock.advance(1.5)
    assert rig.plant.elements == (False, False, False)
    assert (await heater.read()).power_w == 0.0
    assert (await heater.set_step(1500.0)).power_w == 1500.0  # a new heartbeat re-latches


@pytest.mark.parametrize(
    ("mode", "error", "why"),
    [
        ("no_reply", DeviceTimeoutError, "no answer within 0.3 s"),
        ("crc", DeviceProtocolError, r"the answer (failed its CRC check|had a corrupt MBAP)"),
        ("exception", DeviceProtocolError, r"Modbus exception 6 \(server device busy\)"),
        ("watchdog", DeviceProtocolError, "commanded 1500 W, the device reports 0 W"),
    ],
)
async def test_faults_are_clear_errors_and_the_next_call_recovers(rig, mode, error, why):
    heater = await rig.open()
    await heater.set_step(500.0)
    rig.emu.faults.configure(exception_code=6)
    await rig.emu.set_fault(mode)
    with pytest.raises(error, match=why):
        await heater.set_step(1500.0)
    await rig.emu.set_fault("ok")
    assert (await heater.set_step(1500.0)).power_w == 1500.0
    assert (await heater.read()).power_w == 1500.0


async def test_a_failed_sensor_is_no_temperature(rig):
    heater = await rig.open()
    await rig.emu.set_fault("sensor")
    reading = await heater.read()
    assert reading.temperature_c is None  # never 85 °C, never 0
    assert reading.faults == ("temperature sensor error (85.00 °C)",)
    await rig.emu.set_fault("ok")
    assert (await heater.read()).temperature_c == 52.25


async def test_force_on_is_reported_not_fought(rig):
    heater = await rig.open()
    await rig.emu.set_fault("force_on")
    reading = await heater.set_step(0.0)  # not ours to run: no mismatch error
    assert (reading.mode, reading.power_w, reading.commanded_w) == (LoadMode.FORCED_ON, 3500.0, 0.0)
    assert rig.plant.elements == (True, True, True)
    await rig.emu.set_fault("ok")
    assert (await heater.set_step(0.0)).power_w == 0.0


async def test_release_of_an_unreachable_device_raises_nothing(rig):
    heater = await rig.open()
    await heater.set_step(1000.0)
    await rig.emu.set_fault("no_reply")
    await heater.release()  # the watchdog will switch it off
    assert heater.commanded_w is None
    await rig.clock.advance(301.0)
    assert rig.plant.elements == (False, False, False)


async def test_another_unit_on_the_bus_is_silent(rig):
    conn = Connection(rig.conn.host, TIMEOUT_S, options={**rig.conn.options, "unit": 34})
    with pytest.raises(DeviceTimeoutError, match="unit 34"):
        await open_device("heizstab", rig.session, conn, clock=rig.clock)


async def test_another_device_type_is_a_config_error(rig, monkeypatch):
    fw = rig.emu.firmware
    assert fw is not None
    monkeypatch.setattr(fw, "input_registers", lambda: [0, 0, 0, 0x1234, 0])
    with pytest.raises(ConfigError, match="0x1234 is not a Heizstab"):
        await rig.open()


async def test_an_offline_tcp_device_and_its_return():
    clock = SteppedClock()
    async with HeizstabEmulator(MemoryPlant(), clock=clock) as emu:
        conn = Connection(f"127.0.0.1:{emu.port}", TIMEOUT_S)
        async with open_session("heizstab", conn) as session:
            heater = await open_device("heizstab", session, conn, clock=clock)
            await emu.set_fault("offline")
            with pytest.raises((DeviceConnectionError, DeviceTimeoutError)):
                await heater.set_step(500.0)
            await emu.set_fault("ok")
            assert (await heater.set_step(500.0)).power_w == 500.0


async def test_a_missing_serial_port_is_a_connection_error(clock):
    conn = Connection("/dev/ttyNOPE9", TIMEOUT_S)
    async with open_session("heizstab", conn) as session:
        with pytest.raises(DeviceConnectionError, match="ttyNOPE9"):
            await open_device("heizstab", session, conn, clock=clock)
