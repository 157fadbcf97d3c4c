"""The generic HTTP switch driver against a hostile server on loopback: bad replies are errors."""

from __future__ import annotations

import json

import aiohttp
import anyio
import pytest
from aiohttp import web

from venus_ems.clock import RealClock
from venus_ems.devices import Connection, PowerMeter, Switch
from venus_ems.devices.http_switch import json_field
from venus_ems.devices.registry import open_device
from venus_ems.errors import ConfigError, DeviceError, DeviceProtocolError, DeviceTimeoutError

pytestmark = pytest.mark.anyio


class Device:
    """A relay on HTTP whose status answer the test chooses."""

    def __init__(self) -> None:
        self.on = False
        self.status: object = None  # None: a correct answer
        self.obey = True
        self.delay_s = 0.0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/on", self._turn(True))
        app.router.add_get("/off", self._turn(False))
        app.router.add_get("/status", self._status)
        return app

    def _turn(self, on: bool):
        async def handler(_request: web.Request) -> web.Response:
            if self.obey:
                self.on = on
            return web.Response(text="ok")

        return handler

    async def _status(self, _request: web.Request) -> web.StreamResponse:
        await anyio.sleep(self.delay_s)
        if self.status is None:
            return web.json_response(
                {"relay": {"ison": self.on}, "apower": 812.5 if self.on else 0}
            )
        if isinstance(self.status, int):
            return web.Response(status=self.status)
        return web.Response(text=str(self.status), content_type="application/json")


@pytest.fixture
async def served():
    dev = Device()
    runner = web.AppRunner(dev.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    base = f"http://127.0.0.1:{port}"
    options = {
        "on_url": f"{base}/on",
        "off_url": f"{base}/off",
        "status_url": f"{base}/status",
        "status_field": "relay.ison",
        "power_url": f"{base}/status",
        "power_field": "apower",
    }
    async with aiohttp.ClientSession() as session:
        sw = await open_device(
            "http_switch", session, Connection("boiler", 0.5, options=options), clock=RealClock()
        )
        assert isinstance(sw, Switch)
        assert isinstance(sw, PowerMeter)
        yield dev, sw
    await runner.cleanup()


async def test_switch_read_back_and_power(served):
    dev, sw = served
    await sw.set_output(0, True)
    assert dev.on is True
    assert await sw.read_output() is True
    assert (await sw.read_power(0)).power_w == 812.5
    await sw.set_output(0, False)
    assert await sw.read_output() is False


async def test_a_device_that_does_not_switch_is_an_error(served):
    dev, sw = served
    dev.obey = False
    with pytest.raises(DeviceProtocolError, match="status says not"):
        await sw.set_output(0, True)


@pytest.mark.parametrize(
    ("status", "error", "match"),
    [
        ("{not json", DeviceProtocolError, None),
        (json.dumps({"relay": {}}), DeviceProtocolError, "no field 'relay.ison'"),
        (json.dumps({"relay": {"ison": "maybe"}}), DeviceProtocolError, "not on/off"),
        ("[" * 100 + "]" * 100, DeviceProtocolError, None),
        (500, DeviceProtocolError, "HTTP 500"),
    ],
)
async def test_bad_status_answers_are_errors(served, status, error, match):
    dev, sw = served
    dev.status = status
    with pytest.raises(error, match=match):
        await sw.read_output()


async def test_a_slow_device_times_out(served):
    dev, sw = served
    dev.delay_s = 2.0
    with pytest.raises(DeviceTimeoutError):
        await sw.read_output()


@pytest.mark.parametrize("power", ['"lots"', "1e300", "true", "null"])
async def test_bad_power_is_an_error_never_zero(served, power):
    dev, sw = served
    dev.status = '{"relay": {"ison": true}, "apower": ' + power + "}"
    with pytest.raises(DeviceError):
        await sw.read_power(0)


async def test_options_are_checked_when_opened():
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ConfigError, match="unknown options colour"):
            await open_device(
                "http_switch",
                session,
                Connection("x", options={"colour": "red"}),
                clock=RealClock(),
            )
        with pytest.raises(ConfigError, match="needs on_url"):
            await open_device("http_switch", session, Connection("x"), clock=RealClock())


def test_json_field_walks_objects_and_lists():
    doc = {"relays": [{"ison": False}, {"ison": True}]}
    assert json_field(doc, "relays.1.ison") is True
    with pytest.raises(DeviceProtocolError):
        json_field(doc, "relays.2.ison")
