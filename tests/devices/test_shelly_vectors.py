"""Every Shelly payload in the shared vectors parses to the right values, units and signs."""

from __future__ import annotations

import contextlib
import copy
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from venus_ems.clock import SteppedClock
from venus_ems.devices import PhaseReading
from venus_ems.devices.shelly.fields import firmware_version, parse_info
from venus_ems.devices.shelly.gen1 import parse_emeters, parse_plug_meter, parse_relay
from venus_ems.devices.shelly.gen2 import (
    Inventory,
    parse_em,
    parse_em1,
    parse_meter_status,
    parse_switch,
)
from venus_ems.devices.shelly.rpc import (
    ShellyRpcError,
    frame_auth,
    parse_bare_error,
    parse_challenge,
    parse_reply,
)
from venus_ems.errors import DeviceAuthError, DeviceError, DeviceProtocolError
from venus_ems.sim.devices.auth import DigestSha256

approx = pytest.approx


def phase(power, v, a, pf, hz, fwd, rev):
    return PhaseReading(power, v, a, pf, hz, fwd, rev)


def same(reading: PhaseReading, expected: PhaseReading) -> None:
    for field in PhaseReading.__dataclass_fields__:
        got, want = getattr(reading, field), getattr(expected, field)
        assert (got is None) == (want is None), field
        if want is not None:
            assert got == approx(want, rel=1e-12, abs=1e-12), field


# --- gen1 -------------------------------------------------------------------------------------

GEN1_METERS = [
    (
        "shelly-gen1-em-status.json",
        2,
        [
            # exporting on channel 0: power and pf negative, no current field on the EM
            phase(-620.34, 235.68, None, -0.66, None, 401.4729, 653.6737),
            phase(0.0, 235.68, None, 0.0, None, 173.4113, 0.2942),
        ],
    ),
    (
        "shelly-gen1-3em-status.json",
        3,
        [
            phase(6.6, 238.82, 0.07, 0.39, None, 31.9721, 0.0),
            phase(0.0, 238.72, 0.01, 0.01, None, 0.0, 0.0),
            phase(0.0, 238.75, 0.01, 0.02, None, 0.0, 0.0),
        ],
    ),
]


@pytest.mark.parametrize(("name", "channels", "expected"), GEN1_METERS)
def test_gen1_meter_status(vector, name, channels, expected):
    reading = parse_emeters(vector(name), channels, taken_at=12.5)
    assert reading.taken_at == 12.5
    assert len(reading.channels) == channels
    for got, want in zip(reading.channels, expected, strict=True):
        same(got, want)


def test_gen1_3em_current_takes_the_sign_of_the_power(vector):
    status = vector("shelly-gen1-3em-status.json")
    status["emeters"][1]["power"] = -150.0
    status["emeters"][1]["current"] = 0.65
    reading = parse_emeters(status, 3, 0.0)
    assert reading.channels[1].power_w == -150.0
    assert reading.channels[1].current_a == -0.65
    assert reading.channels[0].current_a == 0.07
    assert reading.total_power_w == approx(6.6 - 150.0)


def test_gen1_plug_status_is_in_watt_minutes(vector):
    reading = parse_plug_meter(vector("shelly-gen1-plugs-status.json"), 0, taken_at=3.0)
    assert reading.power_w == 0.0
    assert reading.signed is False
    assert reading.energy_forward_kwh == approx(2632 / 60_000)  # 2632 Wmin
    assert reading.energy_reverse_kwh is None
    assert reading.last_minutes_wh == (0.0, 0.0, 0.0)
    assert reading.output is False
    assert reading.temperature_c == 24.14
    assert reading.taken_at == 3.0


def test_gen1_plug_counters_become_watt_hours(vector):
    status = vector("shelly-gen1-plugs-status.json")
    status["meters"][0].update(power=862.92, counters=[684.519, 60.0, 0.0])
    reading = parse_plug_meter(status, 0, 0.0)
    assert reading.power_w == 862.92
    assert reading.last_minutes_wh == approx((684.519 / 60, 1.0, 0.0))


def test_gen1_relay_response(vector):
    assert parse_relay(vector("shelly-gen1-relay-response.json")) is False
    assert parse_relay({**vector("shelly-gen1-relay-response.json"), "ison": True}) is True


