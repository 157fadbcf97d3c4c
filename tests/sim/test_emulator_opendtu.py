"""OpenDTU emulator with a real aiohttp client: livedata shapes, limit/power commands, auth."""

from __future__ import annotations

import json

import aiohttp
import pytest

from venus_ems.sim.devices import InverterSpec, MemoryInverterBank, OpenDtuEmulator

pytestmark = pytest.mark.anyio

ADMIN = {"Authorization": aiohttp.encode_basic_auth("admin", "openDTU42")}


def bank_like_capture(clock):
    """The two inverters of the livedata capture (one never reached, max power unknown)."""
    bank = MemoryInverterBank(
        [
            InverterSpec("114182940773", "HM-600", max_power_w=600.0, events=12),
            InverterSpec("114182000001", "Test", max_power_w=800.0, report_max_power=False),
        ],
        clock=clock,
        dead_time_s=3.0,
    )
    bank.set_available_dc("114182940773", 12.6)
    bank.set_reachable("114182000001", False)
    return bank


async def get_json(http, url, **kw):
    async with http.get(url, **kw) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def post_data(http, url, data, headers=ADMIN):
    form = {"data": data if isinstance(data, str) else json.dumps(data)}
    async with http.post(url, data=form, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


# --- shapes against the captured payloads --------------------------------------------------------


async def test_livedata_matches_the_captures(http, emu_clock, vector, json_shape):
    async with OpenDtuEmulator(bank_like_capture(emu_clock), clock=emu_clock) as dtu:
        summary = await get_json(http, f"{dtu.url}/api/livedata/status")
        detail = await get_json(http, f"{dtu.url}/api/livedata/status?inv=114182940773")
    assert json_shape(summary) == json_shape(vector("opendtu-livedata-status.json"))
    assert json_shape(detail) == json_shape(vector("opendtu-livedata-status-inv.json"))


async def test_limit_sequence_matches_the_documented_example(http, emu_clock, vector, json_shape):
    # the serials of the documented example; like the firmware, only the leading hex digits count
    bank = MemoryInverterBank(
        [
            InverterSpec("11418186xxxx", max_power_w=600.0),
            InverterSpec("11418180xxxx", max_power_w=800.0),
        ],
        clock=emu_clock,
        dead_time_s=3.0,
    )
    async with OpenDtuEmulator(bank, clock=emu_clock) as dtu:
        before = await get_json(http, f"{dtu.url}/api/limit/status")
        data = '{"serial":"11418180xxxx","limit_type":1,"limit_value":50}'
        reply = await post_data(http, f"{dtu.url}/api/limit/config", data)
        pending = await get_json(http, f"{dtu.url}/api/limit/status")
        await emu_clock.advance(3.0)
        after = await get_json(http, f"{dtu.url}/api/limit/status")
    assert before == vector("opendtu-limit-status.json")
    assert pending == vector("opendtu-limit-status-pending.json")
    assert after == vector("opendtu-limit-status-after.json")
    documented = vector("opendtu-limit-config-response.json")
    # current firmware adds "code" (WebApiError::GenericSuccess) to the documented answer
    assert {k: v for k, v in reply.items() if k != "code"} == documented
    assert reply["code"] == 1001
    assert json_shape({k: reply[k] for k in documented}) == json_shape(documented)


async def test_documented_shapes_without_vectors(http, emu_clock):
    bank = bank_like_capture(emu_clock)
    async with OpenDtuEmulator(bank, clock=emu_clock, current_firmware=True) as dtu:
        summary = await get_json(http, f"{dtu.url}/api/livedata/status")
        detail = await get_json(http, f"{dtu.url}/api/livedata/status?inv=114182940773")
        power = await get_json(http, f"{dtu.url}/api/power/status")
        system = await get_json(http, f"{dtu.url}/api/system/status")
    assert set(summary) == {"inverters", "total", "hints"}
    assert set(summary["inverters"][0]) == {
        "serial",
        "name",
        "order",
        "data_age",
        "data_age_ms",
        "poll_enabled",
        "reachable",
        "producing",
        "limit_relative",
        "limit_absolute",
        "radio_stats",
    }
    assert "pin_mapping_issue" in summary["hints"]
    inv = detail["inverters"][0]
    assert set(inv["AC"]["0"]) == {
        "Power",
        "Voltage",
        "Current",
        "Frequency",
        "PowerFactor",
        "ReactivePower",
    }
    assert set(inv["DC"]) == {"0", "1"}
    assert set(inv["INV"]["0"]) == {
        "Power DC",
        "YieldDay",
        "YieldTotal",
        "Temperature",
        "Efficiency",
    }
    assert all(set(v) == {"v", "u", "d"} for v in inv["AC"]["0"].values())
    assert set(power) == {"114182940773", "114182000001"}
    assert {"hostname", "uptime"} <= set(system)


# --- values --------------------------------------------------------------------------------------


async def test_livedata_values_units_and_totals(http, emu_clock):
    bank = bank_like_capture(emu_clock)
    bank.set_available_dc("114182940773", 500.0)
    async with OpenDtuEmulator(bank, clock=emu_clock) as dtu:
        await emu_clock.advance(1800)
        data = await get_json(http, f"{dtu.url}/api/livedata/status?inv=114182940773")
        summary = await get_json(http, f"{dtu.url}/api/livedata/status")
    inv = data["inverters"][0]
    ac = inv["AC"]["0"]
    assert ac["Power"] == {"v": pytest.approx(480.0), "u": "W", "d": 1}
    assert ac["Current"]["v"] == pytest.approx(480.0 / 230.0, rel=1e-6)
    assert inv["INV"]["0"]["Power DC"]["v"] == pytest.approx(500.0)
    assert inv["INV"]["0"]["Efficiency"] == {"v": pytest.approx(96.0), "u": "%", "d": 3}
    assert inv["INV"]["0"]["YieldDay"]["u"] == "Wh"
    assert inv["INV"]["0"]["YieldTotal"] == {"v": pytest.approx(0.24), "u": "kWh", "d": 3}
    assert inv["DC"]["0"]["Power"]["v"] == pytest.approx(250.0)
    assert inv["producing"] is True
    assert inv["events"] == 12
    assert data["total"]["Power"]["v"] == pytest.approx(480.0)
    assert data["total"]["YieldDay"]["v"] == pytest.approx(240.0)
    never = summary["inverters"][1]
    assert (never["reachable"], never["limit_absolute"]) == (False, -1)
    assert never["data_age"] == 1800
    assert summary["hints"]["default_password"] is True


async def test_unknown_inverter_query_lists_nothing(http, emu_clock):
    async with OpenDtuEmulator(bank_like_capture(emu_clock), clock=emu_clock) as dtu:
        for inv in ("999999999999", "0", "zz"):
            data = await get_json(http, f"{dtu.url}/api/livedata/status?inv={inv}")
            expected = [] if inv == "999999999999" else ["114182940773", "114182000001"]
            assert [i["serial"] for i in data["inverters"]] == expected
            assert "total" in data


# --- commands ------------------------------------------------------------------------------------


async def test_limit_and_power_commands_reach_the_inverter(http, emu_clock):
    bank = bank_like_capture(emu_clock)
    bank.set_available_dc("114182940773", 1000.0)
    async with OpenDtuEmulator(bank, clock=emu_clock) as dtu:
        url = f"{dtu.url}/api/limit/config"
        reply = await post_data(
            http, url, {"serial": "114182940773", "limit_type": 0, "limit_value": 300.7}
        )
        assert reply["type"] == "success"
        command = bank.commands[-1]
        assert (command.value, command.relative, command.persistent) == (300.0, False, False)
        assert bank.ac_power_w("114182940773") == pytest.approx(600.0)  # dead time
        await emu_clock.advance(3.0)
        assert bank.ac_power_w("114182940773") == pytest.approx(300.0)
        live = await get_json(http, f"{dtu.url}/api/livedata/status")
        assert live["inverters"][0]["limit_absolute"] == pytest.approx(300.0)
        assert live["inverters"][0]["limit_relative"] == pytest.approx(50.0)
        await post_data(http, url, {"serial": 114182940773, "limit_type": 3, "limit_value": 80})
        assert (bank.commands[-1].relative, bank.commands[-1].persistent) == (True, True)

        power = f"{dtu.url}/api/power/config"
        assert (await post_data(http, power, {"serial": "114182940773", "power": False}))[
            "code"
        ] == 1001
        status = await get_json(http, f"{dtu.url}/api/power/status")
        assert status["114182940773"]["power_set_status"] == "Pending"
        await emu_clock.advance(3.0)
        status = await get_json(http, f"{dtu.url}/api/power/status")
        assert status["114182940773"]["power_set_status"] == "Ok"
        assert bank.ac_power_w("114182940773") == 0.0
        await post_data(http, power, {"serial": "114182940773", "restart": True})
        assert bank.commands[-1].kind == "restart"


async def test_command_to_an_unreachable_inverter_fails(http, emu_clock):
    bank = bank_like_capture(emu_clock)
    async with OpenDtuEmulator(bank, clock=emu_clock) as dtu:
        await post_data(
            http,
            f"{dtu.url}/api/limit/config",
            {"serial": "114182000001", "limit_type": 1, "limit_value": 20},
        )
        await emu_clock.advance(3.0)
        status = await get_json(http, f"{dtu.url}/api/limit/status")
    assert status["114182000001"] == {
        "limit_relative": 100,
        "max_power": 0,
        "limit_set_status": "Failure",
    }


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (None, 1002),
        ("x" * 1025, 1003),
        ("{not json", 1004),
        ("[1, 2]", 1004),
        ({"serial": "114182940773", "limit_value": 10}, 1005),
        ({"serial": "0", "limit_type": 1, "limit_value": 10}, 5001),
        ({"serial": "zz", "limit_type": 1, "limit_value": 10}, 5001),
        ({"serial": "114182940773", "limit_type": 1, "limit_value": 2251}, 5002),
        ({"serial": "114182940773", "limit_type": 1, "limit_value": -1}, 5002),
        ({"serial": "114182940773", "limit_type": 1, "limit_value": "50"}, 5002),
        ({"serial": "114182940773", "limit_type": 4, "limit_value": 10}, 5003),
        ({"serial": "114182940773", "limit_type": True, "limit_value": 10}, 5003),
        ({"serial": "123456789012", "limit_type": 1, "limit_value": 10}, 5004),
    ],
)
async def test_bad_limit_requests_are_refused_and_change_nothing(http, emu_clock, data, code):
    bank = bank_like_capture(emu_clock)
    async with OpenDtuEmulator(bank, clock=emu_clock) as dtu:
        url = f"{dtu.url}/api/limit/config"
        if data is None:
            async with http.post(url, data={"other": "1"}, headers=ADMIN) as resp:
                reply = await resp.json()
        else:
            reply = await post_data(http, url, data)
        status = await get_json(http, f"{dtu.url}/api/limit/status")
    assert (reply["type"], reply["code"]) == ("warning", code)
    if code == 5002:
        assert reply["param"] == {"max": 2250}
    assert not bank.commands
    assert {s["limit_set_status"] for s in status.values()} == {"Ok"}


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({"serial": "114182940773"}, 1005),
        ({"serial": "0", "power": True}, 11001),
        ({"serial": "123456789012", "power": True}, 11002),
    ],
)
async def test_bad_power_requests_are_refused(http, emu_clock, data, code):
    bank = bank_like_capture(emu_clock)
    async with OpenDtuEmulator(bank, clock=emu_clock) as dtu:
        reply = await post_data(http, f"{dtu.url}/api/power/config", data)
    assert reply["code"] == code
    assert not bank.commands


