"""OpenDTU parsers against the real captures: exact values, every layout, every bad field."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from venus_ems.devices.opendtu.parse import (
    MAX_INVERTERS,
    inverter_family,
    parse_command_reply,
    parse_limit_status,
    parse_livedata,
    parse_system_status,
)
from venus_ems.errors import DeviceError, DeviceProtocolError
from venus_ems.sim.devices import InverterSpec, MemoryInverterBank, OpenDtuEmulator

T = 1000.0  # monotonic seconds the answers arrived at


def test_summary_of_firmware_2024(vector):
    readings = parse_livedata(vector("opendtu-livedata-status.json"), T)
    hm600, test = readings
    assert (hm600.serial, hm600.name, hm600.model, hm600.dc_inputs) == (
        "114182940773",
        "HM-600",
        "HM 2-input",
        2,
    )
    assert (hm600.reachable, hm600.producing) == (True, True)
    assert hm600.data_at == T - 5
    assert (hm600.limit_pct, hm600.limit_w, hm600.max_power_w) == (100, 600, 600)
    assert not hm600.detailed  # no channel values without ?inv=
    assert hm600.ac_power_w is None  # unknown, never 0
    # never reached since the DTU booted: no nameplate, limit_absolute -1
    assert (test.reachable, test.producing, test.data_at) == (False, False, T - 8973)
    assert (test.limit_w, test.max_power_w) == (None, None)


def test_detail_of_one_inverter(vector):
    (r,) = parse_livedata(vector("opendtu-livedata-status-inv.json"), T)
    assert r.detailed
    assert r.serial == "114182000000"
    assert r.ac_power_w == 12.1  # 12.10000038 rounded to its d = 1
    assert (r.ac_voltage_v, r.ac_current_a, r.ac_frequency_hz) == (226.4, 0.05, 49.98)
    assert r.dc_power_w == 12.6  # INV "Power DC"
    assert r.dc_voltage_v == 31.3  # input 0
    assert r.dc_current_a == pytest.approx(0.41)  # both inputs
    assert r.dc_yield_total_kwh == pytest.approx(0.004)
    assert (r.yield_day_wh, r.yield_total_kwh) == (4, 0.004)
    assert (r.temperature_c, r.efficiency_pct) == (18.5, 96.032)
    assert r.reachable is False
    assert r.producing is True
    assert r.data_at == T - 49


def legacy_payload() -> dict:
    """The 2023 layout as the emulator serves it (from the capture named in its docstring)."""
    bank = MemoryInverterBank(
        [InverterSpec("116181679876", "HM-1500-Balkon", max_power_w=1500.0, dc_inputs=4)],
        dead_time_s=3.0,
    )
    bank.set_available_dc("116181679876", 400.0)
    return OpenDtuEmulator(bank, layout="2023").livedata()


def test_the_2023_layout_carries_the_channels_in_the_plain_call():
    # The 2023 capture devices.md §3.2 names is not in the shared vectors: the layout is checked
    # on the emulator, whose shape follows that section (tests/sim/test_emulator_opendtu.py).
    readings = parse_livedata(legacy_payload(), T)
    r = readings[0]
    assert r.detailed
    assert r.model == "HM 4-input"
    assert r.dc_inputs == 4
    # Power DC, YieldDay, YieldTotal and Efficiency under AC, only the temperature under INV
    assert r.dc_power_w is not None
    assert r.yield_total_kwh is not None
    assert r.temperature_c is not None
    assert r.efficiency_pct is not None
    assert (r.ac_power_w, r.dc_power_w, r.efficiency_pct) == (384.0, 400.0, 96.0)


def test_limit_status_lifecycle(vector):
    before = parse_limit_status(vector("opendtu-limit-status.json"), T)
    pending = parse_limit_status(vector("opendtu-limit-status-pending.json"), T)
    after = parse_limit_status(vector("opendtu-limit-status-after.json"), T)
    sn = "11418180xxxx"
    assert (before[sn].limit_pct, before[sn].state, before[sn].max_power_w) == (100, "Ok", 800)
    assert (pending[sn].limit_pct, pending[sn].state) == (100, "Pending")
    assert (after[sn].limit_pct, after[sn].state) == (50, "Ok")
    assert after["11418186xxxx"].max_power_w == 600


def test_limit_status_before_device_info_and_unknown_states():
    doc = {
        "1": {"limit_relative": 100, "max_power": 0, "limit_set_status": "Unknown"},
        "2": {"limit_relative": 3, "max_power": 800, "limit_set_status": "Timeout"},
    }
    out = parse_limit_status(doc, T)
    assert out["1"].max_power_w is None  # 0 until the inverter's info was read
    assert out["2"].state == "Unknown"  # a state newer firmware may add is never taken as Ok


def test_command_replies(vector):
    ok = parse_command_reply(vector("opendtu-limit-config-response.json"), "POST")
    assert ok.ok
    assert ok.message == "Settings saved!"
    assert ok.code is None
    refused = {"type": "warning", "message": "Invalid inverter specified!", "code": 5004}
    reply = parse_command_reply(refused, "POST")
    assert (reply.ok, reply.code) == (False, 5004)


def test_system_status_identity():
    ident = parse_system_status({"hostname": "OpenDTU-1A", "git_hash": "v24.2.12", "pioenv": "x"})
    assert (ident.product_name, ident.serial, ident.firmware, ident.model) == (
        "OpenDTU",
        "OpenDTU-1A",
        "24.2.12",
        "x",
    )


@pytest.mark.parametrize(
    ("serial", "family", "inputs"),
    [
        ("114182940773", "HM 2-input", 2),  # HM-600/700/800
        ("116181679876", "HM 4-input", 4),  # HM-1200/1500
        ("112100000001", "HM 1-input", 1),  # HM-300/350/400
        ("114400000001", "HMS 2-input", 2),
        ("138200000001", "HMT 6-input", 6),
        ("11418186xxxx", "HM 2-input", 2),
        ("99", "", None),
        ("zz12", "", None),
    ],
)
def test_family_from_the_serial(serial, family, inputs):
    assert inverter_family(serial) == (family, inputs)


# --- every bad field is a DeviceProtocolError naming it ------------------------------------------


def _mutate(doc: dict, path: list, value: object) -> dict:
    out = copy.deepcopy(doc)
    node = out
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "match"),
    [
        (["inverters"], _DELETE, "'inverters' missing"),
        (["inverters"], {"a": 1}, "not a list"),
        (["inverters", 0, "serial"], _DELETE, "'serial'"),
        (["inverters", 0, "serial"], "1141/../x", "not alphanumeric"),
        (["inverters", 0, "serial"], "9" * 21, "longer than 20"),
        (["inverters", 0, "reachable"], "yes", "'reachable'"),
        (["inverters", 0, "data_age"], _DELETE, "'data_age'"),
        (["inverters", 0, "data_age"], -4, "negative data_age"),
        (["inverters", 0, "data_age"], 10**400, "not a finite number"),
        (["inverters", 0, "limit_relative"], "100", "'limit_relative'"),
        (["inverters", 0, "name"], "x" * 65, "'name'"),
        (["inverters", 0, "AC", "0", "Power"], _DELETE, "'Power' missing"),
        (["inverters", 0, "AC", "0", "Power", "v"], float("nan"), "finite"),
        (["inverters", 0, "AC", "0", "Voltage"], 230, "not a value object"),
        (["inverters", 0, "AC"], [], "'AC' missing or not an object"),
        (["inverters", 0, "DC"], {str(i): {} for i in range(9)}, "DC inputs"),
        (["inverters", 0, "INV", "0", "Temperature", "v"], True, "not a number"),
    ],
)
def test_bad_livedata_fields(vector, path, value, match):
    doc = _mutate(vector("opendtu-livedata-status-inv.json"), path, value)
    with pytest.raises(DeviceProtocolError, match=match):
        parse_livedata(doc, T)


def test_too_many_or_duplicate_inverters(vector):
    doc = vector("opendtu-livedata-status.json")
    many = {**doc, "inverters": doc["inverters"][:1] * (MAX_INVERTERS + 1)}
    with pytest.raises(DeviceProtocolError, match="at most 32"):
        parse_livedata(many, T)
    twice = {**doc, "inverters": doc["inverters"][:1] * 2}
    with pytest.raises(DeviceProtocolError, match="listed twice"):
        parse_livedata(twice, T)


def test_unknown_fields_are_ignored(vector):
    doc = vector("opendtu-livedata-status.json")
    doc = {**doc, "battery": {"enabled": True}, "power_meter": {"enabled": False}}  # OnBattery
    doc["inverters"][0] = {**doc["inverters"][0], "radio_stats": {"rssi": -60}, "new": [1]}
    assert len(parse_livedata(doc, T)) == 2


@pytest.mark.parametrize(
    "doc",
    [
        [],
        {"1": []},
        {"1": {"limit_relative": 50, "limit_set_status": 1}},
        {"1": {"max_power": 800, "limit_set_status": "Ok"}},
        {"../x": {"limit_relative": 50, "limit_set_status": "Ok"}},
        {str(i): {"limit_relative": 1, "limit_set_status": "Ok"} for i in range(33)},
    ],
)
def test_bad_limit_status(doc):
    with pytest.raises(DeviceProtocolError):
        parse_limit_status(doc, T)


@pytest.mark.parametrize("doc", [[], {"message": "x"}, {"type": 1}, {"type": "ok", "message": 3}])
def test_bad_command_replies(doc):
    with pytest.raises(DeviceProtocolError):
        parse_command_reply(doc, "POST x")


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(doc=json_values)
@pytest.mark.parametrize("parse", [parse_livedata, parse_limit_status])
def test_arbitrary_json_gives_readings_or_a_device_error(parse, doc):
    try:
        parse(doc, T)
    except DeviceError:
        pass


VECTORS = Path(
    os.environ.get("VENUS_EMS_VECTORS", Path(__file__).resolve().parents[3] / "shared" / "vectors")
)
IN_CI = bool(os.environ.get("CI") or os.environ.get("VENUS_EMS_CI"))


@settings(max_examples=200, deadline=None)
@given(value=json_values, key=st.sampled_from(["serial", "data_age", "AC", "DC", "INV", "name"]))
def test_a_real_payload_with_any_field_replaced_never_crashes(value, key):
    path = VECTORS / "opendtu-livedata-status-inv.json"
    if not path.is_file():
        if IN_CI:
            pytest.fail(f"vector {path.name} not available; CI needs it")
        pytest.skip("vector not available")
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["inverters"][0][key] = value
    try:
        parse_livedata(doc, T)
    except DeviceError:
        pass
