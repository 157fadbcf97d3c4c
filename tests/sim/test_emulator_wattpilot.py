"""The emulated Wattpilot speaks the protocol of the vectors: checked with a bare websocket client.

No driver code and no crypto here: the client sends the vectors' own frames (their ``auth``
hash for the fixed tokens, their signed ``securedMsg``), so the emulator is held to the
published known answers, not to our implementation of them.
"""

from __future__ import annotations

import json
import re

import aiohttp
import anyio
import pytest

from venus_ems.sim.devices.wallbox import ModelWallbox
from venus_ems.sim.devices.wattpilot import (
    CLASSIC,
    CLASSIC_42,
    FLEX,
    FLEX_SILENT,
    WattpilotEmulator,
)
from venus_ems.sim.physics import Car
from wattpilot_vectors import known_answers

pytestmark = pytest.mark.anyio


@pytest.fixture
def md(vector_text):
    return vector_text("wattpilot-handshake.md")


@pytest.fixture
def ka(md):
    return known_answers(md)


def doc_example(md: str, kind: str) -> dict:
    """The first JSON example of a frame of ``kind`` in the vectors' Markdown."""
    block = re.search(r'```json\n(\{"type": "' + kind + r'".*?)\n```', md, re.DOTALL)
    inline = re.search(r'`(\{"type": "' + kind + r'".*?\})`', md)
    return json.loads((block or inline)[1])


async def recv(ws) -> dict:
    with anyio.fail_after(5):
        msg = await ws.receive()
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    return json.loads(msg.data)


async def login(http, emu, ka, scheme):
    ws = await http.ws_connect(emu.url)
    hello, challenge = await recv(ws), await recv(ws)
    await ws.send_json({"type": "auth", "token3": ka.token3, "hash": ka.auth_hash[scheme]})
    return ws, hello, challenge, await recv(ws)


@pytest.mark.parametrize(
    ("identity", "scheme", "announced"),
    [(CLASSIC, "pbkdf2", None), (CLASSIC_42, "pbkdf2", "pbkdf2"), (FLEX, "bcrypt", "bcrypt"),
     (FLEX_SILENT, "bcrypt", None)],
)  # fmt: skip
async def test_login_with_the_vectors_frames(http, emu_clock, md, ka, identity, scheme, announced):
    box = ModelWallbox(emu_clock)
    tokens = (ka.token1, ka.token2)
    async with WattpilotEmulator(
        box, identity=identity, clock=emu_clock, tokens=lambda: tokens
    ) as emu:
        ws, hello, challenge, result = await login(http, emu, ka, scheme)
        assert hello.keys() == doc_example(md, "hello").keys()
        assert (hello["serial"], hello["devicetype"], hello["version"]) == (
            ka.serial, identity.devicetype, identity.firmware)  # fmt: skip
        assert challenge.get("hash") == announced
        assert result == {"type": "authSuccess", "token3": ka.token3, "hash": ka.auth_hash[scheme]}
        parts = [await recv(ws) for _ in range(3)]
        assert [p["type"] for p in parts] == ["fullStatus"] * 3
        assert [p["partial"] for p in parts] == [True, True, False]
        status = {k: v for p in parts for k, v in p["status"].items()}
        example = doc_example(md, "fullStatus")
        assert example["status"].keys() <= status.keys()
        await ws.close()


async def test_the_vector_write_is_acknowledged_as_the_vector_says(http, emu_clock, ka):
    box = ModelWallbox(emu_clock)
    tokens = (ka.token1, ka.token2)
    async with WattpilotEmulator(box, clock=emu_clock, tokens=lambda: tokens) as emu:
        ws, *_ = await login(http, emu, ka, "pbkdf2")
        for _ in range(3):
            await recv(ws)
        await ws.send_json(ka.secured_amp10)
        acked = {"type": "response", "requestId": "1", "success": True, "status": {"amp": 10}}
        assert await recv(ws) == acked  # handshake.md §8 step 6
        assert box.ev.current_setpoint_a == 10
        refused = [
            ({**ka.secured_amp10, "hmac": "00" * 32}, "invalid hmac"),
            ({"type": "setValue", "requestId": 2, "key": "amp", "value": 10}, "must be secured"),
        ]
        for frame, why in refused:
            await ws.send_json(frame)
            answer = await recv(ws)
            assert (answer["success"], answer["message"]) == (False, why)
        assert box.ev.current_setpoint_a == 10
        await ws.close()


async def test_a_wrong_hash_gets_the_vectors_auth_error(http, emu_clock, md, ka):
    box = ModelWallbox(emu_clock)
    async with WattpilotEmulator(box, clock=emu_clock, password="another") as emu:
        ws, _, _, result = await login(http, emu, ka, "pbkdf2")
        error_example = re.search(r'(\{"type": "authError".*?\})`', md)[1]
        assert result.keys() == json.loads(error_example).keys()
        assert result["message"] == "Wrong password"
        with anyio.fail_after(5):
            assert (await ws.receive()).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert emu.logins == 0


async def test_deltas_have_the_vectors_shape_and_drive_the_physics(http, emu_clock, vector, ka):
    box = ModelWallbox(emu_clock)
    box.plug_in(Car(capacity_kwh=10, soc_pct=96, phases=3, taper_start_pct=90))
    tokens = (ka.token1, ka.token2)
    async with WattpilotEmulator(box, clock=emu_clock, tokens=lambda: tokens) as emu:
        ws, *_ = await login(http, emu, ka, "pbkdf2")
        for _ in range(3):
            await recv(ws)
        await emu_clock.advance(3)
        deltas = []
        with anyio.move_on_after(0.5):
            while True:
                deltas.append(await recv(ws))
        assert deltas, "a delta every second"
        sample = vector("wattpilot-deltastatus.json")
        for delta in deltas:
            assert delta["type"] == "deltaStatus"
            assert {"nrg", "rbt", "utc", "loc"} <= delta["status"].keys()
            assert len(delta["status"]["nrg"]) == len(sample["status"]["nrg"])
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\.\d{3}",
                                delta["status"]["utc"])  # fmt: skip
        nrg = deltas[-1]["status"]["nrg"]
        currents = nrg[4:7]
        assert 0 < currents[0] < 16  # nearly full: the car takes less than offered
        assert currents[0] == currents[1] == currents[2]
        assert nrg[11] == pytest.approx(sum(nrg[7:10]), abs=2)
        await ws.close()
    # the battery fills, the current falls off, then the car is complete
    for _ in range(30):
        await emu_clock.advance(60)
    state = box.state()
    assert state.complete
    assert state.current_a == (0, 0, 0)