def test_gen1_shelly_info(vector):
    info = parse_info(vector("shelly-gen1-plugs-shelly-info.json"))
    assert (info.generation, info.model, info.mac) == (1, "SHPLG-S", "AABBCCDDEEFF")
    assert info.firmware == "1.14.0"  # the version a user reads; the build id is kept apart
    assert info.firmware_build == "20230913-113421/v1.14.0-gcb84623"
    assert info.identity.firmware_build == info.firmware_build
    assert info.auth is False
    assert info.name == "Test Name"
    assert (info.num_meters, info.num_outputs, info.channels) == (1, 1, 0)
    assert info.product_name == "Shelly Plug S"
    assert info.identity.serial == "AABBCCDDEEFF"


# --- gen2+ ------------------------------------------------------------------------------------


def test_pro_3em_em_and_emdata(vector):
    em = vector("shelly-gen2-pro3em-em-getstatus.json")
    emdata = vector("shelly-gen2-pro3em-emdata-getstatus.json")
    reading = parse_em(em, emdata, taken_at=7.0)
    expected = [
        phase(375.5, 229.0, 2.392, 0.76, 50.0, 2034.61671, 0.0),
        phase(170.8, 229.0, 1.037, 0.78, 50.0, 185.68689, 0.0407),
        phase(12.7, 229.2, 0.428, 0.53, 50.0, 369.4698, 0.98591),
    ]
    for got, want in zip(reading.channels, expected, strict=True):
        same(got, want)
    assert reading.total_power_w == approx(559.0)
    assert reading.frequency_hz == 50.0
    # per-phase imports add up to the device's (not netted) total_act
    fwd = sum(ch.energy_forward_kwh for ch in reading.channels)
    assert fwd == approx(emdata["total_act"] / 1000)


def test_pro_3em_exporting_phase_keeps_its_sign(vector):
    em = vector("shelly-gen2-pro3em-em-getstatus.json")
    em.update(b_act_power=-812.4, b_pf=0.99)  # pf sign is not a direction on the Pro 3EM
    reading = parse_em(em, None, 0.0)
    assert reading.channels[1].power_w == -812.4
    assert reading.channels[1].current_a == -1.037
    assert reading.channels[1].energy_forward_kwh is None


def test_pro_em_em1_and_em1data(vector):
    em1 = vector("shelly-gen2-proem-em1-getstatus.json")
    data = vector("shelly-gen2-proem-em1data-getstatus.json")
    same(parse_em1(em1, data), phase(231.9, 232.9, 1.904, 0.68, 50.0, 8797.80913, 0.0))


def test_meter_status_from_shelly_getstatus(vector):
    em = vector("shelly-gen2-pro3em-em-getstatus.json")
    emdata = vector("shelly-gen2-pro3em-emdata-getstatus.json")
    status = {"em:0": em, "emdata:0": emdata, "sys": {"uptime": 5}}
    assert Inventory.of(status).meter_channels == 3
    assert parse_meter_status(status, 3, 1.0) == parse_em(em, emdata, 1.0)
    em1 = vector("shelly-gen2-proem-em1-getstatus.json")
    data = vector("shelly-gen2-proem-em1data-getstatus.json")
    two = {
        "em1:0": em1,
        "em1:1": {**em1, "id": 1, "act_power": -40.0},
        "em1data:0": data,
        "em1data:1": {**data, "id": 1},
        "switch:0": {"id": 0, "output": False, "source": "init"},
    }
    inv = Inventory.of(two)
    assert (inv.meter_channels, inv.switches, inv.power) == (2, (0,), ())
    reading = parse_meter_status(two, 2, 1.0)
    assert [ch.power_w for ch in reading.channels] == [231.9, -40.0]
    assert reading.channels[1].current_a == -1.904


