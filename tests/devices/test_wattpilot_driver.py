"""The Wattpilot driver against the emulated charger over a real loopback websocket."""

from __future__ import annotations

import json
from contextlib import asynccontextmanager

import anyio
import pytest

from venus_ems.devices.base import Connection, EvCharger, PersistentDevice
from venus_ems.devices.registry import open_device
from venus_ems.devices.wattpilot import open_wattpilot
from venus_ems.errors import (
    ConfigError,
    DeviceAuthError,
    DeviceConnectionError,
    DeviceProtocolError,
    DeviceTimeoutError,
)
from venus_ems.sim.devices.wallbox import ModelWallbox
from venus_ems.sim.devices.wattpilot import (
    CLASSIC,
    CLASSIC_42,
    FLEX,
    FLEX_SILENT,
    WattpilotEmulator,
    WattpilotIdentity,
)
from venus_ems.sim.physics import Car
from waiting import until
from wattpilot_vectors import known_answers

pytestmark = pytest.mark.anyio
PASSWORD = "testpassword"


@pytest.fixture
def ka(vector_text):
    return known_answers(vector_text("wattpilot-handshake.md"))


@pytest.fixture
def box(clock):
    return ModelWallbox(clock)


@asynccontextmanager
async def emulated(box, clock, **kw):
    async with WattpilotEmulator(box, clock=clock, **kw) as emu:
        yield emu


@asynccontextmanager
async def charger(session, emu, clock, *, timeout_s=1.0, password=PASSWORD, **kw):
    conn = Connection(emu.host, timeout_s, password=password)
    kw.setdefault("min_backoff_s", 1.0)
    kw.setdefault("max_backoff_s", 8.0)
    device = await open_wattpilot(session, conn, clock=clock, **kw)
    async with device:
        yield device


async def test_opens_through_the_registry_as_an_ev_charger(session, clock, box):
    async with emulated(box, clock) as emu:
        conn = Connection(emu.host, 2.0, password=PASSWORD)
        device = await open_device("wattpilot", session, conn, clock=clock)
        async with device:
            assert isinstance(device, EvCharger)
            assert isinstance(device, PersistentDevice)
            assert device.identity.product_name == "Fronius Wattpilot"
            assert (device.identity.serial, device.identity.firmware) == ("12345678", "36.3")
            assert device.can_switch_phases
            assert emu.connections == 1
        await until(lambda: emu.connections == 0)  # leaving closes the socket


@pytest.mark.parametrize(
    ("identity", "scheme", "product"),
    [
        (CLASSIC, "pbkdf2", "Fronius Wattpilot"),
        (CLASSIC_42, "pbkdf2", "Fronius Wattpilot"),
        (FLEX, "bcrypt", "Fronius Wattpilot Flex"),
        (FLEX_SILENT, "bcrypt", "Fronius Wattpilot Flex"),
    ],
)
async def test_the_login_and_the_first_write_are_the_known_answers(
    session, clock, box, ka, identity, scheme, product
):
    tokens = (ka.token1, ka.token2)
    async with (
        emulated(box, clock, identity=identity, tokens=lambda: tokens) as emu,
        charger(session, emu, clock, token3=lambda: ka.token3) as device,
    ):
        assert list(emu.auth_frames) == [
            {"type": "auth", "token3": ka.token3, "hash": ka.auth_hash[scheme]}
        ]
        assert device.identity.product_name == product
        await device.set_current(10)
        written = [f for f in emu.client_frames if f["type"] == "securedMsg"]
        assert written[0]["hmac"] == ka.hmac_amp10[scheme]
        if scheme == "pbkdf2":
            assert written[0] == ka.secured_amp10  # the vector's frame, byte for byte in data


async def test_full_and_delta_status_give_per_phase_values(session, clock, box):
    box.plug_in(Car(capacity_kwh=50, soc_pct=40, phases=2, max_current_a=16))
    async with emulated(box, clock) as emu, charger(session, emu, clock) as device:
        first = await device.read_charger()
        assert (first.car, first.set_current_a, first.phases_selected) == ("waiting", 16, None)
        await clock.advance(5)  # ramped up; the emulator pushes a delta every second
        r = await device.wait_reading(first.taken_at, 2)
        while r.taken_at < clock.monotonic():
            r = await device.wait_reading(r.taken_at, 2)
        # a 2-phase car on a 3-phase charger: L1 and L2 carry 16 A, L3 nothing
        assert r.car == "charging"
        assert r.currents_a == (16, 16, 0)
        assert r.phases_in_use == 2
        assert r.power_w == pytest.approx(2 * 16 * 230)
        assert r.session_energy_kwh > 0
        assert r.taken_at == clock.monotonic()


