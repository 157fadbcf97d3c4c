"""M3 MQTT temperatures: payload parsing, and a real broker -> our service -> a real Monitor."""

from __future__ import annotations

import json
import math
from contextlib import AsyncExitStack, asynccontextmanager

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from venus_ems.clock import RealClock, SteppedClock
from venus_ems.daemon import run_daemon
from venus_ems.errors import ConfigError, DeviceProtocolError
from venus_ems.features import create_features
from venus_ems.features.temperature import (
    HUMIDITY,
    PRESSURE,
    TEMPERATURE,
    Complaints,
    MqttTemperature,
    parse_reading,
    service_name,
)
from venus_ems.runtime.actuator import ActuatorRegistry
from venus_ems.runtime.config import TemperatureConfig, parse_config
from venus_ems.runtime.feature import FeatureContext, NullSink
from venus_ems.runtime.mqtt import MqttLink
from venus_ems.sim.venus import LocalSettings
from venus_ems.venus import SettingsClient, open_monitor
from waiting import bus_watch, until

pytestmark = pytest.mark.anyio


# ----------------------------------------------------------------- helpers


class Sink(NullSink):
    """Records service messages (what the user sees in the log, on MQTT and on D-Bus)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str, str]] = []

    def service_message(self, feature, level, text) -> None:
        self.messages.append((feature, level, text))


async def pub(port: int, topic: str, payload: bytes) -> None:
    """Publish with Debian's mosquitto_pub (an independent client), payload from stdin."""
    how = ["-s"] if payload else ["-n"]  # -n: a zero-length message
    await anyio.run_process(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-t", topic, *how],
        input=payload or None,
    )


@asynccontextmanager
async def running(feature, bus_address, mqtt_settings, clock, *, settings=None):
    """Run ``feature`` with a real Monitor, MQTT link and (with a file) localsettings."""
    sink = Sink()
    async with AsyncExitStack() as stack:
        if settings is not None:
            await stack.enter_async_context(LocalSettings(address=bus_address, file=settings))
        mon = await stack.enter_async_context(open_monitor(bus_address))
        tg = await stack.enter_async_context(anyio.create_task_group())
        link = MqttLink(mqtt_settings, clock=RealClock())
        await tg.start(link.run)
        ctx = FeatureContext(
            feature.name,
            clock,
            mon,
            ActuatorRegistry(tg),
            bus_address=bus_address,
            mqtt=link,
            settings=SettingsClient(mon),
            sink=sink,
        )
        await tg.start(lambda task_status: feature.run(ctx, task_status=task_status))
        yield mon, sink
        tg.cancel_scope.cancel()


def sensor(**kw) -> MqttTemperature:
    base = {"name": "fridge", "enabled": True, "topic": "sensors/fridge/t", "stale_s": 60.0}
    return MqttTemperature(TemperatureConfig.model_validate({**base, **kw}))


# ----------------------------------------------------------------- parsing (pure)


@pytest.mark.parametrize(
    ("payload", "field", "expected"),
    [
        (b"21.5", None, 21.5),
        (b" -18 \n", None, -18.0),
        (b"1e1", None, 10.0),
        (b'{"temperature": 4.25}', "temperature", 4.25),
        (b'{"temperature": "4.5"}', "temperature", 4.5),
        (b'{"AM2301": {"Temperature": 22.1}}', "AM2301.Temperature", 22.1),
        (b'{"a.b": 3}', "a.b", 3.0),
    ],
)
def test_parse_reading_accepts(payload, field, expected):
    assert parse_reading(payload, TEMPERATURE, field) == expected


@pytest.mark.parametrize(
    ("payload", "field", "why"),
    [
        (b"", None, "empty"),
        (b"abc", None, "not a number"),
        (b"nan", None, "finite"),
        (b"inf", None, "finite"),
        (b"-1e400", None, "finite"),
        (b"999", None, "outside"),
        (b"-80", None, "outside"),
        (b"\xff\xfe", None, "UTF-8"),
        (b'{"temperature": 4}', None, "not a number"),  # JSON while plain is configured
        (b"21.5", "temperature", "not an object"),
        (b"{bad", "temperature", "not JSON"),
        (b'{"t": 4}', "temperature", "no field"),
        (b'{"temperature": true}', "temperature", "not a number"),
        (b'{"temperature": null}', "temperature", "not a number"),
        (b'{"temperature": [1]}', "temperature", "not a number"),
        (b'{"temperature": "NaN"}', "temperature", "finite"),
        (b"[1, 2]", "temperature", "not an object"),
        (b'{"a": {"b": 1}}', "a.c", "no field 'a.c'"),
    ],
)
def test_parse_reading_rejects_with_a_reason(payload, field, why):
    with pytest.raises(DeviceProtocolError, match=why):
        parse_reading(payload, TEMPERATURE, field)


