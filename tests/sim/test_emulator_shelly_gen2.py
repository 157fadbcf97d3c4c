"""Shelly gen2+ emulator over HTTP RPC with a real aiohttp client: shapes, values, auth."""

from __future__ import annotations

import hashlib
import json

import aiohttp
import pytest

from venus_ems.sim.devices import (
    MemorySwitch,
    PhaseReading,
    StaticMeter,
    em_gen3,
    mini_1pm_gen3,
    plus_1pm,
    pm_mini_gen3,
    pro_3em,
    pro_em,
)

pytestmark = pytest.mark.anyio


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


async def rpc(http, url, method, status=200, **params):
    query = "&".join(f"{k}={json.dumps(v)}" for k, v in params.items())
    async with http.get(f"{url}/rpc/{method}?{query}") as resp:
        assert resp.status == status, await resp.text()
        return await resp.json()


async def frame(http, url, body, status=200):
    async with http.post(f"{url}/rpc", json=body) as resp:
        assert resp.status == status, await resp.text()
        return await resp.json()


def three_phase(clock):
    return StaticMeter(
        [
            PhaseReading.of(
                375.5, voltage_v=229.0, power_factor=0.76, energy_forward_wh=2034616.71
            ),
            PhaseReading.of(170.8, voltage_v=229.0, power_factor=0.78, energy_reverse_wh=40.7),
            PhaseReading.of(-12.7, voltage_v=229.2, power_factor=0.53, energy_reverse_wh=985.91),
        ],
        clock=clock,
    )


# --- shapes against the captured payloads --------------------------------------------------------


async def test_pro_3em_matches_the_captures(http, emu_clock, vector, json_shape):
    async with pro_3em(three_phase(emu_clock), name="Test Name", clock=emu_clock) as dev:
        em = await rpc(http, dev.url, "EM.GetStatus", id=0)
        emdata = await rpc(http, dev.url, "EMData.GetStatus", id=0)
        async with http.get(f"{dev.url}/shelly") as resp:
            info = await resp.json()
        full = await rpc(http, dev.url, "Shelly.GetStatus")
    assert json_shape(em) == json_shape(vector("shelly-gen2-pro3em-em-getstatus.json"))
    assert json_shape(emdata) == json_shape(vector("shelly-gen2-pro3em-emdata-getstatus.json"))
    assert json_shape(info) == json_shape(vector("shelly-gen2-pro3em-shelly-info.json"))
    assert json_shape(full["em:0"]) == json_shape(em)


async def test_pro_em_and_plus_1pm_match_the_captures(http, emu_clock, vector, json_shape):
    async with pro_em(StaticMeter(2, clock=emu_clock), clock=emu_clock) as dev:
        em1 = await rpc(http, dev.url, "EM1.GetStatus", id=0)
        em1data = await rpc(http, dev.url, "EM1Data.GetStatus", id=1)
    assert json_shape(em1) == json_shape(vector("shelly-gen2-proem-em1-getstatus.json"))
    assert json_shape(em1data) == json_shape(vector("shelly-gen2-proem-em1data-getstatus.json"))
    async with plus_1pm(MemorySwitch(clock=emu_clock), clock=emu_clock) as dev:
        switch = await rpc(http, dev.url, "Switch.GetStatus", id=0)
    assert json_shape(switch) == json_shape(vector("shelly-gen2-plus1pm-switch-getstatus.json"))


