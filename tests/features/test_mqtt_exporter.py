"""M4 exporter, pure parts: payloads, topics, the per-topic rate limiter and HA discovery rules."""

from __future__ import annotations

import itertools
import json

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from venus_ems.clock import SteppedClock
from venus_ems.features.ha_discovery import (
    classify,
    discovery_config,
    discovery_topic,
    object_id,
)
from venus_ems.features.mqtt_exporter import (
    MqttExporter,
    RateLimiter,
    encode_payload,
    export_topic,
)
from venus_ems.runtime.config import ExportConfig, MqttExporterConfig

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("value", "plain", "as_json"),
    [
        (1234.5, b"1234.5", b'{"value": 1234.5}'),
        (20.43000030517578, b"20.43000030517578", b'{"value": 20.43000030517578}'),
        (3, b"3", b'{"value": 3}'),
        (-250, b"-250", b'{"value": -250}'),
        (0, b"0", b'{"value": 0}'),
        (0.0, b"0.0", b'{"value": 0.0}'),
        (None, b"", b'{"value": null}'),
        (float("nan"), b"", b'{"value": null}'),
        (float("inf"), b"", b'{"value": null}'),
        (True, b"1", b'{"value": 1}'),
        ("Fronius Symo", b"Fronius Symo", b'{"value": "Fronius Symo"}'),
        ("", b"", b'{"value": ""}'),
        ([1, 2], b"[1, 2]", b'{"value": [1, 2]}'),
        ({"a": 1.5}, b'{"a": 1.5}', b'{"value": {"a": 1.5}}'),
    ],
)
def test_payloads(value, plain, as_json):
    assert encode_payload(value, "plain") == plain
    assert encode_payload(value, "json") == as_json
    assert set(json.loads(as_json)) == {"value"}  # valid JSON, nothing else


def test_topics_star_appends_the_dbus_path():
    star = ExportConfig(service="com.victronenergy.grid", prefix="/Ac", topic="victron/grid*")
    assert export_topic(star, "/Ac/L1/Power") == "victron/grid/Ac/L1/Power"
    slash = ExportConfig(service="com.victronenergy.grid", path="/Ac/Power", topic="g/*")
    assert export_topic(slash, "/Ac/Power") == "g/Ac/Power"
    fixed = ExportConfig(service="com.victronenergy.system", path="/Dc/Battery/Soc", topic="soc")
    assert export_topic(fixed, "/Dc/Battery/Soc") == "soc"


def test_prefix_matching_and_watched_selection():
    cfg = MqttExporterConfig(
        enabled=True,
        exports=(
            ExportConfig(service="com.victronenergy.battery", path="/Soc", topic="soc"),
            ExportConfig(service="com.victronenergy.grid.x", prefix="/Ac/L1", topic="g*"),
        ),
    )
    exporter = MqttExporter(cfg)
    prefix = exporter.exports[1]
    assert prefix.matches("/Ac/L1/Power")
    assert prefix.matches("/Ac/L1")
    assert not prefix.matches("/Ac/L10/Power")
    assert not prefix.matches("/Ac/Power")
    services, paths = exporter.watched()
    assert services == {
        "com.victronenergy.battery",
        "com.victronenergy.grid.x",
        "com.victronenergy.system",  # the active battery comes from systemcalc
    }
    assert paths is None  # a prefix export needs every path
    only_paths = MqttExporter(MqttExporterConfig(enabled=True, exports=cfg.exports[:1]))
    assert only_paths.watched()[1] == {
        "/Soc",
        "/Dc/Battery/BatteryService",
        "/ActiveBatteryService",
    }


def test_per_export_options_override_the_defaults():
    cfg = MqttExporterConfig(
        enabled=True,
        rate_limit_s=2.0,
        retain=True,
        payload="plain",
        exports=(
            ExportConfig(service="com.victronenergy.system", path="/A", topic="a"),
            ExportConfig(
                service="com.victronenergy.system",
                path="/B",
                topic="b",
                rate_limit_s=0.0,
                retain=False,
                payload="json",
            ),
        ),
    )
    a, b = MqttExporter(cfg).exports
    assert (a.rate_s, a.retain, a.kind) == (2.0, True, "plain")
    assert (b.rate_s, b.retain, b.kind) == (0.0, False, "json")


