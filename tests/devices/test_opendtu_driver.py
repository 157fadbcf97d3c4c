"""The OpenDTU driver against the emulator over real HTTP: readings, commands, auth, faults."""

from __future__ import annotations

import pytest
from aiohttp import web

from venus_ems.devices import Connection, PowerLimiter
from venus_ems.devices.registry import open_device
from venus_ems.errors import (
    ConfigError,
    DeviceAuthError,
    DeviceConnectionError,
    DeviceProtocolError,
    DeviceTimeoutError,
)
from venus_ems.sim.devices import InverterSpec, MemoryInverterBank, OpenDtuEmulator

pytestmark = pytest.mark.anyio

HM600, HM1500 = "114182940773", "116181679876"


def bank(clock, **kw):
    b = MemoryInverterBank(
        [
            InverterSpec(HM600, "HM-600", max_power_w=600.0, dead_time_s=3.0, ack_s=2.0),
            InverterSpec(HM1500, "HM-1500", max_power_w=1500.0, dc_inputs=4, dead_time_s=18.0),
        ],
        clock=clock,
        **kw,
    )
    b.set_available_dc(HM600, 400.0)
    b.set_available_dc(HM1500, 1000.0)
    return b


async def opened(session, clock, dtu, **conn) -> PowerLimiter:
    conn.setdefault("password", "openDTU42")
    device = await open_device(
        "opendtu", session, Connection(f"127.0.0.1:{dtu.port}", 1.0, **conn), clock=clock
    )
    assert isinstance(device, PowerLimiter)
    return device


async def test_identity_and_inverters(session, clock):
    async with OpenDtuEmulator(bank(clock), clock=clock) as dtu:
        dev = await opened(session, clock, dtu)
        assert dev.identity.product_name == "OpenDTU"
        assert dev.identity.serial == "OpenDTU-1A2B3C"
        assert dev.identity.firmware == "24.2.12"
        assert dev.inverter_serials == (HM600, HM1500)
        readings = {r.serial: r for r in await dev.read_inverters()}
    a = readings[HM600]
    assert (a.ac_power_w, a.dc_power_w, a.max_power_w, a.limit_w) == (384.0, 400.0, 600.0, 600.0)
    assert a.taken_at == clock.monotonic()
    assert a.data_at == 0.0
    assert readings[HM1500].model == "HM 4-input"


async def test_details_are_fetched_only_for_new_polls(session, clock):
    async with OpenDtuEmulator(bank(clock, poll_interval_s=5.0), clock=clock) as dtu:
        dev = await opened(session, clock, dtu)
        start = dtu.faults.requests
        await dev.read_inverters()  # summary + two details
        assert dtu.faults.requests - start == 3
        for _ in range(4):
            await clock.advance(1.0)
            await dev.read_inverters()  # same poll of the DTU: summary only
        assert dtu.faults.requests - start == 7
        await clock.advance(1.0)  # the DTU polled both again
        await dev.read_inverters()
        assert dtu.faults.requests - start == 10


async def test_the_2023_layout_needs_no_detail_requests(session, clock):
    async with OpenDtuEmulator(bank(clock), clock=clock, layout="2023") as dtu:
        dev = await opened(session, clock, dtu)
        start = dtu.faults.requests
        readings = await dev.read_inverters()
        assert dtu.faults.requests - start == 1
    assert all(r.detailed for r in readings)
    assert readings[0].ac_power_w == 384.0


async def test_limit_lifecycle_and_read_back(session, clock):
    async with OpenDtuEmulator(bank(clock), clock=clock) as dtu:
        dev = await opened(session, clock, dtu)
        await dev.set_limit(HM600, 50)
        assert (await dev.read_limits())[HM600].state == "Pending"
        await clock.advance(2.0)  # acknowledged
        status = (await dev.read_limits())[HM600]
        assert (status.state, status.limit_pct, status.max_power_w) == ("Ok", 50, 600)
        assert dtu.bank.ac_power_w(HM600) == pytest.approx(384.0)  # not applied before 3 s
        await clock.advance(1.0)
        assert dtu.bank.ac_power_w(HM600) == pytest.approx(300.0)
        sent = dtu.bank.commands[-1]
        assert (sent.relative, sent.persistent, sent.value) == (True, False, 50.0)


async def test_absolute_limits_too(session, clock):
    async with OpenDtuEmulator(bank(clock), clock=clock) as dtu:
        dev = await opened(session, clock, dtu)
        await dev.set_limit_w(HM600, 150)
        with pytest.raises(ValueError, match="whole watts"):
            await dev.set_limit_w(HM600, -1)
        await clock.advance(3.0)
        cmd = dtu.bank.commands[-1]
        assert (cmd.value, cmd.relative, cmd.persistent) == (150.0, False, False)
        assert dtu.bank.ac_power_w(HM600) == pytest.approx(150.0)