async def test_errors_and_frames_match_the_captures(http, emu_clock, vector, json_shape):
    # load (or skip) before any server runs: a skip inside a task group would become an error
    names = ("http-get-error-404", "rpc-error-invalid-argument", "rpc-error-not-found",
             "rpc-post-response", "rpc-response-null-result", "rpc-error-401")  # fmt: skip
    captures = {n: vector(f"shelly-gen2-{n}.json") for n in names}
    async with plus_1pm(MemorySwitch(clock=emu_clock), clock=emu_clock) as dev:
        missing = await rpc(http, dev.url, "ProOutputAddon.GetPeripherals", status=404)
        assert json_shape(missing) == json_shape(captures["http-get-error-404"])
        assert missing["message"] == "No handler for ProOutputAddon.GetPeripherals"
        no_id = await frame(http, dev.url, {"id": 1, "src": "user_1", "method": "Switch.GetStatus"})
        assert json_shape(no_id) == json_shape(captures["rpc-error-invalid-argument"])
        assert no_id["error"] == {"code": -103, "message": "Missing required 'id'"}
        bad = await frame(
            http,
            dev.url,
            {"id": 1, "src": "user_1", "method": "Switch.GetStatus", "params": {"id": 7}},
        )
        assert json_shape(bad) == json_shape(captures["rpc-error-not-found"])
        assert bad["error"] == {"code": -105, "message": "Bad id=7"}
        done = await frame(
            http, dev.url, {"id": 0, "method": "Switch.Set", "params": {"id": 0, "on": True}}
        )
        assert json_shape(done) == json_shape(captures["rpc-post-response"])
        null = await frame(http, dev.url, {"id": 19, "src": "aios-1", "method": "Shelly.Reboot"})
        assert json_shape(null) == json_shape(captures["rpc-response-null-result"])
    async with plus_1pm(MemorySwitch(clock=emu_clock), password="pw", clock=emu_clock) as dev:
        refused = await frame(
            http,
            dev.url,
            {"id": 18, "src": "aios-1", "method": "Switch.Set", "params": {"id": 0, "on": True}},
            status=401,
        )
    expected = captures["rpc-error-401"]
    assert json_shape(refused) == json_shape(expected)
    assert json_shape(json.loads(refused["error"]["message"])) == json_shape(
        json.loads(expected["error"]["message"])
    )


async def test_documented_shapes_without_vectors(http, emu_clock):
    async with mini_1pm_gen3(MemorySwitch(clock=emu_clock), clock=emu_clock) as dev:
        sw = await rpc(http, dev.url, "Switch.GetStatus", id=0)
        info = await rpc(http, dev.url, "Shelly.GetDeviceInfo")
        methods = (await rpc(http, dev.url, "Shelly.ListMethods"))["methods"]
    assert set(sw) == {
        "id",
        "source",
        "output",
        "apower",
        "voltage",
        "current",
        "freq",
        "aenergy",
        "ret_aenergy",
        "temperature",
    }
    assert set(sw["aenergy"]) == {"total", "by_minute", "minute_ts"}
    assert info["gen"] == 3
    assert info["id"].startswith("shelly1pmminig3-")
    assert {"Switch.Set", "Switch.Toggle", "Shelly.GetStatus", "Sys.GetStatus"} <= set(methods)
    async with pm_mini_gen3(MemorySwitch(on=True, clock=emu_clock), clock=emu_clock) as dev:
        pm1 = await rpc(http, dev.url, "PM1.GetStatus", id=0)
    assert set(pm1) == {"id", "voltage", "current", "apower", "freq", "aenergy", "ret_aenergy"}
    async with em_gen3(StaticMeter(2, clock=emu_clock), clock=emu_clock) as dev:
        full = await rpc(http, dev.url, "Shelly.GetStatus")
    assert {"em1:0", "em1:1", "em1data:0", "em1data:1", "switch:0", "sys"} <= set(full)
    assert set(full["switch:0"]) == {"id", "source", "output"}  # contactor, no meter
    assert {"unixtime", "uptime"} <= set(full["sys"])


# --- values, units and signs ---------------------------------------------------------------------


async def test_em_values_signs_and_watt_hours(http, emu_clock):
    meter = three_phase(emu_clock)
    async with pro_3em(meter, clock=emu_clock) as dev:
        em = await rpc(http, dev.url, "EM.GetStatus", id=0)
        await emu_clock.advance(3600)
        emdata = await rpc(http, dev.url, "EMData.GetStatus", id=0)
    assert em["a_act_power"] == 375.5
    assert em["c_act_power"] == -12.7  # export on phase c
    assert em["c_current"] > 0  # currents stay unsigned
    assert em["total_act_power"] == pytest.approx(375.5 + 170.8 - 12.7)
    assert em["a_aprt_power"] == pytest.approx(375.5 / 0.76, abs=0.1)
    assert em["n_current"] is None
    assert emdata["a_total_act_energy"] == pytest.approx(2034616.71 + 375.5, abs=0.01)
    assert emdata["c_total_act_ret_energy"] == pytest.approx(985.91 + 12.7, abs=0.01)
    assert emdata["total_act"] == pytest.approx(2034616.71 + 375.5 + 170.8, abs=0.01)
    assert emdata["total_act_ret"] == pytest.approx(40.7 + 985.91 + 12.7, abs=0.01)


