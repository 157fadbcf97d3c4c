"""Hostile device replies against the HTTP layer and the Shelly drivers, on real loopback servers.

Every reply the emulators can be told to send (floods with and without a length, a gzip bomb,
deep JSON, huge numbers, a trickle, garbage...) must end as a ``DeviceError`` within the
request's timeout, with memory bounded by ``MAX_BODY_BYTES`` — never a RecursionError,
OverflowError or a body read to the end.
"""

from __future__ import annotations

import json
import time
import tracemalloc

import aiohttp
import pytest

from venus_ems.clock import RealClock
from venus_ems.devices.http import (
    MAX_BODY_BYTES,
    MAX_JSON_CONTAINERS,
    MAX_JSON_DEPTH,
    decode_json,
    http_request,
    parse_json,
)
from venus_ems.devices.shelly import open_shelly
from venus_ems.errors import DeviceError, DeviceProtocolError, DeviceTimeoutError
from venus_ems.sim.devices import (
    InverterSpec,
    MemoryInverterBank,
    ShellyGen1Emulator,
    StaticMeter,
    pro_3em,
)
from venus_ems.sim.devices.opendtu import OpenDtuEmulator

pytestmark = pytest.mark.anyio

HOSTILE = ["oversized", "chunked_flood", "gzip_bomb", "deep_json", "huge_numbers", "trickle"]
BROKEN = ["garbage", "truncated", "http500", "slow"]
TIMEOUT_S = 0.5
VECTORS = [
    "shelly-gen1-3em-status.json",
    "shelly-gen2-pro3em-em-getstatus.json",
    "shelly-gen2-rpc-error-401.json",
    "opendtu-livedata-status-inv.json",
    "wattpilot-deltastatus.json",
]


# ----------------------------------------------------------------------------- JSON bounds


@pytest.mark.parametrize("name", VECTORS)
def test_real_payloads_decode_exactly_as_json_does(name, vector):
    doc = vector(name)
    text = json.dumps(doc)
    assert parse_json(text.encode(), name) == doc


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"[" * 200_000 + b"]" * 200_000, "arrays and objects"),
        (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), "deep"),
        (b'{"a":' * (MAX_JSON_DEPTH + 1) + b"1" + b"}" * (MAX_JSON_DEPTH + 1), "deep"),
        (b"[" + b"{}," * MAX_JSON_CONTAINERS + b"{}]", "arrays and objects"),
        (b'{"power": ' + b"9" * 400 + b"}", "characters"),
        (b'{"power": 1e400}', "too large"),
        (b'{"power": -1e20}', "too large"),
        (b'{"power": 100000000000000000000}', "too large"),
        (b'{"power": NaN}', "not a number"),
        (b'{"power": -Infinity}', "not a number"),
        (b'{"power": "unterminated', "Unterminated"),
        (b"\xff\xfe{}", "utf-8"),
        (b"", "Expecting value"),
    ],
)
def test_hostile_json_is_a_protocol_error(body, why):
    with pytest.raises(DeviceProtocolError, match=why) as err:
        parse_json(body, "GET /status")
    assert "GET /status" in str(err.value)
    assert len(str(err.value)) < 300  # the message quotes the head of the body, not all of it


def test_json_within_the_bounds_is_accepted():
    depth = MAX_JSON_DEPTH
    assert parse_json(b"[" * depth + b"]" * depth, "x") is not None
    # brackets and quotes inside strings are text, not structure
    tricky = '{"a": "' + "[" * 40 + '", "b": "\\"' + "{" * 40 + '"}'
    assert parse_json(tricky, "x") == json.loads(tricky)
    assert parse_json(b'{"e": 99999999999999999999, "f": -1.5e19, "g": 1e-300}', "x") == {
        "e": 99_999_999_999_999_999_999,
        "f": -1.5e19,
        "g": 1e-300,
    }


def test_decode_json_reads_the_answer_body():
    from venus_ems.devices.http import HttpAnswer  # noqa: PLC0415

    assert decode_json(HttpAnswer(200, {}, b'{"ok": true}'), "x") == {"ok": True}


# ----------------------------------------------------------------------------- HTTP bounds


def gen1(clock):
    return ShellyGen1Emulator("SHEM-3", meter=meter(clock), clock=clock), "/status"


