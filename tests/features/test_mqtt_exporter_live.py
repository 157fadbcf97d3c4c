"""M4 exporter, real parts: D-Bus services on a private bus -> mosquitto -> mosquitto_sub."""

from __future__ import annotations

import itertools
import json
import subprocess
from contextlib import asynccontextmanager

import anyio
import pytest

from venus_ems.clock import RealClock, SteppedClock, wait_idle
from venus_ems.daemon import run_daemon
from venus_ems.features.mqtt_exporter import MqttExporter
from venus_ems.runtime.actuator import ActuatorRegistry
from venus_ems.runtime.config import MqttExporterConfig, parse_config
from venus_ems.runtime.feature import FeatureContext
from venus_ems.runtime.mqtt import MqttLink
from venus_ems.venus import Identity, PathSpec, Service, active_service, open_monitor
from waiting import until

pytestmark = pytest.mark.anyio

BMS1 = "com.victronenergy.battery.bms1"
BMS2 = "com.victronenergy.battery.bms2"
GRID = "com.victronenergy.grid.shelly1"


class Subscriber:
    """Debian's mosquitto_sub on some filters: messages as (retain flag, topic, payload)."""

    def __init__(self) -> None:
        self.messages: list[tuple[bool, str, bytes]] = []

    def payloads(self, topic: str) -> list[bytes]:
        return [p for _, t, p in self.messages if t == topic]

    def topics(self) -> set[str]:
        return {t for _, t, _ in self.messages}

    async def _read(self, stream) -> None:
        buf = b""
        async for chunk in stream:
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                retain, topic, payload = line.decode().split("\t", 2)
                self.messages.append((retain == "1", topic, bytes.fromhex(payload)))