async def test_pro_em_channels_map_to_meter_channels(http, emu_clock):
    meter = StaticMeter(2, clock=emu_clock)
    meter.set_power(0, -332.2, power_factor=0.99)
    meter.set_power(1, 231.9)
    async with pro_em(meter, clock=emu_clock) as dev:
        grid = await rpc(http, dev.url, "EM1.GetStatus", id=0)
        load = await rpc(http, dev.url, "EM1.GetStatus", id=1)
        await rpc(http, dev.url, "EM1.GetStatus", status=500, id=2)
    assert (grid["act_power"], load["act_power"]) == (-332.2, 231.9)
    assert grid["pf"] == 0.99


async def test_switch_energy_units_and_gen3_sign(http, emu_clock):
    sw = MemorySwitch(load_w=-240.0, on=True, clock=emu_clock)
    async with mini_1pm_gen3(sw, clock=emu_clock) as gen3, plus_1pm(sw, clock=emu_clock) as gen2:
        await emu_clock.advance(125)
        status3 = await rpc(http, gen3.url, "Switch.GetStatus", id=0)
        status2 = await rpc(http, gen2.url, "Switch.GetStatus", id=0)
    assert status3["apower"] == -240.0  # gen3 signs power fed back
    assert status2["apower"] == 240.0  # gen2 reports the magnitude
    returned_wh = 240.0 * 125 / 3600
    assert status3["ret_aenergy"]["total"] == pytest.approx(returned_wh, abs=1e-3)
    assert status3["aenergy"]["total"] == pytest.approx(returned_wh, abs=1e-3)  # includes returned
    # by_minute in mWh: 240 W for one minute = 4 Wh = 4000 mWh
    assert status3["aenergy"]["by_minute"] == pytest.approx([4000.0, 4000.0, 0.0])
    assert status3["aenergy"]["minute_ts"] == int(emu_clock.now().timestamp()) // 60 * 60
    assert "ret_aenergy" not in status2


# --- Switch.Set and friends ----------------------------------------------------------------------


async def test_switch_set_changes_the_source_and_reads_back(http, emu_clock):
    sw = MemorySwitch(load_w=100.0, clock=emu_clock)
    async with plus_1pm(sw, clock=emu_clock) as dev:
        assert await rpc(http, dev.url, "Switch.Set", id=0, on=True) == {"was_on": False}
        assert sw.read().output is True
        status = await rpc(http, dev.url, "Switch.GetStatus", id=0)
        assert (status["output"], status["apower"], status["source"]) == (True, 100.0, "HTTP_in")
        async with http.post(f"{dev.url}/rpc/Switch.Toggle", json={"id": 0}) as resp:
            assert await resp.json() == {"was_on": True}
        assert sw.read().output is False
        reply = await frame(
            http,
            dev.url,
            {
                "id": 5,
                "src": "me",
                "method": "switch.set",
                "params": {"id": 0, "on": True, "toggle_after": 30},
            },
        )
        assert reply == {
            "id": 5,
            "src": dev.identity.device_id,
            "dst": "me",
            "result": {"was_on": False},
        }
        status = await rpc(http, dev.url, "Switch.GetStatus", id=0)
        assert status["timer_duration"] == 30
        await emu_clock.advance(30)
        status = await rpc(http, dev.url, "Switch.GetStatus", id=0)
    assert status["output"] is False
    assert status["source"] == "timer"
    assert "timer_duration" not in status
    assert sw.read().output is False


async def test_bad_parameters_are_answered_like_the_device_and_change_nothing(http, emu_clock):
    sw = MemorySwitch(clock=emu_clock)
    async with plus_1pm(sw, clock=emu_clock) as dev:
        err = await rpc(http, dev.url, "Switch.Set", status=500, id=0)
        assert err == {"code": -103, "message": "Missing required 'on'"}
        err = await rpc(http, dev.url, "Switch.Set", status=500, id=0, on="maybe")
        assert err == {"code": -103, "message": "Invalid argument 'on'"}
        err = await rpc(http, dev.url, "Switch.Set", status=500, id=0, on=True, toggle_after=-1)
        assert err["code"] == -103
        err = await rpc(http, dev.url, "Switch.Set", status=500, id=3, on=True)
        assert err == {"code": -105, "message": "Bad id=3"}
        err = await rpc(http, dev.url, "Switch.Explode", status=404, id=0)
        assert err == {"code": 404, "message": "No handler for Switch.Explode"}
        err = await rpc(http, dev.url, "EM.GetStatus", status=404, id=0)
        assert err["message"] == "No handler for EM.GetStatus"
        reply = await frame(http, dev.url, {"id": 2, "method": "Switch.Set", "params": [1]})
        assert reply["error"]["code"] == -103
        for body in (b"{not json", b'{"id": 1}', b"[]"):
            async with http.post(f"{dev.url}/rpc", data=body) as resp:
                assert resp.status == 400
        async with http.post(f"{dev.url}/rpc/Switch.Set", data=b"[true]") as resp:
            assert resp.status == 400
    assert sw.read().output is False
    assert sw.switch_count == 0