# --- auth ----------------------------------------------------------------------------------------


async def test_basic_auth_on_write_endpoints(http, emu_clock):
    bank = bank_like_capture(emu_clock)
    async with OpenDtuEmulator(bank, password="secret", clock=emu_clock) as dtu:
        body = {"data": json.dumps({"serial": "114182940773", "limit_type": 1, "limit_value": 5})}
        url = f"{dtu.url}/api/limit/config"
        for headers in ({}, ADMIN):  # ADMIN carries the default password, not "secret"
            async with http.post(url, data=body, headers=headers) as resp:
                assert resp.status == 401
                assert resp.headers["WWW-Authenticate"] == 'Basic realm="Login Required"'
        async with http.post(
            url, data=body, headers={"X-Requested-With": "XMLHttpRequest"}
        ) as resp:
            assert resp.status == 401
            assert "WWW-Authenticate" not in resp.headers
        assert not bank.commands
        live = await get_json(http, f"{dtu.url}/api/livedata/status")  # read-only is open
        assert live["hints"]["default_password"] is False
        good = {"Authorization": aiohttp.encode_basic_auth("admin", "secret")}
        assert (await post_data(http, url, body["data"], headers=good))["code"] == 1001
    assert len(bank.commands) == 1


async def test_readonly_access_can_be_closed(http, emu_clock):
    async with OpenDtuEmulator(
        bank_like_capture(emu_clock), allow_readonly=False, clock=emu_clock
    ) as dtu:
        async with http.get(f"{dtu.url}/api/livedata/status") as resp:
            assert resp.status == 401
        await get_json(http, f"{dtu.url}/api/livedata/status", headers=ADMIN)