async def test_writes_are_acknowledged_and_in_force(session, clock, box):
    box.plug_in(Car())
    async with emulated(box, clock) as emu, charger(session, emu, clock) as device:
        await device.set_current(7.9)  # whole amperes, rounded down
        assert (await device.read_charger()).set_current_a == 7
        assert box.ev.current_setpoint_a == 7
        await device.set_phases(1)
        assert (await device.read_charger()).phases_selected == 1
        await device.set_phases(None)
        assert (await device.read_charger()).phases_selected is None
        await device.set_force("off")
        await clock.advance(3)
        r = await device.read_charger()
        assert r.force == "off"
        sent = len(emu.client_frames)
        for bad in (lambda: device.set_current(40), lambda: device.set_current(5),
                    lambda: device.set_phases(2), lambda: device.set_force("maybe")):  # fmt: skip
            with pytest.raises(ConfigError):
                await bad()
        assert len(emu.client_frames) == sent  # refused here, nothing sent
        assert [k for k, _ in emu.writes] == ["amp", "psm", "psm", "frc"]


async def test_a_refused_write_is_a_protocol_error_and_changes_nothing(session, clock, box):
    async with emulated(box, clock) as emu, charger(session, emu, clock) as device:
        await emu.set_fault("refuse")
        with pytest.raises(DeviceProtocolError, match="amp=10 refused: refused"):
            await device.set_current(10)
        assert (await device.read_charger()).set_current_a == 16
        assert box.ev.current_setpoint_a == 16


async def test_an_unacknowledged_write_fails_in_time_and_the_delta_shows_the_truth(
    session, clock, box
):
    async with (
        emulated(box, clock) as emu,
        charger(session, emu, clock, timeout_s=0.3) as device,
    ):
        await emu.set_fault("no_ack")
        started = anyio.current_time()
        with pytest.raises(DeviceTimeoutError, match=r"not acknowledged within 0\.3 s"):
            await device.set_current(9)
        assert 0.25 < anyio.current_time() - started < 2
        before = (await device.read_charger()).taken_at
        await clock.advance(1)  # the charger did apply it: its next delta says so
        assert (await device.wait_reading(before, 2)).set_current_a == 9


async def test_slow_acknowledgements(session, clock, box):
    async with (
        emulated(box, clock) as emu,
        charger(session, emu, clock, timeout_s=0.4) as device,
    ):
        emu.faults.configure("slow_ack", ack_delay_s=0.1)
        started = anyio.current_time()
        async with anyio.create_task_group() as tg:  # writes go one at a time
            for amps in (7, 8, 9):
                tg.start_soon(device.set_current, amps)
        assert anyio.current_time() - started >= 0.3
        assert [v for _, v in emu.writes] == [7, 8, 9]
        emu.faults.configure("slow_ack", ack_delay_s=1.0)
        with pytest.raises(DeviceTimeoutError):
            await device.set_current(10)
        await emu.set_fault("ok")
        await device.set_current(11)  # a late answer to the old request upsets nothing
        await anyio.sleep(0.8)
        await device.set_current(12)
        assert (await device.read_charger()).set_current_a == 12


async def test_a_wrong_password_is_an_auth_error_without_the_password(session, clock, box):
    async with emulated(box, clock) as emu:
        with pytest.raises(DeviceAuthError, match="refused the password") as err:
            await open_wattpilot(session, Connection(emu.host, 2, password="nope!x"), clock=clock)
        assert "nope!x" not in str(err.value)
        assert not err.value.retryable
        with pytest.raises(DeviceAuthError):  # a Flex password used on a classic
            await open_wattpilot(
                session, Connection(emu.host, 2, password=PASSWORD), clock=clock, scheme="bcrypt"
            )
    with pytest.raises(ConfigError, match="password is required"):
        await open_wattpilot(session, Connection("127.0.0.1:9", 2), clock=clock)


async def test_a_refused_secret_is_never_retried(session, clock, box):
    async with emulated(box, clock) as emu, charger(session, emu, clock) as device:
        await emu.set_fault("drop")
        emu.faults.mode = "wrong_password"  # the password was changed on the charger
        await until(lambda: not device.connected)
        with pytest.raises(DeviceConnectionError):
            await device.read_charger()
        await until(lambda: device.retry_in_s > 0)
        await clock.advance(device.retry_in_s)
        await until(lambda: device.failed_attempts == 1)
        assert emu.faults.requests == 2
        with pytest.raises(DeviceAuthError):
            await device.read_charger()
        with pytest.raises(DeviceAuthError):
            await device.set_current(10)
        await clock.advance(600)
        await anyio.sleep(0.1)
        assert emu.faults.requests == 2  # no second try with the same secret


async def reconnected(device, clock):
    """Wait for the reader's backoff to start, let it pass on the stepped clock, then connect."""
    await until(lambda: device.retry_in_s > 0)
    await clock.advance(device.retry_in_s)
    await until(lambda: device.connected)