async def test_reboot_resets_uptime(http, emu_clock):
    async with plus_1pm(MemorySwitch(clock=emu_clock), clock=emu_clock) as dev:
        await emu_clock.advance(100)
        assert (await rpc(http, dev.url, "Sys.GetStatus"))["uptime"] == 100
        async with http.get(f"{dev.url}/rpc/Shelly.Reboot") as resp:
            assert await resp.json() is None
        assert (await rpc(http, dev.url, "Sys.GetStatus"))["uptime"] == 0


# --- digest auth ---------------------------------------------------------------------------------


async def test_digest_auth_with_aiohttp_digest_middleware(emu_clock):
    sw = MemorySwitch(clock=emu_clock)
    async with plus_1pm(sw, password="s3cret", clock=emu_clock) as dev:
        async with aiohttp.ClientSession() as anonymous:
            async with anonymous.get(f"{dev.url}/rpc/Switch.Set?id=0&on=true") as resp:
                assert resp.status == 401
                challenge = resp.headers["WWW-Authenticate"]
            assert challenge.startswith("Digest ")
            assert f'realm="{dev.identity.device_id}"' in challenge
            assert "algorithm=SHA-256" in challenge
            async with anonymous.get(f"{dev.url}/shelly") as resp:
                info = await resp.json()
            assert (info["auth_en"], info["auth_domain"]) == (True, dev.identity.device_id)
            assert (await rpc(anonymous, dev.url, "Shelly.GetDeviceInfo"))["auth_en"] is True
        assert sw.read().output is False
        wrong = aiohttp.DigestAuthMiddleware("admin", "guess")
        async with aiohttp.ClientSession(middlewares=(wrong,)) as client:
            async with client.get(f"{dev.url}/rpc/Switch.Set?id=0&on=true") as resp:
                assert resp.status == 401
        assert sw.read().output is False
        right = aiohttp.DigestAuthMiddleware("admin", "s3cret")
        async with aiohttp.ClientSession(middlewares=(right,)) as client:
            assert await rpc(client, dev.url, "Switch.Set", id=0, on=True) == {"was_on": False}
            async with client.post(
                f"{dev.url}/rpc", json={"id": 1, "method": "Switch.GetStatus", "params": {"id": 0}}
            ) as resp:
                assert (await resp.json())["result"]["output"] is True
    assert sw.read().output is True


async def test_digest_auth_inside_the_json_rpc_frame(http, emu_clock):
    async with plus_1pm(MemorySwitch(clock=emu_clock), password="s3cret", clock=emu_clock) as dev:
        request = {"id": 3, "src": "me", "method": "Switch.Set", "params": {"id": 0, "on": True}}
        refused = await frame(http, dev.url, request, status=401)
        challenge = json.loads(refused["error"]["message"])
        ha1 = sha(f"admin:{challenge['realm']}:s3cret")
        ha2 = sha("dummy_method:dummy_uri")
        cnonce = 313
        response = sha(f"{ha1}:{challenge['nonce']}:{challenge['nc']}:{cnonce}:auth:{ha2}")
        auth = {
            "realm": challenge["realm"],
            "username": "admin",
            "nonce": challenge["nonce"],
            "cnonce": cnonce,
            "response": response,
            "algorithm": "SHA-256",
        }
        reply = await frame(http, dev.url, {**request, "auth": auth})
        assert reply["result"] == {"was_on": False}
        await frame(http, dev.url, {**request, "auth": {**auth, "cnonce": 314}}, status=401)
        await emu_clock.advance(3601)
        await frame(http, dev.url, {**request, "auth": auth}, status=401)
