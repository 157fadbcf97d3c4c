"""Shelly gen1 emulator with a real aiohttp client: shapes, values, relay, auth, bad requests."""

from __future__ import annotations

import aiohttp
import pytest

from venus_ems.errors import ConfigError
from venus_ems.sim.devices import (
    Gen1Identity,
    MemorySwitch,
    PhaseReading,
    ShellyGen1Emulator,
    StaticMeter,
)

pytestmark = pytest.mark.anyio

NAMED = Gen1Identity(name="Test Name")


def em_meter(clock):
    return StaticMeter(
        [
            PhaseReading.of(
                -620.34,
                voltage_v=235.68,
                power_factor=-0.66,
                energy_forward_wh=401472.9,
                energy_reverse_wh=653673.7,
            ),
            PhaseReading.of(
                0.0, voltage_v=235.68, energy_forward_wh=173411.3, energy_reverse_wh=294.2
            ),
        ],
        clock=clock,
    )


async def get_json(http, url, **kw):
    async with http.get(url, **kw) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


# --- shapes against the captured payloads --------------------------------------------------------


async def test_em_status_matches_the_capture(http, emu_clock, vector, json_shape):
    async with ShellyGen1Emulator("SHEM", meter=em_meter(emu_clock), clock=emu_clock) as em:
        body = await get_json(http, f"{em.url}/status")
    assert json_shape(body) == json_shape(vector("shelly-gen1-em-status.json"))


async def test_3em_status_matches_the_capture(http, emu_clock, vector, json_shape):
    meter = StaticMeter(3, clock=emu_clock)
    async with ShellyGen1Emulator("SHEM-3", meter=meter, clock=emu_clock) as em3:
        body = await get_json(http, f"{em3.url}/status")
    assert json_shape(body) == json_shape(vector("shelly-gen1-3em-status.json"))


async def test_plug_status_info_and_relay_match_the_captures(http, emu_clock, vector, json_shape):
    plug = ShellyGen1Emulator(
        "SHPLG-S", switch=MemorySwitch(clock=emu_clock), identity=NAMED, clock=emu_clock
    )
    async with plug:
        status = await get_json(http, f"{plug.url}/status")
        info = await get_json(http, f"{plug.url}/shelly")
        relay = await get_json(http, f"{plug.url}/relay/0")
    assert json_shape(status) == json_shape(vector("shelly-gen1-plugs-status.json"))
    assert json_shape(info) == json_shape(vector("shelly-gen1-plugs-shelly-info.json"))
    assert json_shape(relay) == json_shape(vector("shelly-gen1-relay-response.json"))


async def test_documented_shapes_without_vectors(http, emu_clock):
    async with ShellyGen1Emulator(
        "SHEM-3", meter=StaticMeter(3, clock=emu_clock), clock=emu_clock
    ) as em3:
        status = await get_json(http, f"{em3.url}/status")
        info = await get_json(http, f"{em3.url}/shelly")
        one = await get_json(http, f"{em3.url}/emeter/2")
    keys = {"power", "pf", "current", "voltage", "is_valid", "total", "total_returned"}
    assert [set(e) for e in status["emeters"]] == [keys] * 3
    assert set(one) == keys
    assert {"total_power", "emeter_n", "relays", "unixtime", "uptime"} <= set(status)
    assert info["type"] == "SHEM-3"
    assert info["num_emeters"] == 3
    assert info["auth"] is False
    one_pm = ShellyGen1Emulator("SHSW-PM", switch=MemorySwitch(clock=emu_clock), clock=emu_clock)
    async with one_pm:
        status = await get_json(http, f"{one_pm.url}/status")
        meter = await get_json(http, f"{one_pm.url}/meter/0")
    assert set(meter) == {"power", "overpower", "is_valid", "timestamp", "counters", "total"}
    assert {"inputs", "temperature", "tmp", "relays", "meters"} <= set(status)


# --- values, units and signs ---------------------------------------------------------------------


async def test_em_values_are_signed_watts_and_watt_hours(http, emu_clock):
    meter = em_meter(emu_clock)
    async with ShellyGen1Emulator("SHEM", meter=meter, clock=emu_clock) as em:
        first = await get_json(http, f"{em.url}/emeter/0")
        await emu_clock.advance(3600)
        status = await get_json(http, f"{em.url}/status")
    assert first["power"] == pytest.approx(-620.34)
    assert first["pf"] == pytest.approx(-0.66)
    assert first["voltage"] == pytest.approx(235.68)
    assert first["reactive"] < 0
    assert "current" not in first  # the EM has no current field
    exported = status["emeters"][0]
    assert exported["total"] == pytest.approx(401472.9)  # nothing imported
    assert exported["total_returned"] == pytest.approx(653673.7 + 620.34, abs=0.1)
    assert status["unixtime"] == int(emu_clock.now().timestamp())
    assert status["uptime"] == 3600
    assert status["time"] == "02:00"  # local time, UTC+1


async def test_3em_current_is_unsigned_and_total_power_is_the_signed_sum(http, emu_clock):
    meter = StaticMeter(3, clock=emu_clock)
    meter.set_power(0, 1150.0)
    meter.set_power(1, -460.0)
    async with ShellyGen1Emulator("SHEM-3", meter=meter, clock=emu_clock) as em3:
        status = await get_json(http, f"{em3.url}/status")
    a, b, c = status["emeters"]
    assert (a["power"], b["power"], c["power"]) == (1150.0, -460.0, 0.0)
    assert a["current"] == pytest.approx(5.0)
    assert b["current"] == pytest.approx(2.0)
    assert status["total_power"] == pytest.approx(690.0)
    assert status["emeter_n"]["ixsum"] == pytest.approx(7.0)