async def test_reconnects_with_a_capped_doubling_backoff(session, clock, box):
    async with emulated(box, clock) as emu, charger(session, emu, clock) as device:
        await emu.set_fault("offline")
        await until(lambda: not device.connected)
        with pytest.raises(DeviceConnectionError):
            await device.read_charger()
        delays = []
        for k in range(6):
            # each failed attempt goes straight into the next backoff
            await until(lambda k=k: device.failed_attempts == k and device.retry_in_s > 0)
            delays.append(device.retry_in_s)
            await clock.advance(device.retry_in_s)
        assert delays == [1, 2, 4, 8, 8, 8]
        await until(lambda: device.failed_attempts == 6)
        await emu.set_fault("ok")
        await clock.advance(8)
        await until(lambda: device.connected)
        assert device.failed_attempts == 0
        assert device.connections == 2
        assert (await device.read_charger()).set_current_a == 16


async def test_a_dropped_socket_fails_the_waiting_write_and_recovers(session, clock, box):
    async with (
        emulated(box, clock) as emu,
        charger(session, emu, clock, timeout_s=5) as device,
    ):
        await emu.set_fault("no_ack")
        failed = []

        async def write():
            started = anyio.current_time()
            with pytest.raises(DeviceConnectionError, match="connection dropped"):
                await device.set_current(8)
            failed.append(anyio.current_time() - started)

        async with anyio.create_task_group() as tg:
            tg.start_soon(write)
            await until(lambda: any(f.get("type") == "securedMsg" for f in emu.client_frames))
            await emu.set_fault("drop")
        assert failed[0] < 2  # at once, not after the 5 s timeout
        emu.faults.configure("ok")
        await reconnected(device, clock)
        await device.set_current(9)
        assert box.ev.current_setpoint_a == 9


HOSTILE = {
    "garbage": "not JSON",
    "binary": "binary frame",
    "bad_status": "'nrg'",
    "huge_numbers": "characters",
    "deep_json": "arrays and objects|nested",
    "oversized": "websocket error",
}


@pytest.mark.parametrize("mode", list(HOSTILE))
async def test_hostile_frames_drop_the_connection_then_it_recovers(session, clock, box, mode):
    async with emulated(box, clock) as emu, charger(session, emu, clock) as device:
        await emu.set_fault(mode)
        await clock.advance(1)  # the next push is the hostile frame
        await until(lambda: not device.connected)
        with pytest.raises(DeviceProtocolError, match=HOSTILE[mode]):
            await device.read_charger()
        await emu.set_fault("ok")
        await reconnected(device, clock)
        assert (await device.read_charger()).set_current_a == 16


async def test_a_silent_charger_times_out_and_is_reconnected(session, clock, box):
    async with (
        emulated(box, clock) as emu,
        charger(session, emu, clock, idle_timeout_s=0.3) as device,
    ):
        await emu.set_fault("silent")
        await until(lambda: not device.connected, timeout=3)
        with pytest.raises(DeviceTimeoutError, match=r"nothing received for 0\.3 s"):
            await device.read_charger()
        await emu.set_fault("ok")
        await reconnected(device, clock)


async def test_a_missing_full_status_is_asked_for(session, clock, box):
    async with emulated(box, clock) as emu:
        await emu.set_fault("no_full_status")
        async with charger(session, emu, clock, timeout_s=0.3) as device:
            assert (await device.read_charger()).set_current_a == 16
        assert any(f["type"] == "requestFullStatus" for f in emu.client_frames)


async def test_an_unsecured_charger_gets_plain_writes(session, clock, box):
    identity = WattpilotIdentity(secured=False)
    async with (
        emulated(box, clock, identity=identity, string_request_ids=False) as emu,
        charger(session, emu, clock) as device,
    ):
        await device.set_current(12)
        frame = next(f for f in emu.client_frames if f["type"] == "setValue")
        assert (frame["key"], frame["value"], frame["requestId"]) == ("amp", 12, 1)


async def test_unreachable_and_waiting(session, clock, box):
    with pytest.raises(DeviceConnectionError):
        await open_wattpilot(session, Connection("127.0.0.1:9", 1, password="x"), clock=clock)
    async with emulated(box, clock) as emu, charger(session, emu, clock) as device:
        r = await device.read_charger()
        with pytest.raises(DeviceTimeoutError, match="no new status"):
            await device.wait_reading(r.taken_at, 0.2)  # the stepped clock did not move
        await emu.set_fault("offline")
        await until(lambda: not device.connected)
        with pytest.raises(DeviceConnectionError):
            await device.set_current(10)
        with pytest.raises(DeviceConnectionError):
            await device.wait_reading(r.taken_at, 0.2)


async def test_frames_over_the_wire_are_what_the_vectors_show(session, clock, box):
    async with emulated(box, clock) as emu, charger(session, emu, clock) as device:
        await device.set_force("on")
        frame = next(f for f in emu.client_frames if f["type"] == "securedMsg")
        inner = json.loads(frame["data"])
        assert inner == {"type": "setValue", "requestId": 1, "key": "frc", "value": 2}
        assert frame["requestId"] == "1sm"