def test_plausible_ranges_per_quantity():
    assert parse_reading(b"100", HUMIDITY, None) == 100.0
    with pytest.raises(DeviceProtocolError, match="humidity 101 %"):
        parse_reading(b"101", HUMIDITY, None)
    assert parse_reading(b"1013.2", PRESSURE, None) == 1013.2
    with pytest.raises(DeviceProtocolError, match="hPa"):  # pascal by mistake
        parse_reading(b"101325", PRESSURE, None)


@given(st.floats(min_value=-60.0, max_value=150.0))
def test_any_plausible_number_round_trips(value):
    assert parse_reading(repr(value).encode(), TEMPERATURE, None) == value
    doc = json.dumps({"x": {"t": value}}).encode()
    assert parse_reading(doc, TEMPERATURE, "x.t") == value


@given(st.binary(max_size=40), st.sampled_from([None, "t"]))
def test_arbitrary_bytes_give_a_value_or_a_protocol_error(payload, field):
    try:
        value = parse_reading(payload, TEMPERATURE, field)
    except DeviceProtocolError:
        return
    assert math.isfinite(value)
    assert -60.0 <= value <= 150.0


def test_sources_group_quantities_per_topic():
    s = sensor(
        payload="json",
        json_field="temp",
        humidity_json_field="hum",
        pressure_topic="sensors/fridge/p",
    )
    by_topic = {
        t: [(p.quantity.label, p.json_field) for p in parts] for t, parts in s.sources.items()
    }
    assert by_topic == {
        "sensors/fridge/t": [("temperature", "temp"), ("humidity", "hum")],
        "sensors/fridge/p": [("pressure", "temp")],  # own topic, no own field: json_field
    }
    plain = sensor(humidity_topic="sensors/fridge/h")
    assert {t: [p.json_field for p in parts] for t, parts in plain.sources.items()} == {
        "sensors/fridge/t": [None],
        "sensors/fridge/h": [None],
    }


async def test_complaints_are_limited_per_window():
    clock = SteppedClock()
    lines: list[str] = []
    c = Complaints(clock, lines.append, every_s=60.0)
    for i in range(50):
        c.reject(f"bad {i}")
    assert lines == ["bad 0"]
    await clock.advance(30.0)
    c.reject("bad 50")
    assert len(lines) == 1
    await clock.advance(30.0)
    c.reject("bad 51")
    assert lines == ["bad 0", "bad 51 (50 more rejected since the last report)"]
    assert c.total == 52


# ----------------------------------------------------------------- real broker, real bus


async def test_values_status_and_bad_payloads(bus_address, mqtt_settings, mosquitto):
    feature = sensor(temperature_type="freezer", custom_name="Chest freezer", device_instance=23)
    name = service_name("fridge")
    async with running(feature, bus_address, mqtt_settings, SteppedClock()) as (mon, sink):
        await until(lambda: mon.service(name) is not None)
        assert mon.get(name, "/Temperature") is None  # nothing received yet: invalid, not 0
        assert mon.get(name, "/Connected") == 0
        assert mon.get(name, "/Status") == 4
        assert mon.get(name, "/TemperatureType") == 6
        assert mon.get(name, "/CustomName") == "Chest freezer"
        assert mon.get(name, "/DeviceInstance") == 23
        assert "/Humidity" not in mon.service(name).values  # not configured: not published

        await pub(mosquitto.port, "sensors/fridge/t", b"-18.5")
        await until(lambda: mon.get(name, "/Temperature") == -18.5)
        assert mon.get(name, "/Connected") == 1
        assert mon.get(name, "/Status") == 0

        for bad in (b"garbage", b"nan", b"999", b"", b"\xff"):
            await pub(mosquitto.port, "sensors/fridge/t", bad)
        await until(lambda: any(m[1] == "warning" for m in sink.messages))
        assert mon.get(name, "/Temperature") == -18.5  # rejected: nothing changed
        assert mon.get(name, "/Connected") == 1
        await pub(mosquitto.port, "sensors/fridge/t", b"-18.0")  # a good one after the burst
        await until(lambda: mon.get(name, "/Temperature") == -18.0)
        warnings = [m for m in sink.messages if m[1] == "warning"]
        assert len(warnings) == 1, warnings  # one line for the whole burst
        assert warnings[0][0] == "temperature.fridge"
        assert "sensors/fridge/t" in warnings[0][2]
        assert "not a number" in warnings[0][2]
        assert feature._complaints.total == 5  # every bad one was seen and rejected


