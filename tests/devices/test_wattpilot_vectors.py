"""The Wattpilot driver's pure parts against the shared vectors: secrets, frames, status."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from venus_ems.devices.wattpilot.auth import auth_hash, bcrypt_salt, hashed_password, message_hmac
from venus_ems.devices.wattpilot.frames import (
    Hello,
    choose_scheme,
    decode_frame,
    encode_set_value,
    parse_auth_required,
    parse_hello,
    parse_response,
)
from venus_ems.devices.wattpilot.status import KEPT_KEYS, merge_status, parse_reading
from venus_ems.errors import DeviceProtocolError
from venus_ems.sim.devices.wattpilot_auth import device_secret, expected_auth_hash, hmac_ok
from wattpilot_vectors import known_answers

SCHEMES = ("pbkdf2", "bcrypt")


@pytest.fixture
def ka(vector_text):
    return known_answers(vector_text("wattpilot-handshake.md"))


# --- the known answers, reproduced by the driver and, separately, by the emulator -----------


@pytest.mark.parametrize("scheme", SCHEMES)
def test_driver_reproduces_the_known_answers(ka, scheme):
    secret = hashed_password(scheme, ka.serial, ka.password)
    assert secret.decode() == ka.secret[scheme]
    assert auth_hash(ka.token1, ka.token2, ka.token3, secret) == ka.auth_hash[scheme]
    assert message_hmac(secret, ka.secured_amp10["data"]) == ka.hmac_amp10[scheme]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_emulator_reproduces_the_known_answers(ka, scheme):
    secret = device_secret(scheme, ka.serial, ka.password)
    assert secret.decode() == ka.secret[scheme]
    assert expected_auth_hash(ka.token1, ka.token2, ka.token3, secret) == ka.auth_hash[scheme]
    assert hmac_ok(secret, ka.secured_amp10["data"], ka.hmac_amp10[scheme])
    assert not hmac_ok(secret, ka.secured_amp10["data"] + " ", ka.hmac_amp10[scheme])
    assert not hmac_ok(secret, ka.secured_amp10["data"], None)


def test_bcrypt_salt_is_the_serial_digits(ka):
    assert bcrypt_salt(ka.serial).decode() == ka.bcrypt_salt
    for bad in ("1234567a", "", "12345678901234567", "١٢٣"):
        with pytest.raises(DeviceProtocolError, match="digits"):
            bcrypt_salt(bad)


def test_the_secured_write_is_the_vector_frame(ka):
    secret = hashed_password("pbkdf2", ka.serial, ka.password)
    frame = json.loads(encode_set_value(1, "amp", 10, secret))
    assert frame == ka.secured_amp10
    plain = json.loads(encode_set_value(1, "amp", 10, None))
    assert plain == json.loads(ka.secured_amp10["data"])


# --- frames -------------------------------------------------------------------------------

HELLO = {"type": "hello", "serial": "12345678", "hostname": "Wattpilot_12345678",
         "friendly_name": "x", "manufacturer": "fronius", "devicetype": "wattpilot",
         "version": "36.3", "protocol": 2, "secured": True}  # fmt: skip


def test_hello_and_scheme_choice():
    hello = parse_hello(HELLO)
    assert hello == Hello("12345678", "wattpilot", "36.3", True, "x")
    assert parse_hello({**HELLO, "secured": 1}).secured
    assert not parse_hello({**HELLO, "secured": 0}).secured
    flex = parse_hello({**HELLO, "devicetype": "wattpilot_flex"})
    silent = parse_auth_required({"type": "authRequired", "token1": "a", "token2": "b"})
    named = parse_auth_required({"type": "authRequired", "token1": "a", "token2": "b",
                                 "hash": "pbkdf2"})  # fmt: skip
    assert choose_scheme(hello, silent, "auto") == "pbkdf2"
    assert choose_scheme(flex, silent, "auto") == "bcrypt"  # a Flex that names no hash
    assert choose_scheme(flex, named, "auto") == "pbkdf2"  # the named one wins
    assert choose_scheme(hello, named, "bcrypt") == "bcrypt"  # and the configured one over it
    for bad in ({**HELLO, "serial": None}, {**HELLO, "serial": "x" * 100},
                {**HELLO, "secured": "yes"}):  # fmt: skip
        with pytest.raises(DeviceProtocolError):
            parse_hello(bad)
    with pytest.raises(DeviceProtocolError, match="unsupported hash"):
        parse_auth_required({"type": "authRequired", "token1": "a", "token2": "b", "hash": "md5"})


def test_responses_match_on_the_inner_id():
    ok = parse_response({"type": "response", "requestId": "1", "success": True,
                         "status": {"nmo": True}})  # fmt: skip
    assert (ok.request_id, ok.success, dict(ok.status)) == ("1", True, {"nmo": True})
    assert parse_response({"type": "response", "requestId": 7, "success": True}).request_id == "7"
    assert (
        parse_response({"type": "response", "requestId": "7sm", "success": False}).request_id == "7"
    )
    failed = parse_response({"type": "response", "requestId": "1", "success": False,
                             "message": "value must be bool"})  # fmt: skip
    assert failed.message == "value must be bool"
    for bad in ({"requestId": True, "success": True}, {"requestId": "1", "success": "yes"},
                {"requestId": "1", "success": True, "status": [1]},
                {"requestId": "9" * 40, "success": True}):  # fmt: skip
        with pytest.raises(DeviceProtocolError):
            parse_response({"type": "response", **bad})


@pytest.mark.parametrize(
    ("data", "why"),
    [
        ("<html>", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"status": {}}', "type"),
        ('{"type": 5}', "type"),
        ('{"type": "x", "v": ' + "[" * 100 + "]" * 100 + "}", "nested"),
        ('{"type": "x", "v": ' + "9" * 400 + "}", "characters"),
        ('{"type": "x", "v": NaN}', "NaN"),
        ("x" * (2 << 20), "too large"),
    ],
)
def test_hostile_frames_are_protocol_errors(data, why):
    with pytest.raises(DeviceProtocolError, match=why):
        decode_frame(data, "test")


# --- status: full + delta merged into a typed reading -------------------------------------

BASE = {"car": 2, "frc": 0, "amp": 16, "ama": 16, "psm": 0, "wh": 1500.5, "eto": 123456,
        "alw": True, "acu": 16, "err": 0, "modelStatus": 15, "var": 11,
        "nrg": [230, 231, 229, 1, 10, 9.5, 0.2, 2300, 2194, 46, 0, 4540, 99, 98, 50, 0],
        }  # fmt: skip


def test_the_delta_vector_merges_into_the_status(vector):
    delta = vector("wattpilot-deltastatus.json")
    assert delta["type"] == "deltaStatus"
    merged = merge_status(BASE, delta["status"])
    assert set(merged) <= KEPT_KEYS  # rfb, utc, loc, rbt, fhz, rcd, lps, tpcm are not kept
    reading = parse_reading(merged, taken_at=12.5)
    # the vector: 236/235/235 V, no current, no power (the car stopped drawing)
    assert [p.voltage_v for p in reading.phases] == [236, 235, 235]
    assert reading.currents_a == (0, 0, 0)
    assert (reading.power_w, reading.phases_in_use, reading.taken_at) == (0, 0, 12.5)
    assert reading.set_current_a == 16  # not in the delta: kept from before


def test_per_phase_values_come_from_nrg_not_from_l1():
    r = parse_reading(BASE, 1.0)
    assert r.currents_a == (10, 9.5, 0.2)  # each phase its own, never L1 x 3
    assert r.phases_in_use == 2  # 0.2 A is not a phase in use
    assert [p.power_w for p in r.phases] == [2300, 2194, 46]
    assert r.power_w == 4540
    assert [p.power_factor for p in r.phases] == [0.99, 0.98, 0.5]  # percent -> fraction
    assert (r.car, r.force, r.plugged, r.charging) == ("charging", "neutral", True, True)
    assert (r.session_energy_kwh, r.total_energy_kwh) == (1.5005, 123.456)
    assert (r.min_current_a, r.max_current_a, r.phases_selected) == (6, 16, None)
    floats = {**BASE, "nrg": [222.5800018, 222.58, 221.6499939, 2.48, 0, 0, 0, 0, 0, 0, 0, 0]}
    assert parse_reading(floats, 1.0).phases[0].power_factor is None  # 12 values: no pf


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"car": 1}, ("no_car", False)),
        ({"car": 3}, ("waiting", True)),
        ({"car": 4}, ("complete", True)),
        ({"car": 5}, ("error", False)),
        ({"car": 0}, ("unknown", False)),
        ({"car": None}, ("unknown", False)),
    ],
)
def test_car_states(changes, expected):
    r = parse_reading({**BASE, **changes}, 0.0)
    assert (r.car, r.plugged) == expected


def test_phase_modes_force_and_defaults():
    assert parse_reading({**BASE, "psm": 1}, 0).phases_selected == 1
    assert parse_reading({**BASE, "psm": 2}, 0).phases_selected == 3
    assert parse_reading({**BASE, "frc": 1}, 0).force == "off"
    assert parse_reading({**BASE, "modelStatus": 23}, 0).phase_switching
    lean = {"car": 2, "amp": 10, "nrg": BASE["nrg"]}
    r = parse_reading(lean, 0)  # what a charger does not say is None or its documented default
    assert (r.max_current_a, r.min_current_a, r.force, r.phases_selected) == (
        16,
        6,
        "neutral",
        None,
    )
    assert (r.session_energy_kwh, r.error_code, r.charging_allowed) == (None, None, None)
    assert parse_reading({**lean, "var": 22}, 0).max_current_a == 32


@pytest.mark.parametrize(
    "bad",
    [
        {"amp": "16"},
        {"amp": None},
        {"amp": 200},
        {"car": 7},
        {"car": 2.5},
        {"frc": 3},
        {"psm": "auto"},
        {"nrg": "broken"},
        {"nrg": [1, 2, 3]},
        {"nrg": list(range(17))},
        {"nrg": [230, 230, 230, 0, -1, 0, 0, 0, 0, 0, 0, 0]},
        {"nrg": [230, 230, 230, 0, 1, 0, 0, 0, 0, 0, 0, True]},
        {"wh": 1e30},
        {"alw": 1},
        {"modelStatus": 1.5},
    ],
)
def test_a_bad_value_is_a_protocol_error_naming_the_key(bad):
    with pytest.raises(DeviceProtocolError, match=repr(next(iter(bad)))):
        parse_reading({**BASE, **bad}, 0.0)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=17) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=10,
)
nrg_lists = st.lists(st.none() | st.integers(-10, 10**6) | st.floats(), min_size=10, max_size=17)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(sorted(KEPT_KEYS)), json_values | nrg_lists))
def test_any_status_gives_a_reading_or_a_protocol_error(changes):
    try:
        r = parse_reading(merge_status(BASE, changes), 0.0)
    except DeviceProtocolError:
        return  # the only error allowed: anything else fails the test
    assert math.isfinite(r.power_w)
    assert all(a is None or (math.isfinite(a) and a >= 0) for a in r.currents_a)
    assert 0 <= r.phases_in_use <= 3
