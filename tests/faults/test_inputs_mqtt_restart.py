"""Fault row "MQTT broker restart": reconnect, and everything retained is published again.

mosquitto runs without persistence here, so a restart loses every retained message: feature
states, tunables, unchanged exports, Home Assistant discovery and the service-message rings
must all come back from venus-ems itself.
"""

from __future__ import annotations

import json

import anyio
import pytest
from inputs_faults_support import (
    SETTINGS,
    daemon_config,
    mqtt_toml,
    publish_many,
    recording,
    retained_snapshot,
    retained_when,
    running,
)

from broker import free_port
from venus_ems.runtime.config import MqttConfig
from venus_ems.runtime.mqtt import MqttLink
from venus_ems.runtime.mqtt import link as link_module
from waiting import until

pytestmark = pytest.mark.anyio

SERIAL_CONFIG = "homeassistant/sensor/venus-ems/victron_serial/config"


def config(port: int):
    return daemon_config(
        mqtt_toml(port)
        + """
[[temperature]]
name = "fridge"
enabled = true
topic = "sensors/fridge/t"
[ess_control]
enabled = true
[mqtt_exporter]
enabled = true
ha_discovery = true
rate_limit_s = 0.0
[[mqtt_exporter.exports]]
service = "com.victronenergy.system"
path = "/Serial"
topic = "victron/serial"
"""
    )


def state_topics(retained: dict[str, bytes]) -> dict[str, bytes]:
    """Retained topics whose payload does not change by itself while the site runs."""
    return {
        t: p
        for t, p in retained.items()
        if t.startswith(("venus-ems/ess_control/", "homeassistant/", "victron/"))
        or t.endswith("ServiceMessages")
        or t == "venus-ems/$SYS/Status"
    }


def complete(retained: dict[str, bytes]) -> bool:
    want = {
        "venus-ems/$SYS/Status",
        "venus-ems/features/ess_control",
        "venus-ems/features/temperature_fridge",
        "venus-ems/features/mqtt_exporter",
        "venus-ems/ess_control/target_w",
        "venus-ems/temperature_fridge/ServiceMessages",
        SERIAL_CONFIG,
        "victron/serial",
    }
    return want <= set(retained) and retained["venus-ems/$SYS/Status"] == b"Online"


async def test_after_a_broker_restart_every_retained_message_is_back(bus_address, mosquitto):
    async with running(bus_address, config(mosquitto.port)) as site:
        link = site.probe.link
        await site.until(lambda: link.connected)
        await publish_many(mosquitto.port, [("sensors/fridge/t", b"oops")])  # a ring message
        before = await retained_when(mosquitto.port, "#", complete)
        assert before["victron/serial"] == b"c0619ab00001"
        assert json.loads(before[SERIAL_CONFIG])["state_topic"] == "victron/serial"
        assert "oops" in before["venus-ems/temperature_fridge/ServiceMessages"].decode()

        mosquitto.stop()  # persistence is off: every retained message is gone with it
        await site.until(lambda: not link.connected)
        # a tunable changes while the broker is away: its new value is what comes back
        code = await site.mon.set_value(SETTINGS, "/Settings/VenusEms/EssControl/TargetW", 40.0)
        assert code == 0
        await site.until(lambda: site.features["ess_control"].tunables.values["target_w"] == 40.0)
        mosquitto.start()
        assert await retained_snapshot(mosquitto.port) == {}
        await site.until(lambda: link.connected)
        after = await retained_when(
            mosquitto.port, "#", lambda r: complete(r) and set(r) >= set(before)
        )
        assert link.connections == 2
        expected = state_topics(before)
        expected["venus-ems/ess_control/target_w"] = b"40.0"
        assert state_topics(after) == expected


async def test_retained_state_keeps_only_the_latest_value_events_keep_order(mosquitto, fast_mqtt):
    settings = MqttConfig.model_validate(
        {**fast_mqtt, "host": mosquitto.host, "port": mosquitto.port, "queue_size": 3}
    )
    link = MqttLink(settings)
    for i in range(5):
        link.publish("state/a", str(i), retain=True)
        link.publish("event/a", str(i))  # the queue holds 3: the two oldest are dropped
    link.publish("state/b", "x", retain=True, qos=1)
    assert link.retained_topics == 2
    assert link.dropped == 2
    async with recording(mosquitto.port, "#") as seen, anyio.create_task_group() as tg:
        await tg.start(link.run)
        await until(lambda: len(seen) >= 1 + 2 + 3)  # Online, 2 states, 3 events
        tg.cancel_scope.cancel()
    events = [p for t, p in seen if t == "event/a"]
    states = [(t, p) for t, p in seen if t.startswith("state/")]
    assert events == [b"2", b"3", b"4"]
    assert states == [("state/a", b"4"), ("state/b", b"x")]  # the latest value, once


async def test_a_full_retained_store_still_sends_new_topics_once(tmp_path, fast_mqtt, monkeypatch):
    monkeypatch.setattr(link_module, "MAX_RETAINED_TOPICS", 2)
    settings = MqttConfig.model_validate({**fast_mqtt, "port": free_port()})
    link = MqttLink(settings)
    for topic in ("s/1", "s/2", "s/3"):
        link.publish(topic, "v", retain=True)
    link.publish("s/1", "newer", retain=True)  # a kept topic is still updated
    assert link.retained_topics == 2
    assert [m.topic for m in link._outbox] == ["s/3"]
    assert link._retained["s/1"].payload == b"newer"