# --- the 2023 layout, per-inverter timing, refusals -----------------------------------------------


async def test_2023_layout_follows_the_documented_shape(http, emu_clock):
    bank = MemoryInverterBank(
        [
            InverterSpec("116181679876", "HM-1500-Balkon", 1500.0, dc_inputs=4, peak_wp=390.0),
            InverterSpec("116183309876", "HM-1500-Garten", 1500.0, dc_inputs=4, peak_wp=460.0),
        ],
        clock=emu_clock,
    )
    async with OpenDtuEmulator(bank, clock=emu_clock, layout="2023") as dtu:
        data = await get_json(http, f"{dtu.url}/api/livedata/status")
        ignored = await get_json(http, f"{dtu.url}/api/livedata/status?inv=116181679876")
    inv = data["inverters"][0]
    # the layout the 2023 firmware sent (reference devices.md §3.2): channels in the plain call
    assert set(inv["AC"]["0"]) == {
        "Power", "Voltage", "Current", "Power DC", "YieldDay", "YieldTotal", "Frequency",
        "PowerFactor", "ReactivePower", "Efficiency",
    }  # fmt: skip
    assert set(inv["INV"]["0"]) == {"Temperature"}
    assert "order" not in inv
    assert "poll_enabled" not in inv
    assert len(ignored["inverters"]) == 2


