"""[surplus] over a real mosquitto: an MQTT-switched consumer, es-ESS request-topic consumers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiomqtt
import anyio
import pytest
from surplus_support import relays, surplus_site
from test_surplus_safety import Crashing

pytestmark = pytest.mark.anyio

P = "es-ESS/SolarOverheadDistributor"
REQ = f"{P}/Requests"


class Recorder:
    """Messages an independent client saw: (topic, payload, retain)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []

    def payloads(self, topic: str) -> list[bytes]:
        return [p for t, p, _ in self.messages if t == topic]


@asynccontextmanager
async def observe(port: int, topic_filter: str) -> AsyncIterator[Recorder]:
    rec = Recorder()
    async with aiomqtt.Client("127.0.0.1", port) as client:
        await client.subscribe(topic_filter, qos=1)

        async def read() -> None:
            async for msg in client.messages:
                assert isinstance(msg.payload, bytes)
                rec.messages.append((str(msg.topic), msg.payload, msg.retain))

        async with anyio.create_task_group() as tg:
            tg.start_soon(read)
            yield rec
            tg.cancel_scope.cancel()


async def device(port: int, *, obey: bool = True) -> None:
    """A plug on MQTT: 'dev/cmd' on/off -> 'dev/state' (when ``obey``), power on 'dev/power'."""
    async with aiomqtt.Client("127.0.0.1", port) as client:
        await client.subscribe("dev/cmd", qos=1)
        await client.publish("dev/state", b"off", qos=1, retain=True)
        async for msg in client.messages:
            on = msg.payload == b"on"
            if obey:
                await client.publish("dev/state", b"on" if on else b"off", qos=1, retain=True)
                await client.publish("dev/power", b"300" if on else b"0", qos=1)


async def run_real(site, seconds: float) -> None:
    """Simulated seconds with real time in between (MQTT runs on the loopback in real time)."""
    for _ in range(round(seconds)):
        await site.run(1)
        await anyio.sleep(0.04)


async def until_real(site, predicate, seconds: float) -> float:
    for i in range(round(seconds)):
        if predicate():
            return float(i)
        await run_real(site, 1)
    assert predicate(), f"not within {seconds} s"
    return seconds


PLUG = {
    "name": "plug",
    "driver": "mqtt",
    "command_topic": "dev/cmd",
    "state_topic": "dev/state",
    "power_topic": "dev/power",
    "power_w": 300.0,
    "priority": 1,
    "min_on_s": 0.0,
    "min_off_s": 0.0,
    "poll_interval_s": 2.0,
}


async def test_mqtt_consumer_is_switched_and_read_back(bus_address, mosquitto):
    async with anyio.create_task_group() as tg:
        tg.start_soon(device, mosquitto.port)
        async with surplus_site(bus_address, mqtt_port=mosquitto.port, extra=[PLUG]) as (
            site,
            feature,
        ):
            await until_real(site, lambda: feature.runners["plug"].on is True, 40)
            assert feature.runners["plug"].draw_w == pytest.approx(300.0)
            assert relays(site)["pool-pump"]  # the others still run
        # stopped: the off command was sent and confirmed by the device's state topic
        async with observe(mosquitto.port, "dev/state") as rec:
            with anyio.fail_after(5):
                while not rec.payloads("dev/state"):
                    await anyio.sleep(0.01)
            assert rec.payloads("dev/state")[-1] == b"off"
        tg.cancel_scope.cancel()


async def test_es_ess_script_gets_allowances_and_bad_requests_change_nothing(
    bus_address, mosquitto
):
    async with (
        surplus_site(bus_address, mqtt_port=mosquitto.port, request_max_age_s=20.0) as (
            site,
            feature,
        ),
        aiomqtt.Client("127.0.0.1", mosquitto.port) as script,
        observe(mosquitto.port, f"{P}/#") as rec,
    ):

        async def request(**fields: str) -> None:
            for key, value in fields.items():
                await script.publish(f"{REQ}/ev/{key}", value.encode(), qos=1)

        await request(
            CustomName="Car (script)", VRMInstanceID="121", IsScriptedConsumer="true",
            IsAutomatic="true", Request="1500", StepSize="250", Minimum="500", Priority="5",
            Consumption="0",
        )  # fmt: skip
        await until_real(site, lambda: any(s.spec.name == "ev" for s in site_board(feature)), 20)

        async def alive(seconds: int) -> None:  # the script's loop: report every 5 s
            for _ in range(seconds // 5):
                await request(IsAutomatic="true", Consumption=f"{max(allowance(rec), 0):g}")
                await run_real(site, 5)

        for _ in range(24):  # min on of the others (30 s) first: then priority 5 goes first
            await alive(5)
            if allowance(rec) >= 500:
                break
        assert allowance(rec) >= 500
        assert allowance(rec) <= 1500
        # the script's consumer is an acload too, at the instance it asked for
        svc = "com.victronenergy.acload.venusems_surplus_ev"
        await run_real(site, 5)
        assert site.mon.get(svc, "/Surplus/Allowance") == pytest.approx(allowance(rec))
        assert site.mon.get(svc, "/DeviceInstance") == 121
        assert site.mon.get(svc, "/CustomName") == "Car (script)"
        await alive(30)  # it reports drawing its allowance: counted like es-ESS did
        assert site.mon.get(svc, "/Surplus/RuntimeTotal") >= 20
        runtime = rec.payloads(f"{REQ}/ev/Energy/runtimeTotal")
        assert runtime
        assert float(runtime[-1]) >= 20
        before = next(s.spec for s in site_board(feature) if s.spec.name == "ev")
        # malformed or foreign input: a clear message, nothing changed
        await script.publish(f"{REQ}/ev/Request", b"lots", qos=1)
        await script.publish(f"{REQ}/ev/Request", b"1e9", qos=1)
        await script.publish(f"{REQ}/ev/Colour", b"blue", qos=1)
        await script.publish(f"{REQ}/pool/Request", b"100", qos=1)  # a configured consumer
        await alive(5)
        after = next(s.spec for s in site_board(feature) if s.spec.name == "ev")
        assert after == before
        assert "es-ESS request rejected" in site.status("/Features/surplus/Message")
        assert feature.mqtt is not None
        assert feature.mqtt.complaints.total >= 4
        # the script dies: its request expires and the allowance drops to 0
        await run_real(site, 30)
        await until_real(site, lambda: allowance(rec) == 0, 20)
        assert allowance(rec) == 0
        assert any(t.startswith(f"{P}/Calculations/") for t, _, _ in rec.messages)


def site_board(feature):
    assert feature.mqtt is not None
    return feature.mqtt.board.consumers()


def allowance(rec) -> float:
    values = rec.payloads(f"{REQ}/ev/Allowance")
    return float(values[-1]) if values else -1.0


async def test_mqtt_consumer_works_again_after_a_crash_restart(bus_address, mosquitto, monkeypatch):
    monkeypatch.setattr("surplus_support.Surplus", Crashing)
    async with anyio.create_task_group() as tg:
        tg.start_soon(device, mosquitto.port)
        async with surplus_site(bus_address, mqtt_port=mosquitto.port, extra=[PLUG]) as (
            site,
            feature,
        ):
            await until_real(site, lambda: feature.runners.get("plug") is not None, 10)
            await until_real(site, lambda: feature.steps > 6, 60)  # crashed once, restarted
            await until_real(site, lambda: feature.runners["plug"].on is True, 60)
            assert feature.runners["plug"].problem is None
        tg.cancel_scope.cancel()