def test_plus_1pm_switch(vector):
    doc = vector("shelly-gen2-plus1pm-switch-getstatus.json")
    reading = parse_switch(doc, signed=False, taken_at=2.0)
    assert (reading.power_w, reading.voltage_v, reading.current_a) == (0.0, 232.8, 0.0)
    assert reading.energy_forward_kwh == approx(0.110046)
    assert reading.energy_reverse_kwh is None
    assert reading.energy_total_kwh == approx(0.110046)
    assert reading.last_minutes_wh == (0.0, 0.0, 0.0)
    assert reading.output is False
    assert reading.temperature_c == 30.3
    assert reading.signed is False
    assert Inventory.of({"switch:0": doc}).power == ((0, "Switch"),)


def test_gen3_switch_with_returned_energy_and_by_minute_in_mwh(vector):
    doc = copy.deepcopy(vector("shelly-gen2-plus1pm-switch-getstatus.json"))
    doc["apower"] = -412.0
    doc["current"] = 1.8
    doc["aenergy"] = {"total": 1500.0, "by_minute": [6866.7, 1000.0, 0.0], "minute_ts": 1}
    doc["ret_aenergy"] = {"total": 1200.0, "by_minute": [6866.7, 0.0, 0.0], "minute_ts": 1}
    reading = parse_switch(doc, signed=True, taken_at=0.0)
    assert reading.power_w == -412.0
    assert reading.current_a == -1.8
    assert reading.energy_forward_kwh == approx(0.3)  # 1500 Wh total includes 1200 Wh returned
    assert reading.energy_reverse_kwh == approx(1.2)
    assert reading.energy_total_kwh == approx(1.5)
    assert reading.last_minutes_wh == approx((6.8667, 1.0, 0.0))


def test_gen2_shelly_info(vector):
    info = parse_info(vector("shelly-gen2-pro3em-shelly-info.json"))
    assert (info.generation, info.model, info.mac) == (2, "SPEM-003CEBEU", "AABBCCDDEEFF")
    assert info.app == "Pro3EM"
    assert info.device_id == "shellypro3em-aabbccddeeff"
    assert info.profile == "triphase"
    assert info.firmware == "1.1.0"  # "ver"
    assert info.firmware_build == "20231219-134001/1.1.0-g34b5d4f"  # "fw_id"
    assert (info.identity.firmware, info.identity.firmware_build) == ("1.1.0", info.firmware_build)
    assert info.auth is False
    assert info.product_name == "Shelly Pro 3EM"
    # without "ver" the version comes out of the build id; with neither it is a protocol error
    doc = vector("shelly-gen2-pro3em-shelly-info.json")
    del doc["ver"]
    assert parse_info(doc).firmware == "1.1.0"
    del doc["fw_id"]
    with pytest.raises(DeviceProtocolError, match="'ver'"):
        parse_info(doc)


@pytest.mark.parametrize(
    ("build", "version"),
    [
        ("20230913-113421/v1.14.0-gcb84623", "1.14.0"),
        ("20241011-114455/1.4.4-g6d2a586", "1.4.4"),
        ("20240220-105449/1.2.0-beta1-g5d7d3a8", "1.2.0-beta1"),
        ("20191112-145151/v1.5.5@81e7a7b6", "1.5.5"),
        ("no version in here", "no version in here"),
        ("", ""),
    ],
)
def test_firmware_version_out_of_a_build_id(build, version):
    assert firmware_version(build) == version


# --- RPC frames -------------------------------------------------------------------------------


def test_rpc_result_frames(vector):
    frame = vector("shelly-gen2-rpc-post-response.json")
    assert parse_reply(frame, method="Switch.Set", request_id=0) == {"was_on": True}
    null = vector("shelly-gen2-rpc-response-null-result.json")
    assert parse_reply(null, method="Cover.Close", request_id=19) is None
    with pytest.raises(DeviceProtocolError, match="reply id"):
        parse_reply(null, method="Cover.Close", request_id=20)


@pytest.mark.parametrize(
    ("name", "code", "message"),
    [
        ("shelly-gen2-rpc-error-invalid-argument.json", -103, "Missing required 'id'"),
        ("shelly-gen2-rpc-error-not-found.json", -105, "Bad id=7"),
    ],
)
def test_rpc_error_frames(vector, name, code, message):
    with pytest.raises(ShellyRpcError) as err:
        parse_reply(vector(name), method="Switch.GetStatus", request_id=1)
    assert (err.value.code, err.value.message) == (code, message)
    assert isinstance(err.value, DeviceProtocolError)


