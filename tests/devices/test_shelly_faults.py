"""Every emulator fault mode becomes the right DeviceError, and the driver recovers after it."""

from __future__ import annotations

import pytest

from venus_ems.devices.http import DigestAuth, HttpAnswer, basic_auth_header, decode_json
from venus_ems.devices.shelly import open_shelly
from venus_ems.errors import (
    DeviceAuthError,
    DeviceConnectionError,
    DeviceError,
    DeviceProtocolError,
    DeviceTimeoutError,
)
from venus_ems.sim.devices import (
    MemorySwitch,
    PhaseReading,
    ShellyGen1Emulator,
    StaticMeter,
    mini_1pm_gen3,
    pro_3em,
)
from venus_ems.sim.devices.auth import DigestSha256, basic_credentials_ok

pytestmark = pytest.mark.anyio

FAULTS = [
    ("offline", DeviceConnectionError),
    ("slow", DeviceTimeoutError),
    ("garbage", DeviceProtocolError),
    ("truncated", DeviceProtocolError),
    ("http500", DeviceProtocolError),
    ("auth", DeviceAuthError),
]


def three(clock):
    return StaticMeter([PhaseReading.of(p) for p in (300.0, -20.0, 5.0)], clock=clock)


DEVICES = {
    "gen1-3em": (lambda c: ShellyGen1Emulator("SHEM-3", meter=three(c), clock=c), "phases"),
    "gen2-pro3em": (lambda c: pro_3em(three(c), password="pw", clock=c), "phases"),
    "gen1-plug": (
        lambda c: ShellyGen1Emulator("SHPLG-S", switch=MemorySwitch(load_w=9, on=True), clock=c),
        "power",
    ),
    "gen3-1pm": (lambda c: mini_1pm_gen3(MemorySwitch(load_w=9, on=True), clock=c), "power"),
}


@pytest.mark.parametrize("device", list(DEVICES))
@pytest.mark.parametrize(("mode", "error"), FAULTS)
async def test_fault_modes_map_to_device_errors(session, clock, device, mode, error):
    make, kind = DEVICES[device]
    async with make(clock) as emu:
        emu.faults.slow_s = 3.0
        dev = await open_shelly(session, emu.url, clock=clock, timeout_s=0.3, password="pw")

        async def read():
            return await (dev.read_phases() if kind == "phases" else dev.read_power(0))

        await read()
        await emu.set_fault(mode)
        with pytest.raises(error) as err:
            await read()
        assert isinstance(err.value, DeviceError)
        assert err.value.__cause__ is not None or mode in ("http500", "auth")
        assert "pw" not in str(err.value)
        await emu.set_fault("ok")
        reading = await read()  # recovers on the next call, same driver object
    assert reading.taken_at == clock.monotonic()


async def test_probe_faults(session, clock):
    async with ShellyGen1Emulator("SHEM-3", meter=three(clock), clock=clock) as emu:
        for mode, error in FAULTS[:-1]:  # /shelly is never protected, so "auth" does not apply
            emu.faults.slow_s = 3.0
            await emu.set_fault(mode)
            with pytest.raises(error):
                await open_shelly(session, emu.url, clock=clock, timeout_s=0.3)
        await emu.set_fault("auth")
        assert (await open_shelly(session, emu.url, clock=clock)).info.auth is False
    with pytest.raises(DeviceConnectionError):
        await open_shelly(session, emu.url, clock=clock, timeout_s=0.3)  # nothing listens now


# --- auth headers, cross-checked with the emulator's server side -------------------------------


def test_basic_header_round_trips():
    assert basic_credentials_ok(basic_auth_header("admin", "päss:w"), "admin", "päss:w")
    assert not basic_credentials_ok(basic_auth_header("admin", "x"), "admin", "y")


async def test_digest_header_is_accepted_and_counts_nc(clock):
    server = DigestSha256("shellypro3em-aabb", "pw", clock=clock)
    client = DigestAuth("admin", "pw")
    client.learn(server.www_authenticate())
    first = client.header("POST", "/rpc")
    second = client.header("POST", "/rpc")
    assert "nc=00000001" in first
    assert "nc=00000002" in second
    assert server.check_header(first, "POST", "/rpc", "/rpc")
    assert server.check_header(second, "POST", "/rpc", "/rpc")
    assert not server.check_header(first, "GET", "/rpc", "/rpc")
    wrong = DigestAuth("admin", "nope")
    wrong.learn(server.www_authenticate())
    assert not server.check_header(wrong.header("POST", "/rpc"), "POST", "/rpc", "/rpc")


@pytest.mark.parametrize(
    "header",
    [None, 'Basic realm="x"', 'Digest realm="r", nonce="1", algorithm=SHA-512', 'Digest nonce="1"'],
)
def test_unusable_challenges(header):
    with pytest.raises(DeviceAuthError):
        DigestAuth("admin", "pw").learn(header)


@pytest.mark.parametrize("body", [b"", b"{", b"NaN", b'{"a": Infinity}', b"\xff\xfe"])
def test_bodies_that_are_not_json(body):
    with pytest.raises(DeviceProtocolError, match="not JSON"):
        decode_json(HttpAnswer(200, {}, body), "GET /status")