@asynccontextmanager
async def mosquitto_sub(port: int, *filters: str):
    """Start mosquitto_sub and return once it is subscribed (a marker message came through)."""
    args = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-F", r"%r\t%t\t%x"]
    marker = "venus-ems-test/ready"
    for f in (*filters, "venus-ems-test/#"):
        args += ["-t", f]
    sub = Subscriber()
    async with (
        await anyio.open_process(args, stdout=subprocess.PIPE) as proc,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(sub._read, proc.stdout)
        with anyio.fail_after(5):
            while marker not in sub.topics():
                await anyio.run_process(
                    ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-t", marker, "-m", "1"]
                )
                await anyio.sleep(0.05)  # mosquitto_sub may not be subscribed yet: try again
        sub.messages = [m for m in sub.messages if m[1] != marker]
        try:
            yield sub
        finally:
            proc.terminate()
            tg.cancel_scope.cancel()


_MARKS = itertools.count()


async def delivered(link: MqttLink, sub: Subscriber) -> None:
    """Barrier: what the link's users published so far has reached ``sub``.

    Every task here runs until it blocks (the exporter has handled each change), then a marker
    goes through the same link: the broker keeps one client's messages in order.
    """
    await wait_idle()
    mark = str(next(_MARKS)).encode()
    link.publish("venus-ems-test/flush", mark)
    await until(lambda: mark in sub.payloads("venus-ems-test/flush"))
    sub.messages = [m for m in sub.messages if m[1] != "venus-ems-test/flush"]


def battery(address: str, name: str, instance: int, voltage: float) -> Service:
    svc = Service(name, identity=Identity("BMS"), device_instance=instance, address=address)
    svc.add_path("/Dc/0/Voltage", voltage, PathSpec("d", "%.2F V"))
    return svc


def system(address: str) -> Service:
    svc = Service(
        "com.victronenergy.system", identity=Identity("systemcalc"), device_instance=0,
        address=address,
    )  # fmt: skip
    svc.add_path("/Dc/Battery/Soc", 87.0, PathSpec("d"))
    svc.add_path("/Dc/Battery/BatteryService", BMS1, PathSpec("s"))
    svc.add_path("/ActiveBatteryService", "com.victronenergy.battery/512", PathSpec("s"))
    return svc


def grid(address: str) -> Service:
    svc = Service(GRID, identity=Identity("Shelly Pro 3EM"), device_instance=40, address=address)
    svc.add_path("/Ac/Power", -1234.5, PathSpec("d"))
    svc.add_path("/Ac/L1/Power", -400.0, PathSpec("d"))
    svc.add_path("/Ac/L1/Voltage", 231.4, PathSpec("d"))
    svc.add_path("/Ac/Energy/Forward", 10234.6, PathSpec("d"))
    return svc


EXPORTS = MqttExporterConfig.model_validate(
    {
        "enabled": True,
        "rate_limit_s": 1.0,
        "exports": [
            {"service": "com.victronenergy.system", "path": "/Dc/Battery/Soc",
             "topic": "victron/battery/soc"},
            {"service": "com.victronenergy.system", "path": "/Dc/Battery/Soc",
             "topic": "victron/soc_json", "payload": "json", "retain": False},
            {"service": "com.victronenergy.battery", "path": "/Dc/0/Voltage",
             "topic": "victron/battery/voltage"},
            {"service": "com.victronenergy.grid", "prefix": "/Ac/L1", "topic": "victron/grid*",
             "payload": "json", "retain": False, "rate_limit_s": 5.0},
            {"service": GRID, "path": "/Ac/Power", "topic": "victron/grid/power",
             "rate_limit_s": 5.0},
            {"service": "com.victronenergy.grid.absent", "path": "/Ac/Power",
             "topic": "victron/absent"},
        ],
    }
)  # fmt: skip


async def test_exports_seen_by_mosquitto_sub(bus_address, mqtt_settings, mosquitto):
    clock = SteppedClock()
    sys_svc, bms1, bms2 = system(bus_address), None, None
    bms1 = battery(bus_address, BMS1, 512, 52.1)
    bms2 = battery(bus_address, BMS2, 256, 12.8)  # lower instance, but systemcalc uses bms1
    grid_svc = grid(bus_address)
    async with (
        sys_svc, bms1, bms2, grid_svc,
        open_monitor(bus_address) as mon,
        mosquitto_sub(mosquitto.port, "victron/#") as sub,
        anyio.create_task_group() as tg,
    ):  # fmt: skip
        link = MqttLink(mqtt_settings, clock=RealClock())
        await tg.start(link.run)
        await until(lambda: len(mon.services()) >= 4)
        assert active_service(mon, "com.victronenergy.battery") == BMS1
        assert active_service(mon, "com.victronenergy.grid") == GRID
        ctx = FeatureContext("mqtt_exporter", clock, mon, ActuatorRegistry(tg), mqtt=link)
        exporter = MqttExporter(EXPORTS)
        await tg.start(lambda task_status: exporter.run(ctx, task_status=task_status))

        # initial values: one message per topic, in the configured shape
        expected = {
            "victron/battery/soc": b"87.0",
            "victron/soc_json": b'{"value": 87.0}',  # same D-Bus value, a second topic
            "victron/battery/voltage": b"52.1",
            "victron/grid/Ac/L1/Power": b'{"value": -400.0}',
            "victron/grid/Ac/L1/Voltage": b'{"value": 231.4}',
            "victron/grid/power": b"-1234.5",
            "victron/absent": b"",  # service not there: invalid (clears a stale retained value)
        }
        await until(lambda: sub.topics() >= set(expected))
        assert {t: sub.payloads(t) for t in expected} == {t: [p] for t, p in expected.items()}
        assert "victron/grid/Ac/Energy/Forward" not in sub.topics()  # not under the prefix

        # rate limit: three changes inside 5 s -> nothing yet, then only the latest
        for w in (-1000.0, -900.0, -800.0):
            grid_svc["/Ac/Power"] = w
            await until(lambda w=w: mon.get(GRID, "/Ac/Power") == w)
        await delivered(link, sub)
        assert sub.payloads("victron/grid/power") == [b"-1234.5"]
        await clock.advance(5.0)
        await delivered(link, sub)
        assert sub.payloads("victron/grid/power") == [b"-1234.5", b"-800.0"]

        # the active battery changes: the class export follows it
        sys_svc["/Dc/Battery/BatteryService"] = BMS2
        await until(lambda: b"12.8" in sub.payloads("victron/battery/voltage"))
        bms1["/Dc/0/Voltage"] = 51.0  # no longer exported
        bms2["/Dc/0/Voltage"] = 12.9  # inside the 1 s limit: held
        await until(lambda: mon.get(BMS2, "/Dc/0/Voltage") == 12.9)
        await wait_idle()  # the exporter has seen it before the clock moves on
        await clock.advance(1.0)
        await until(lambda: b"12.9" in sub.payloads("victron/battery/voltage"))
        assert sub.payloads("victron/battery/voltage") == [b"52.1", b"12.8", b"12.9"]

        # the grid meter leaves the bus: its exported values become invalid
        await grid_svc.close()
        await clock.advance(5.0)
        await until(lambda: len(sub.payloads("victron/grid/Ac/L1/Power")) == 2)
        await until(lambda: len(sub.payloads("victron/grid/power")) == 3)
        assert sub.payloads("victron/grid/Ac/L1/Power")[-1] == b'{"value": null}'
        assert sub.payloads("victron/grid/power")[-1] == b""

        # a late subscriber gets exactly the retained exports, flagged as retained
        async with mosquitto_sub(mosquitto.port, "victron/#") as late:
            # retained messages come with the subscription, before the marker it waited for
            assert sorted(late.messages) == [
                (True, "victron/battery/soc", b"87.0"),
                (True, "victron/battery/voltage", b"12.9"),
            ]
        tg.cancel_scope.cancel()


async def test_home_assistant_discovery_through_the_daemon(bus_address, mosquitto):
    text = f"""
schema_version = 1
[general]
log_console = false
[mqtt]
enabled = true
host = "127.0.0.1"
port = {mosquitto.port}
topic_prefix = "venus-ems"
[mqtt_exporter]
enabled = true
ha_discovery = true
[[mqtt_exporter.exports]]
service = "com.victronenergy.system"
path = "/Dc/Battery/Soc"
topic = "victron/soc"
payload = "json"
[[mqtt_exporter.exports]]
service = "com.victronenergy.grid"
prefix = "/Ac"
topic = "victron/grid*"
"""
    config, _ = parse_config(text)
    soc_cfg = "homeassistant/sensor/venus-ems/victron_soc/config"
    power_cfg = "homeassistant/sensor/venus-ems/victron_grid_Ac_Power/config"
    energy_cfg = "homeassistant/sensor/venus-ems/victron_grid_Ac_Energy_Forward/config"
    async with (
        system(bus_address), grid(bus_address),
        mosquitto_sub(mosquitto.port, "homeassistant/#", "victron/#", "venus-ems/$SYS/#") as sub,
        anyio.create_task_group() as tg,
    ):  # fmt: skip
        await tg.start(
            lambda task_status: run_daemon(config, bus_address=bus_address, task_status=task_status)
        )
        await until(lambda: {soc_cfg, power_cfg, energy_cfg} <= sub.topics(), timeout=10)
        soc = json.loads(sub.payloads(soc_cfg)[0])
        assert soc["state_topic"] == "victron/soc"
        assert soc["unit_of_measurement"] == "%"
        assert soc["device_class"] == "battery"
        assert soc["state_class"] == "measurement"
        assert soc["value_template"] == "{{ value_json.value }}"
        assert soc["availability_topic"] == "venus-ems/$SYS/Status"
        energy = json.loads(sub.payloads(energy_cfg)[0])
        assert (energy["unit_of_measurement"], energy["device_class"]) == ("kWh", "energy")
        assert energy["state_class"] == "total_increasing"
        assert energy["device"]["identifiers"] == ["venus-ems_grid"]
        power = json.loads(sub.payloads(power_cfg)[0])
        assert (power["unit_of_measurement"], power["device_class"]) == ("W", "power")
        await until(lambda: sub.payloads("victron/soc") == [b'{"value": 87.0}'])
        await until(lambda: b"Online" in sub.payloads("venus-ems/$SYS/Status"))
        configs = [t for t in sub.topics() if t.startswith("homeassistant/sensor/")]
        assert all(len(sub.payloads(t)) == 1 for t in configs)  # announced once each
        # Home Assistant restarts: everything is announced again
        await anyio.run_process(
            ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(mosquitto.port),
             "-t", "homeassistant/status", "-m", "online"]
        )  # fmt: skip
        await until(lambda: all(len(sub.payloads(t)) == 2 for t in configs))
        # configs are retained for a Home Assistant that connects later
        async with mosquitto_sub(mosquitto.port, "homeassistant/sensor/#") as late:
            await until(lambda: late.topics() >= set(configs))
            assert all(retain for retain, _, _ in late.messages)
        tg.cancel_scope.cancel()
