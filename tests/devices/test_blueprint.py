"""The blueprint driver works: against a loopback server, through the registry, under faults.

This file is the test half of the blueprint: copy it with the driver.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blueprint_device import BlueprintChannel, BlueprintDevice, BlueprintState
from venus_ems.devices import Connection, PhaseMeter, PowerMeter, Switch
from venus_ems.devices.blueprint import BlueprintMeter, parse_info, parse_meter, parse_relay
from venus_ems.devices.http import HttpAnswer, decode_json
from venus_ems.devices.registry import open_device
from venus_ems.errors import (
    ConfigError,
    DeviceAuthError,
    DeviceConnectionError,
    DeviceError,
    DeviceProtocolError,
    DeviceTimeoutError,
)

pytestmark = pytest.mark.anyio
approx = pytest.approx


async def opened(session, clock, dev, **kw) -> BlueprintMeter:
    conn = Connection(dev.host, **{"timeout_s": 1.0, **kw})
    device = await open_device("blueprint", session, conn, clock=clock)
    assert isinstance(device, BlueprintMeter)
    return device


async def test_identity_capabilities_and_readings(session, clock):
    state = BlueprintState(
        channels=[
            BlueprintChannel(1200.0, 231.0, energy_in_wh=5000.0, energy_out_wh=10.0),
            BlueprintChannel(-450.0, 229.5, energy_in_wh=0.0, energy_out_wh=700.0),
            BlueprintChannel(35.0, None, energy_in_wh=None, energy_out_wh=None),
        ]
    )
    async with BlueprintDevice(state, clock=clock) as dev:
        meter = await opened(session, clock, dev)
        ident = meter.identity
        assert (ident.product_name, ident.model, ident.serial, ident.firmware) == (
            "Blueprint meter BP-3",
            "BP-3",
            "BP0001",
            "1.2.0",
        )
        # capabilities are protocols: what the feature asks for, not a driver class
        assert isinstance(meter, PhaseMeter)
        assert isinstance(meter, Switch)
        assert not isinstance(meter, PowerMeter)
        assert meter.channel_count == 3
        assert meter.outputs == (0,)
        await clock.advance(7.5)
        reading = await meter.read_phases()
    assert reading.taken_at == 7.5  # stamped with the clock when the answer arrived
    ch = reading.channels
    assert [c.power_w for c in ch] == [1200.0, -450.0, 35.0]  # + = import, sign kept
    assert ch[0].voltage_v == 231.0
    assert (ch[0].energy_forward_kwh, ch[0].energy_reverse_kwh) == approx((5.0, 0.01))  # Wh->kWh
    assert ch[1].energy_reverse_kwh == approx(0.7)
    # what the device does not measure is None, never 0
    assert (ch[2].voltage_v, ch[2].energy_forward_kwh, ch[2].current_a) == (None, None, None)
    assert reading.total_power_w == approx(785.0)


async def test_relay_is_switched_and_confirmed(session, clock):
    async with BlueprintDevice(clock=clock) as dev:
        meter = await opened(session, clock, dev)
        assert await meter.read_output(0) is False
        await meter.set_output(0, True)
        assert dev.state.relay_on is True
        assert await meter.read_output(0) is True
        dev.state.stuck_relay = True  # the device answers, but the relay did not move
        with pytest.raises(DeviceProtocolError, match="did not switch off"):
            await meter.set_output(0, False)
        with pytest.raises(ConfigError, match="no relay 1"):
            await meter.set_output(1, True)
    async with BlueprintDevice(BlueprintState(relays=0), clock=clock) as dev:
        meter = await opened(session, clock, dev)
        assert meter.outputs == ()
        with pytest.raises(ConfigError, match="no relay 0"):
            await meter.read_output(0)


async def test_basic_auth(session, clock):
    async with BlueprintDevice(password="s3cret", clock=clock) as dev:
        with pytest.raises(DeviceAuthError, match="password required"):
            await opened(session, clock, dev)
        with pytest.raises(DeviceAuthError, match="credentials refused") as err:
            await opened(session, clock, dev, password="wrong")
        assert "wrong" not in str(err.value)  # never a password in a message
        meter = await opened(session, clock, dev, password="s3cret")
        assert (await meter.read_phases()).channels[0].power_w == 1000.0


def test_the_password_is_not_in_the_repr():
    conn = Connection("meter.local", 1.0, "admin", "s3cret")
    assert "s3cret" not in repr(conn)
    assert "meter.local" in repr(conn)


async def test_options_it_does_not_take_are_config_errors(session, clock):
    with pytest.raises(ConfigError, match="no option generation"):
        await open_device(
            "blueprint", session, Connection("127.0.0.1:1", options={"generation": 2}), clock=clock
        )


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("offline", DeviceConnectionError),
        ("slow", DeviceTimeoutError),
        ("garbage", DeviceProtocolError),
        ("truncated", DeviceProtocolError),
        ("http500", DeviceProtocolError),
        ("auth", DeviceAuthError),
    ],
)
async def test_fault_modes_map_to_device_errors_and_it_recovers(session, clock, mode, error):
    async with BlueprintDevice(clock=clock) as dev:
        dev.faults.slow_s = 3.0
        meter = await opened(session, clock, dev, timeout_s=0.3)
        await dev.set_fault(mode)
        with pytest.raises(error):
            await meter.read_phases()
        with pytest.raises(error):
            await meter.set_output(0, True)
        await dev.set_fault("ok")
        assert (await meter.read_phases()).channels[1].power_w == -250.0  # no re-open needed


# --- bounded parsing: every malformed answer is a DeviceProtocolError ---------------------------

GOOD_METER = {"channels": [{"power_w": 10.0, "voltage_v": 230.0, "energy_in_wh": 1.0}]}


def mutated(**changes):
    doc = json.loads(json.dumps(GOOD_METER))
    doc["channels"][0].update(changes)
    return doc


@pytest.mark.parametrize(
    ("doc", "why"),
    [
        ([], "expected a JSON object"),
        ({}, "'channels' missing"),
        ({"channels": {}}, "not a list"),
        ({"channels": [{"power_w": 1.0}] * 4}, "at most 3"),
        ({"channels": [{"power_w": 1.0}] * 2}, "expected 1"),
        ({"channels": [7]}, "expected a JSON object"),
        (mutated(power_w=None), "'power_w' missing"),
        (mutated(power_w="12"), "not a number"),
        (mutated(power_w=True), "not a number"),
        (mutated(power_w=10**400), "in range"),  # float() of it would raise OverflowError
        (mutated(energy_in_wh=-(10**30)), "in range"),
        (mutated(voltage_v=[230]), "not a number"),
    ],
)
def test_malformed_meter_answers(doc, why):
    with pytest.raises(DeviceProtocolError, match=why):
        parse_meter(doc, 1, 0.0)


INFO = {"model": "BP-3", "serial": "BP0001", "firmware": "1.2.0", "channels": 3, "relays": 1}


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"model": "x" * 65}, "longer than 64"),
        ({"serial": ""}, "'serial' missing or not a string"),
        ({"firmware": 12}, "'firmware' missing or not a string"),
        ({"channels": 4}, "unsupported layout"),
        ({"channels": 1.5}, "unsupported layout"),
        ({"relays": 2}, "unsupported layout"),
        ({"relays": None}, "'relays' missing"),
    ],
)
def test_malformed_info(changes, why):
    with pytest.raises(DeviceProtocolError, match=why):
        parse_info({**INFO, **changes})


def test_relay_answers():
    assert parse_relay({"on": True}) is True
    for bad in ({"on": 1}, {}, [], None):
        with pytest.raises(DeviceProtocolError):
            parse_relay(bad)


KEYS = ["channels", "power_w", "voltage_v", "energy_in_wh", "energy_out_wh", "on", "model"]
KEYS += ["serial", "firmware", "relays", "x"]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=80),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.sampled_from(KEYS),
            children,
            max_size=6,
        )
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_gives_a_reading_or_a_device_error(doc):
    try:
        decoded = decode_json(HttpAnswer(200, {}, json.dumps(doc).encode()), "test")
    except DeviceError:
        return  # refused by the bounded decoder (e.g. a number of 1e20 or more): also clean
    for parse in (
        lambda d: parse_meter(d, 1, 0.0),
        lambda d: parse_meter(d, 3, 0.0),
        parse_info,
        parse_relay,
    ):
        parses_or_fails_cleanly(parse, decoded)


def parses_or_fails_cleanly(parse, doc):
    try:
        parse(doc)
    except DeviceError:
        pass  # the only exception a parser may raise