async def test_json_with_humidity_and_pressure_then_stale(bus_address, mqtt_settings, mosquitto):
    clock = SteppedClock()
    feature = sensor(
        payload="json",
        json_field="AM2301.Temperature",
        humidity_json_field="AM2301.Humidity",
        pressure_topic="sensors/fridge/p",
        pressure_json_field="hPa",
        stale_s=60.0,
    )
    name = service_name("fridge")
    async with running(feature, bus_address, mqtt_settings, clock) as (mon, sink):
        doc = {"Time": "2026-06-21T10:00:00", "AM2301": {"Temperature": 4.2, "Humidity": 55.0}}
        await pub(mosquitto.port, "sensors/fridge/t", json.dumps(doc).encode())
        await pub(mosquitto.port, "sensors/fridge/p", b'{"hPa": 1009.5}')
        await until(lambda: mon.get(name, "/Pressure") == 1009.5)
        assert mon.get(name, "/Temperature") == 4.2
        assert mon.get(name, "/Humidity") == 55.0

        # humidity missing in one message: temperature still taken, humidity unchanged
        await pub(mosquitto.port, "sensors/fridge/t", b'{"AM2301": {"Temperature": 4.4}}')
        await until(lambda: mon.get(name, "/Temperature") == 4.4)
        assert mon.get(name, "/Humidity") == 55.0
        assert any("no field 'AM2301.Humidity'" in m[2] for m in sink.messages)

        await clock.advance(30.0)
        await pub(mosquitto.port, "sensors/fridge/p", b'{"hPa": 1010}')
        await until(lambda: mon.get(name, "/Pressure") == 1010.0)
        await clock.advance(31.0)  # temperature 61 s old, pressure 31 s old
        await until(lambda: mon.get(name, "/Temperature") is None)
        assert mon.get(name, "/Humidity") is None
        assert mon.get(name, "/Connected") == 0
        assert mon.get(name, "/Status") == 4
        assert mon.get(name, "/Pressure") == 1010.0
        await clock.advance(30.0)
        await until(lambda: mon.get(name, "/Pressure") is None)
        assert any("no valid temperature for 60 s" in m[2] for m in sink.messages)

        await pub(mosquitto.port, "sensors/fridge/t", b'{"AM2301": {"Temperature": 5}}')
        await until(lambda: mon.get(name, "/Temperature") == 5.0)
        assert mon.get(name, "/Connected") == 1


async def test_custom_name_written_over_dbus_is_kept(bus_address, mqtt_settings, tmp_path):
    name = service_name("fridge")
    setting = "/Settings/VenusEms/Temperature/fridge/CustomName"
    store = tmp_path / "settings.json"
    async with running(sensor(), bus_address, mqtt_settings, SteppedClock(), settings=store) as (
        mon,
        _,
    ):
        await until(lambda: mon.service(name) is not None)
        assert mon.get(name, "/CustomName") == "fridge"  # no custom_name: the table's name
        assert await mon.set_value(name, "/CustomName", "Kitchen fridge") == 0
        await until(lambda: mon.get("com.victronenergy.settings", setting) == "Kitchen fridge")
        assert mon.get(name, "/CustomName") == "Kitchen fridge"
        assert await mon.set_value(name, "/CustomName", "x" * 65) != 0  # too long: refused
        async with bus_watch(bus_address) as bus:
            await bus.settle()  # a stored name would have reached localsettings by now
        assert mon.get("com.victronenergy.settings", setting) == "Kitchen fridge"
        assert mon.get(name, "/CustomName") == "Kitchen fridge"
        # renamed in localsettings by someone else: the service follows
        assert await mon.set_value("com.victronenergy.settings", setting, "Garage fridge") == 0
        await until(lambda: mon.get(name, "/CustomName") == "Garage fridge")
    # a restart (new process, settings kept on disk) starts with the stored name
    async with running(sensor(), bus_address, mqtt_settings, SteppedClock(), settings=store) as (
        mon,
        _,
    ):
        await until(lambda: mon.service(name) is not None)
        assert mon.get(name, "/CustomName") == "Garage fridge"


async def test_without_mqtt_the_feature_refuses_to_start(bus_address):
    async with open_monitor(bus_address) as mon, anyio.create_task_group() as tg:
        ctx = FeatureContext("temperature.fridge", SteppedClock(), mon, ActuatorRegistry(tg))
        with pytest.raises(ConfigError, match="needs \\[mqtt\\]"):
            await sensor().run(ctx, task_status=anyio.TASK_STATUS_IGNORED)


async def test_daemon_builds_the_sensor_from_config(bus_address, mosquitto):
    text = f"""
schema_version = 1
[general]
log_console = false
[mqtt]
enabled = true
host = "127.0.0.1"
port = {mosquitto.port}
[[temperature]]
name = "garden"
enabled = true
topic = "Devices/d1Garden/Sensors/TEMP/Value"
temperature_type = "outdoor"
"""
    config, _ = parse_config(text)
    names = [n for n, _ in create_features(config)]
    assert names == ["temperature.garden"]
    name = service_name("garden")
    async with open_monitor(bus_address) as mon, anyio.create_task_group() as tg:
        await tg.start(
            lambda task_status: run_daemon(config, bus_address=bus_address, task_status=task_status)
        )
        await until(lambda: mon.get(name, "/TemperatureType") == 4)
        await pub(mosquitto.port, "Devices/d1Garden/Sensors/TEMP/Value", b"12.75")
        await until(lambda: mon.get(name, "/Temperature") == 12.75, timeout=10.0)
        tg.cancel_scope.cancel()