def test_bare_http_get_error(vector):
    err = parse_bare_error(vector("shelly-gen2-http-get-error-404.json"), "X")
    assert isinstance(err, ShellyRpcError)
    assert (err.code, err.message) == (404, "No handler for ProOutputAddon.GetPeripherals")
    assert parse_bare_error({"was_on": True}, "X") is None


def test_401_frame_is_an_auth_error_with_a_usable_challenge(vector):
    frame = vector("shelly-gen2-rpc-error-401.json")
    with pytest.raises(DeviceAuthError):
        parse_reply(frame, method="Cover.Close", request_id=18)
    challenge = parse_challenge(frame)
    assert challenge == {
        "auth_type": "digest",
        "nonce": 1725185413,
        "nc": 1,
        "realm": "shellyplus2pm-485519992590",
        "algorithm": "SHA-256",
    }
    # the auth object we build is what the device (our emulator's checker) accepts
    at = datetime.fromtimestamp(1725185413 + 10, tz=timezone.utc)
    device = DigestSha256(challenge["realm"], "secret", clock=SteppedClock(start=at))
    assert device.check_frame(frame_auth(challenge, "secret"))
    assert not device.check_frame(frame_auth(challenge, "wrong"))
    assert parse_challenge(vector("shelly-gen2-rpc-post-response.json")) is None


# --- bad input: a clear DeviceProtocolError, nothing else --------------------------------------


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda s: s["emeters"][0].update(power="620"), "'power' is not a number"),
        (lambda s: s["emeters"][0].pop("power"), "'power' missing"),
        (lambda s: s["emeters"][1].update(is_valid=False), "invalid"),
        (lambda s: s.pop("emeters"), "'emeters' missing"),
        (lambda s: s["emeters"].pop(), "1 emeters, expected 2"),
        (lambda s: s["emeters"][0].update(total=True), "'total' is not a number"),
    ],
)
def test_broken_gen1_payloads(vector, mutate, match):
    status = vector("shelly-gen1-em-status.json")
    mutate(status)
    with pytest.raises(DeviceProtocolError, match=match):
        parse_emeters(status, 2, 0.0)


def test_broken_gen2_payloads(vector):
    em = vector("shelly-gen2-pro3em-em-getstatus.json")
    with pytest.raises(DeviceProtocolError, match="c_act_power"):
        parse_em({**em, "c_act_power": None}, None, 0.0)
    with pytest.raises(DeviceProtocolError, match="em1:1"):
        parse_meter_status({"em1:0": vector("shelly-gen2-proem-em1-getstatus.json")}, 2, 0)
    with pytest.raises(DeviceProtocolError, match="apower"):
        parse_switch({"output": True}, signed=False, taken_at=0.0)
    with pytest.raises(DeviceProtocolError, match="gen"):
        parse_info({**vector("shelly-gen2-pro3em-shelly-info.json"), "gen": "2"})


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=12,
)
keys = st.sampled_from(
    [
        "emeters",
        "meters",
        "em:0",
        "em1:0",
        "emdata:0",
        "a_act_power",
        "apower",
        "power",
        "aenergy",
        "total",
        "gen",
        "mac",
        "type",
        "auth",
        "error",
        "result",
        "id",
        "switch:0",
        "pm1:0",
        "relays",
        "counters",
        "temperature",
        "ret_aenergy",
        "by_minute",
    ]
)
documents = st.dictionaries(keys, json_values, max_size=6) | json_values


@settings(max_examples=300, deadline=None)
@given(documents)
def test_any_json_gives_a_reading_or_a_device_error(doc):
    parsers = [
        lambda: parse_emeters(doc, 2, 0.0),
        lambda: parse_plug_meter(doc, 0, 0.0),
        lambda: parse_meter_status(doc, 2, 0.0),
        lambda: parse_switch(doc, signed=True, taken_at=0.0),
        lambda: parse_info(doc),
        lambda: parse_reply(doc, method="M", request_id=1),
        lambda: Inventory.of(doc),
        lambda: parse_challenge(doc),
    ]
    for parse in parsers:
        with contextlib.suppress(DeviceError):
            parse()