async def test_ack_and_dead_time_per_inverter_and_refusals(http, emu_clock):
    bank = MemoryInverterBank(
        [
            InverterSpec("114182940773", max_power_w=600.0, dead_time_s=3.0, ack_s=1.0),
            InverterSpec("116181679876", max_power_w=1500.0, dead_time_s=18.0, ack_s=3.0),
        ],
        clock=emu_clock,
        dead_time_s=5.0,
    )
    for serial in ("114182940773", "116181679876"):
        bank.set_available_dc(serial, 2000.0)
    bank.set_refuse_limits("114182940773", True)
    async with OpenDtuEmulator(bank, clock=emu_clock) as dtu:
        for serial in ("114182940773", "116181679876"):
            await post_data(
                http,
                f"{dtu.url}/api/limit/config",
                {"serial": serial, "limit_type": 1, "limit_value": 20},
            )
        await emu_clock.advance(3.0)
        status = await get_json(http, f"{dtu.url}/api/limit/status")
    assert status["114182940773"]["limit_set_status"] == "Failure"  # refused: nothing changes
    assert bank.ac_power_w("114182940773") == pytest.approx(600.0)
    slow = status["116181679876"]
    assert (slow["limit_set_status"], slow["limit_relative"]) == ("Ok", 20)  # acknowledged
    assert bank.ac_power_w("116181679876") == pytest.approx(1500.0)  # not applied yet
    await emu_clock.advance(15.0)
    assert bank.ac_power_w("116181679876") == pytest.approx(300.0)