# ----------------------------------------------------------------- rate limiter


def limiter(clock):
    sent: list[tuple[float, str, bytes, bool]] = []
    lim = RateLimiter(clock, lambda t, p, r: sent.append((clock.monotonic(), t, p, r)))
    return lim, sent


async def test_rate_limit_holds_changes_and_sends_the_latest():
    clock = SteppedClock()
    lim, sent = limiter(clock)
    lim.offer("t", b"1", True, 1.0)
    assert sent == [(0.0, "t", b"1", True)]  # the first value goes at once
    lim.offer("t", b"1", True, 1.0)  # unchanged: nothing
    await clock.advance(0.2)
    lim.offer("t", b"2", True, 1.0)
    await clock.advance(0.2)
    lim.offer("t", b"3", True, 1.0)
    assert len(sent) == 1
    assert lim.flush_due() == pytest.approx(0.6)
    await clock.advance(0.6)
    lim.flush_due()
    assert sent[1:] == [(1.0, "t", b"3", True)]  # latest wins, exactly at the limit
    lim.offer("o", b"x", False, 1.0)  # topics are independent
    assert sent[-1] == (1.0, "o", b"x", False)


async def test_change_back_inside_the_limit_sends_nothing():
    clock = SteppedClock()
    lim, sent = limiter(clock)
    lim.offer("t", b"1", True, 5.0)
    await clock.advance(1.0)
    lim.offer("t", b"2", True, 5.0)
    lim.offer("t", b"1", True, 5.0)  # subscribers already have 1
    await clock.advance(10.0)
    lim.flush_due()
    assert [p for _, _, p, _ in sent] == [b"1"]


async def test_zero_rate_sends_every_change_and_retain_is_part_of_the_message():
    clock = SteppedClock()
    lim, sent = limiter(clock)
    for p in (b"1", b"2", b"3"):
        lim.offer("t", p, False, 0.0)
    lim.offer("t", b"3", True, 0.0)
    assert [(p, r) for _, _, p, r in sent] == [
        (b"1", False),
        (b"2", False),
        (b"3", False),
        (b"3", True),
    ]


async def test_limiter_task_delivers_held_values_on_the_clock():
    clock = SteppedClock()
    lim, sent = limiter(clock)
    async with anyio.create_task_group() as tg:
        tg.start_soon(lim.run)
        await clock.advance(0)
        lim.offer("t", b"1", True, 2.0)
        lim.offer("t", b"2", True, 2.0)
        await clock.advance(1.9)
        assert [p for _, _, p, _ in sent] == [b"1"]
        await clock.advance(0.2)
        assert [(t, p) for t, _, p, _ in sent] == [(0.0, b"1"), (2.0, b"2")]
        tg.cancel_scope.cancel()


@settings(max_examples=200, deadline=None)
@given(
    rate=st.sampled_from([0.0, 0.5, 1.0, 3.0]),
    steps=st.lists(
        st.tuples(st.floats(min_value=0.0, max_value=2.0), st.sampled_from([b"a", b"b", b"c"])),
        min_size=1,
        max_size=40,
    ),
)
def test_limiter_properties(rate, steps):
    """Spacing >= rate, never the same payload twice in a row, the last value always arrives."""
    t = 0.0
    sent: list[tuple[float, bytes]] = []

    class Clock:
        def monotonic(self):
            return t

    lim = RateLimiter(Clock(), lambda _t, p, _r: sent.append((t, p)))  # type: ignore[arg-type]
    for dt, payload in steps:
        t += dt
        lim.flush_due()
        lim.offer("x", payload, True, rate)
    t += rate + 1.0
    lim.flush_due()
    assert sent[-1][1] == steps[-1][1]
    for (t0, p0), (t1, p1) in itertools.pairwise(sent):
        assert t1 - t0 >= rate - 1e-9
        assert p0 != p1