async def test_refused_limit_shows_as_failure(session, clock):
    b = bank(clock)
    b.set_refuse_limits(HM600, True)
    async with OpenDtuEmulator(b, clock=clock) as dtu:
        dev = await opened(session, clock, dtu)
        await dev.set_limit(HM600, 10)
        await clock.advance(2.0)
        assert (await dev.read_limits())[HM600].state == "Failure"
        assert b.ac_power_w(HM600) == pytest.approx(384.0)


async def test_commands_the_dtu_refuses_raise(session, clock):
    async with OpenDtuEmulator(bank(clock), clock=clock) as dtu:
        dev = await opened(session, clock, dtu)
        with pytest.raises(DeviceProtocolError, match=r"Invalid inverter specified! \(code 5004\)"):
            await dev.set_limit("123456789012", 10)
        with pytest.raises(ValueError, match="whole percent"):
            await dev.set_limit(HM600, 101)
        with pytest.raises(ValueError, match="whole percent"):
            await dev.set_limit(HM600, 5.5)  # type: ignore[arg-type]
    assert not dtu.bank.commands


async def test_power_and_restart_send_json_booleans(session, clock):
    async with OpenDtuEmulator(bank(clock), clock=clock) as dtu:
        dev = await opened(session, clock, dtu)
        await dev.set_power(HM600, False)
        await dev.restart(HM1500)
        await clock.advance(18.0)
        kinds = [(c.serial, c.kind, c.on) for c in dtu.bank.commands]
        assert kinds == [(HM600, "power", False), (HM1500, "restart", True)]
        assert dtu.bank.ac_power_w(HM600) == 0.0


async def test_auth(session, clock):
    async with OpenDtuEmulator(bank(clock), password="secret", clock=clock) as dtu:
        dev = await opened(session, clock, dtu, password=None)  # read-only access is open
        with pytest.raises(DeviceAuthError, match="password required"):
            await dev.set_limit(HM600, 10)
        wrong = await opened(session, clock, dtu, password="nope")
        with pytest.raises(DeviceAuthError, match="password refused"):
            await wrong.set_limit(HM600, 10)
        good = await opened(session, clock, dtu, password="secret")
        await good.set_limit(HM600, 10)
    async with OpenDtuEmulator(bank(clock), allow_readonly=False, clock=clock) as dtu:
        with pytest.raises(DeviceAuthError):
            await opened(session, clock, dtu, password=None)


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("offline", DeviceConnectionError),
        ("slow", DeviceTimeoutError),
        ("garbage", DeviceProtocolError),
        ("truncated", DeviceProtocolError),
        ("http500", DeviceProtocolError),
        ("auth", DeviceAuthError),
    ],
)
async def test_faults_map_to_errors_and_recover(session, clock, mode, error):
    async with OpenDtuEmulator(bank(clock), clock=clock) as dtu:
        dtu.faults.slow_s = 3.0
        dev = await opened(session, clock, dtu)
        await dtu.set_fault(mode)
        with pytest.raises(error):
            await dev.read_inverters()
        with pytest.raises(error):
            await dev.read_limits()
        await dtu.set_fault("ok")
        assert len(await dev.read_inverters()) == 2


async def test_system_status_missing_still_opens(session, clock):
    emu = OpenDtuEmulator(bank(clock), clock=clock)

    async def gone(request):  # some builds have no /api/system/status
        return web.Response(status=404)

    emu._system_status = gone  # type: ignore[method-assign]
    async with emu as dtu:
        dev = await opened(session, clock, dtu)
        assert dev.identity.serial == "127.0.0.1"
        assert dev.identity.firmware == ""


async def test_unknown_options_and_a_device_that_is_no_dtu(session, clock):
    with pytest.raises(ConfigError, match="no option x"):
        await open_device(
            "opendtu", session, Connection("127.0.0.1:9", options={"x": 1}), clock=clock
        )
    async with OpenDtuEmulator(bank(clock), clock=clock) as dtu:
        dtu.livedata = lambda inv_param=None: {"hello": 1}  # type: ignore[method-assign]
        with pytest.raises(DeviceProtocolError, match="'inverters' missing"):
            await opened(session, clock, dtu)


async def test_form_body_is_what_the_firmware_parses(session, clock):
    async with OpenDtuEmulator(bank(clock), clock=clock) as dtu:
        dev = await opened(session, clock, dtu)
        await dev.set_limit(HM600, 7)
    # the emulator parsed form field "data" as JSON and took serial/type/value from it
    cmd = dtu.bank.commands[-1]
    assert (cmd.serial, cmd.value, cmd.relative, cmd.persistent) == (HM600, 7.0, True, False)
