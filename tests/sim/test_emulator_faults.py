"""Every fault mode of every emulator family, as a real aiohttp client sees it."""

from __future__ import annotations

import errno
import time

import aiohttp
import anyio
import pytest

from venus_ems.errors import ConfigError
from venus_ems.sim.devices import (
    InverterSpec,
    MemoryInverterBank,
    MemorySwitch,
    OpenDtuEmulator,
    ShellyGen1Emulator,
    StaticMeter,
    pro_3em,
)

pytestmark = pytest.mark.anyio


def gen1(clock):
    return ShellyGen1Emulator(
        "SHPLG-S", switch=MemorySwitch(load_w=42.0, on=True, clock=clock), clock=clock
    ), "/status"


def gen2(clock):
    meter = StaticMeter(3, clock=clock)
    meter.set_power(0, 123.4)
    return pro_3em(meter, clock=clock), "/rpc/EM.GetStatus?id=0"


def opendtu(clock):
    bank = MemoryInverterBank([InverterSpec("114182940773")], clock=clock)
    bank.set_available_dc("114182940773", 100.0)
    return OpenDtuEmulator(bank, clock=clock), "/api/livedata/status"


FAMILIES = [gen1, gen2, opendtu]


@pytest.fixture(params=FAMILIES, ids=["shelly-gen1", "shelly-gen2", "opendtu"])
def device(request, emu_clock):
    return request.param(emu_clock)


async def fetch(http, url):
    async with http.get(url) as resp:
        return resp.status, await resp.text(), resp.headers


async def test_offline_refuses_connections_and_comes_back_on_the_same_port(device):
    emu, path = device
    async with emu, aiohttp.ClientSession() as http:
        status, normal, _ = await fetch(http, emu.url + path)
        assert status == 200
        port = emu.port
        await emu.set_fault("offline")
        async with aiohttp.ClientSession() as fresh:
            with pytest.raises(aiohttp.ClientConnectorError) as err:
                await fetch(fresh, emu.url + path)
        assert err.value.os_error.errno == errno.ECONNREFUSED
        await emu.set_fault("ok")
        assert emu.port == port
        status, again, _ = await fetch(http, emu.url + path)
    assert status == 200
    assert again == normal  # state survived the outage


async def attempt(url):
    """The status of a GET on a new connection, or the client error it raised."""
    try:
        async with aiohttp.ClientSession() as fresh:
            return (await fetch(fresh, url))[0]
    except aiohttp.ClientError as err:
        return err


async def test_offline_set_synchronously_drops_a_kept_alive_connection(device):
    emu, path = device
    async with emu, aiohttp.ClientSession() as http:
        assert (await fetch(http, emu.url + path))[0] == 200
        emu.faults.mode = "offline"
        with pytest.raises(aiohttp.ClientError):
            await fetch(http, emu.url + path)
        with anyio.fail_after(2):  # the listener closes a moment later; then connects are refused
            while not isinstance(await attempt(emu.url + path), aiohttp.ClientConnectorError):
                await anyio.sleep(0.01)
        emu.faults.mode = "ok"
        with anyio.fail_after(2):
            while await attempt(emu.url + path) != 200:
                await anyio.sleep(0.01)


async def test_slow_answers_beyond_the_client_timeout(device):
    emu, path = device
    emu.faults.slow_s = 10.0
    async with emu, aiohttp.ClientSession() as http:
        emu.faults.mode = "slow"
        with pytest.raises(TimeoutError):
            async with http.get(emu.url + path, timeout=aiohttp.ClientTimeout(total=0.2)):
                pass
        emu.faults.slow_s = 0.3
        start = time.monotonic()
        status, _, _ = await fetch(http, emu.url + path)
        assert status == 200
        assert time.monotonic() - start >= 0.3
        await emu.set_fault("slow")
        emu.faults.slow_s = 10.0
        with pytest.raises(TimeoutError):
            async with http.get(emu.url + path, timeout=aiohttp.ClientTimeout(total=0.1)):
                pass
        start = time.monotonic()
    assert time.monotonic() - start < 2.0  # closing does not wait for the hanging answer


async def test_garbage_and_truncated_bodies_fail_to_parse(device):
    emu, path = device
    async with emu, aiohttp.ClientSession() as http:
        _, full, _ = await fetch(http, emu.url + path)
        for mode in ("garbage", "truncated"):
            emu.faults.mode = mode
            async with http.get(emu.url + path) as resp:
                assert resp.status == 200
                assert resp.content_type == "application/json"
                text = await resp.text()
                with pytest.raises(ValueError):
                    await resp.json()
            if mode == "truncated":
                assert 0 < len(text) < len(full)
                assert full.startswith(text)
            else:
                assert text not in full


async def test_http500_and_auth(device):
    emu, path = device
    async with emu, aiohttp.ClientSession() as http:
        emu.faults.mode = "http500"
        status, _, _ = await fetch(http, emu.url + path)
        assert status == 500
        emu.faults.mode = "auth"
        status, _, headers = await fetch(http, emu.url + path)
        assert status == 401
        assert "WWW-Authenticate" in headers
        emu.faults.mode = "ok"
        assert (await fetch(http, emu.url + path))[0] == 200
        assert emu.faults.requests == 3


async def test_opendtu_500_carries_the_firmware_error(http, emu_clock):
    emu, path = opendtu(emu_clock)
    async with emu:
        emu.faults.mode = "http500"
        async with http.get(emu.url + path) as resp:
            body = await resp.json()
    assert (resp.status, body["code"], body["type"]) == (500, 1007, "danger")


async def test_shelly_detection_stays_open_under_the_auth_fault(http, emu_clock):
    (g1, _), (g2, _) = gen1(emu_clock), gen2(emu_clock)
    async with g1, g2:
        g1.faults.mode = g2.faults.mode = "auth"
        assert (await fetch(http, g1.url + "/shelly"))[0] == 200
        assert (await fetch(http, g2.url + "/shelly"))[0] == 200
        assert (await fetch(http, g2.url + "/rpc/Shelly.GetDeviceInfo"))[0] == 200
        assert (await fetch(http, g2.url + "/rpc/Shelly.GetStatus"))[0] == 401


async def test_a_bad_mode_is_refused_and_the_emulator_keeps_serving(http, emu_clock):
    emu, path = gen2(emu_clock)
    other, other_path = opendtu(emu_clock)
    async with emu, other:
        assert emu.port != other.port
        with pytest.raises(ConfigError, match="not one of"):
            await emu.set_fault("on fire")
        assert emu.faults.mode == "ok"
        await other.set_fault("offline")  # one emulator's fault does not touch another
        assert (await fetch(http, emu.url + path))[0] == 200
        await other.set_fault("ok")
        assert (await fetch(http, other.url + other_path))[0] == 200


async def test_an_emulator_can_start_offline(http, emu_clock):
    emu, path = gen1(emu_clock)
    emu.faults.mode = "offline"
    async with emu:
        assert emu.port != 0  # the port is reserved, so the URL stays valid
        async with aiohttp.ClientSession() as fresh:
            with pytest.raises(aiohttp.ClientConnectorError):
                await fetch(fresh, emu.url + path)
        await emu.set_fault("ok")
        assert (await fetch(http, emu.url + path))[0] == 200