# ----------------------------------------------------------------- HA discovery


@pytest.mark.parametrize(
    ("path", "unit", "device_class", "state_class"),
    [
        ("/Dc/Battery/Soc", "%", "battery", "measurement"),
        ("/Soc", "%", "battery", "measurement"),
        ("/Control/ActiveSocLimit", "%", None, "measurement"),
        ("/Soh", "%", None, "measurement"),
        ("/Ac/Power", "W", "power", "measurement"),
        ("/Ac/Grid/L1/Power", "W", "power", "measurement"),
        ("/Dc/0/Power", "W", "power", "measurement"),
        ("/Overrides/Setpoint", "W", "power", "measurement"),
        ("/Ac/L2/Voltage", "V", "voltage", "measurement"),
        ("/Info/MaxChargeVoltage", "V", "voltage", "measurement"),
        ("/Dc/0/Current", "A", "current", "measurement"),
        ("/Ac/Energy/Forward", "kWh", "energy", "total_increasing"),
        ("/Ac/L1/Energy/Reverse", "kWh", "energy", "total_increasing"),
        ("/Yield/User", "kWh", "energy", "total_increasing"),
        ("/History/Daily/0/Yield", "kWh", "energy", "total_increasing"),
        ("/Ac/Frequency", "Hz", "frequency", "measurement"),
        ("/Dc/0/Temperature", "°C", "temperature", "measurement"),
        ("/Temperature", "°C", "temperature", "measurement"),
        ("/Humidity", "%", "humidity", "measurement"),
        ("/Pressure", "hPa", "atmospheric_pressure", "measurement"),
        ("/TimeToGo", "s", "duration", "measurement"),
        ("/Dc/Battery/TimeToGo", "s", "duration", "measurement"),
        ("/ConsumedAmphours", "Ah", None, "measurement"),
        ("/InstalledCapacity", "Ah", None, "measurement"),
        ("/ProductName", None, None, None),
        ("/SystemState/State", None, None, None),
        ("/PowerFactor", None, None, None),
    ],
)
def test_units_and_classes_from_the_path(path, unit, device_class, state_class):
    kind = classify(path)
    assert (kind.unit, kind.device_class, kind.state_class) == (unit, device_class, state_class)


def test_discovery_config_message():
    topic = discovery_topic("homeassistant", "venus-ems", "victron/grid/Ac/L1/Power")
    assert topic == "homeassistant/sensor/venus-ems/victron_grid_Ac_L1_Power/config"
    assert object_id("a b/c+d#") == "a_b_c_d_"
    cfg = discovery_config(
        node="venus-ems",
        state_topic="victron/grid/Ac/L1/Power",
        service="com.victronenergy.grid",
        path="/Ac/L1/Power",
        payload="json",
        availability_topic="venus-ems/$SYS/Status",
    )
    assert cfg["unique_id"] == "venus-ems_victron_grid_Ac_L1_Power"
    assert cfg["state_topic"] == "victron/grid/Ac/L1/Power"
    assert cfg["unit_of_measurement"] == "W"
    assert cfg["device_class"] == "power"
    assert cfg["state_class"] == "measurement"
    assert cfg["value_template"] == "{{ value_json.value }}"
    assert cfg["availability_topic"] == "venus-ems/$SYS/Status"
    assert (cfg["payload_available"], cfg["payload_not_available"]) == ("Online", "Offline")
    assert cfg["device"]["identifiers"] == ["venus-ems_grid"]
    assert cfg["name"] == "Ac L1 Power"
    text = discovery_config(
        node="n",
        state_topic="p",
        service="com.victronenergy.system",
        path="/SystemType",
        payload="plain",
        availability_topic="n/$SYS/Status",
    )
    assert "unit_of_measurement" not in text
    assert "device_class" not in text
    assert "state_class" not in text  # a string: no statistics
    assert "None" in text["value_template"]  # empty payload -> unknown, not 0