def gen2(clock):
    return pro_3em(meter(clock), clock=clock), "/rpc/EM.GetStatus?id=0"


def opendtu(clock):
    bank = MemoryInverterBank([InverterSpec("114182940773")], clock=clock)
    bank.set_available_dc("114182940773", 100.0)
    return OpenDtuEmulator(bank, clock=clock), "/api/livedata/status"


def meter(clock):
    m = StaticMeter(3, clock=clock)
    m.set_power(0, 700.0)
    return m


@pytest.fixture(params=[gen1, gen2, opendtu], ids=["shelly-gen1", "shelly-gen2", "opendtu"])
def device(request):
    emu, path = request.param(RealClock())
    emu.faults.slow_s = 3.0
    emu.faults.trickle_s = 0.1
    return emu, path


async def timed_get(http, url):
    """(error, seconds, peak traced bytes) of one bounded GET + JSON decode."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        answer = await http_request(http, "GET", url, timeout_s=TIMEOUT_S)
        if answer.status != 200:
            raise DeviceProtocolError(f"HTTP {answer.status}")
        decode_json(answer, url)
    except DeviceError as err:
        error: DeviceError | None = err
    else:
        error = None
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return error, seconds, peak


@pytest.mark.parametrize("mode", HOSTILE + BROKEN)
async def test_every_fault_is_a_device_error_within_the_timeout_and_bounded(device, mode):
    emu, path = device
    async with emu, aiohttp.ClientSession() as http:
        error, _, _ = await timed_get(http, emu.url + path)
        assert error is None
        await emu.set_fault(mode)
        error, seconds, peak = await timed_get(http, emu.url + path)
        assert isinstance(error, DeviceError), mode
        if mode in ("trickle", "slow"):
            assert isinstance(error, DeviceTimeoutError)
        assert seconds < TIMEOUT_S + 0.5, mode
        # the reply was never read to the end: a few times the cap at most, in this process
        # that also runs the emulator
        assert peak < 4 * MAX_BODY_BYTES, (mode, peak)
        await emu.set_fault("ok")
        error, _, _ = await timed_get(http, emu.url + path)  # the same session recovers
        assert error is None, mode


@pytest.mark.parametrize("mode", ["chunked_flood", "gzip_bomb", "oversized"])
async def test_the_body_limit_is_exact(mode):
    emu, path = gen2(RealClock())
    async with emu, aiohttp.ClientSession() as http:
        emu.faults.configure(mode, flood_bytes=MAX_BODY_BYTES)
        answer = await http_request(http, "GET", emu.url + path, timeout_s=5.0)
        assert len(answer.body) == MAX_BODY_BYTES  # exactly the limit still arrives
        emu.faults.configure(mode, flood_bytes=MAX_BODY_BYTES + 1)
        with pytest.raises(DeviceProtocolError, match=r"too large|larger than"):
            await http_request(http, "GET", emu.url + path, timeout_s=5.0)
        emu.faults.configure("ok")
        answer = await http_request(http, "GET", emu.url + path, timeout_s=5.0)
        assert answer.status == 200


@pytest.mark.parametrize("make", [gen1, gen2], ids=["shelly-gen1", "shelly-gen2"])
@pytest.mark.parametrize("mode", HOSTILE + BROKEN + ["auth", "offline"])
async def test_meter_drivers_raise_only_device_errors(make, mode):
    clock = RealClock()
    emu, _ = make(clock)
    emu.faults.slow_s = 3.0
    emu.faults.trickle_s = 0.1
    async with emu, aiohttp.ClientSession() as http:
        host = emu.url.removeprefix("http://")
        dev = await open_shelly(http, host, clock=clock, timeout_s=TIMEOUT_S)
        assert (await dev.read_phases()).channels[0].power_w == 700.0
        await emu.set_fault(mode)
        with pytest.raises(DeviceError):
            await dev.read_phases()
        if mode != "auth":  # detection too (its probe is never protected, so auth passes)
            with pytest.raises(DeviceError):
                await open_shelly(http, host, clock=clock, timeout_s=TIMEOUT_S)
        await emu.set_fault("ok")
        assert (await dev.read_phases()).channels[0].power_w == 700.0