async def test_plug_energy_is_in_watt_minutes_with_minute_counters(http, emu_clock):
    sw = MemorySwitch(load_w=120.0, on=True, energy_wh=10.0, clock=emu_clock)
    async with ShellyGen1Emulator("SHPLG-S", switch=sw, clock=emu_clock) as plug:
        await emu_clock.advance(150)
        status = await get_json(http, f"{plug.url}/status")
    meter = status["meters"][0]
    assert meter["power"] == 120.0
    assert meter["total"] == round((10.0 + 120.0 * 150 / 3600) * 60)
    # 120 W for a whole minute = 2 Wh = 120 Wmin; only two whole minutes have passed
    assert meter["counters"] == pytest.approx([120.0, 120.0, 0.0])
    assert meter["timestamp"] == status["unixtime"] + 3600
    sw.load_w = -80.0  # fed back: gen1 only knows the magnitude
    async with ShellyGen1Emulator("SHPLG-S", switch=sw, clock=emu_clock) as plug:
        meter = await get_json(http, f"{plug.url}/meter/0")
    assert meter["power"] == 80.0


# --- relay ---------------------------------------------------------------------------------------


async def test_relay_turn_switches_the_source_and_reads_back(http, emu_clock):
    sw = MemorySwitch(load_w=50.0, clock=emu_clock)
    async with ShellyGen1Emulator("SHPLG-S", switch=sw, clock=emu_clock) as plug:
        on = await get_json(http, f"{plug.url}/relay/0?turn=on")
        assert on["ison"] is True
        assert on["source"] == "http"
        assert sw.read().output is True
        status = await get_json(http, f"{plug.url}/status")
        assert status["relays"][0]["ison"] is True
        assert status["meters"][0]["power"] == 50.0
        toggled = await get_json(http, f"{plug.url}/relay/0?turn=toggle")
        assert toggled["ison"] is False
        assert sw.read().output is False
        sw.set_output(True)  # switched by someone else: the device reports it
        assert (await get_json(http, f"{plug.url}/relay/0"))["ison"] is True


async def test_relay_timer_flips_back_on_the_clock(http, emu_clock):
    sw = MemorySwitch(clock=emu_clock)
    async with ShellyGen1Emulator("SHSW-PM", switch=sw, clock=emu_clock) as pm:
        relay = await get_json(http, f"{pm.url}/relay/0?turn=on&timer=60")
        assert relay["has_timer"] is True
        assert relay["timer_duration"] == 60
        await emu_clock.advance(45)
        relay = await get_json(http, f"{pm.url}/relay/0")
        assert relay["timer_remaining"] == 15
        assert sw.read().output is True
        await emu_clock.advance(15)
        relay = await get_json(http, f"{pm.url}/relay/0")
    assert relay["ison"] is False
    assert relay["has_timer"] is False
    assert relay["source"] == "timer"
    assert sw.read().output is False


async def test_em_contactor_relay_uses_the_given_switch(http, emu_clock):
    contactor = MemorySwitch(clock=emu_clock)
    async with ShellyGen1Emulator(
        "SHEM", meter=em_meter(emu_clock), switch=contactor, clock=emu_clock
    ) as em:
        relay = await get_json(http, f"{em.url}/relay/0?turn=on")
    assert relay["ison"] is True
    assert relay["is_valid"] is True
    assert contactor.read().output is True


# --- wrong requests and auth ---------------------------------------------------------------------


async def test_bad_requests_get_errors_and_change_nothing(http, emu_clock):
    sw = MemorySwitch(clock=emu_clock)
    async with ShellyGen1Emulator("SHPLG-S", switch=sw, clock=emu_clock) as plug:
        for path, status in [
            ("/relay/0?turn=maybe", 400),
            ("/relay/0?turn=on&timer=soon", 400),
            ("/relay/0?turn=on&timer=-5", 400),
            ("/relay/1?turn=on", 404),
            ("/meter/3", 404),
            ("/meter/-1", 404),
            ("/nothing", 404),
        ]:
            async with http.get(f"{plug.url}{path}") as resp:
                assert resp.status == status, path
        assert sw.read().output is False
        assert sw.switch_count == 0


async def test_basic_auth_protects_everything_but_shelly(http, emu_clock):
    plug = ShellyGen1Emulator(
        "SHPLG-S",
        switch=MemorySwitch(clock=emu_clock),
        credentials=("admin", "s3cret"),
        clock=emu_clock,
    )
    good = {"Authorization": aiohttp.encode_basic_auth("admin", "s3cret")}
    bad = {"Authorization": aiohttp.encode_basic_auth("admin", "guess")}
    async with plug:
        info = await get_json(http, f"{plug.url}/shelly")
        assert info["auth"] is True
        for headers in ({}, bad):
            async with http.get(f"{plug.url}/relay/0?turn=on", headers=headers) as resp:
                assert resp.status == 401
                assert resp.headers["WWW-Authenticate"].startswith("Basic realm=")
        assert plug.relay.switch.read().output is False
        relay = await get_json(http, f"{plug.url}/relay/0?turn=on", headers=good)
        assert relay["ison"] is True


def test_bad_configuration_is_refused(emu_clock):
    with pytest.raises(ConfigError, match="3 channels"):
        ShellyGen1Emulator("SHEM-3", meter=StaticMeter(2, clock=emu_clock))
    with pytest.raises(ConfigError, match="switch"):
        ShellyGen1Emulator("SHPLG-S")
    with pytest.raises(ConfigError, match="unknown"):
        ShellyGen1Emulator("SHXX", switch=MemorySwitch())  # type: ignore[arg-type]
