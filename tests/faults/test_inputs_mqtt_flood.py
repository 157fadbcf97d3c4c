"""Fault row "bad MQTT payloads on every subscribed topic": ignored, one rate-limited log line.

The daemon runs on a simulated GX with every feature that subscribes to MQTT; a client floods
every topic the daemon subscribes to with hostile payloads. Nothing may change, no feature may
fail, and the log gets one line per source and minute, without a traceback.
"""

from __future__ import annotations

import logging
from collections import Counter

import anyio
import pytest
from inputs_faults_support import (
    SETTINGS,
    daemon_config,
    mqtt_toml,
    publish_many,
    retained_snapshot,
    retained_when,
    running,
)

from venus_ems.runtime.mqtt import topic_matches
from waiting import until

pytestmark = pytest.mark.anyio

FRIDGE = "com.victronenergy.temperature.venusems_fridge"
ROOM = "com.victronenergy.temperature.venusems_room"
ESS = "/Settings/VenusEms/EssControl/"

BAD_PAYLOADS = [
    b"1_0",
    "\uff12\uff11".encode(),
    "21\u00a0".encode(),
    b"nan",
    b"-Infinity",
    b"1e400",
    b"1" * 400,
    b"\xff\xfe",
    b"",
    b"-99999",
    b'{"value": [1, 2]}',
    b'{"t": NaN, "h": 1e999}',
    b"[" * 100_000,
    b'{"t": ' * 20_000,
    b'{"t": 1' + b"0" * 5000 + b"}",
    b'"' + b"x" * 100 + b'"',
]
HUGE = b"7" * 300_000  # sent once per topic


def config(port: int):
    return daemon_config(
        mqtt_toml(port)
        + """
[[temperature]]
name = "fridge"
enabled = true
topic = "sensors/fridge/t"
[[temperature]]
name = "room"
enabled = true
topic = "sensors/room"
payload = "json"
json_field = "t"
humidity_json_field = "h"
[ess_control]
enabled = true
[output_limiter]
enabled = true
limit_w = 9000.0
[mqtt_exporter]
enabled = true
ha_discovery = true
[[mqtt_exporter.exports]]
service = "com.victronenergy.system"
path = "/Serial"
topic = "victron/serial"
"""
    )


def concrete(topic_filter: str) -> list[str]:
    """Topics that match a subscription filter: each '+' as a known name and as strangers."""
    if "+" not in topic_filter and "#" not in topic_filter:
        return [topic_filter]
    base = topic_filter.replace("/#", "/x").replace("#", "x")
    names = [
        "target_w",
        "grid_target",
        "limit_w",
        "soc_target_pct",
        "nonsense",
        "Ünïcode",
        "y" * 300,
    ]
    return [base.replace("+", name) for name in names]


def tunable_state(retained: dict[str, bytes]) -> dict[str, bytes]:
    """The retained values of ESS control's and the output limiter's tunables."""
    return {
        topic: payload
        for topic, payload in retained.items()
        if topic.split("/")[1] in ("ess_control", "output_limiter")
        and not topic.endswith("ServiceMessages")
    }


def complaint_lines(records: list[logging.LogRecord]) -> list[logging.LogRecord]:
    return [r for r in records if r.levelno >= logging.WARNING and r.name.startswith("venus_ems")]


async def test_a_flood_of_bad_payloads_changes_nothing_and_logs_once_per_source(
    bus_address, mosquitto, caplog
):
    caplog.set_level(logging.INFO)
    async with running(bus_address, config(mosquitto.port)) as site:
        link = site.probe.link
        await site.until(lambda: link.connected)
        await publish_many(
            mosquitto.port, [("sensors/fridge/t", b"4.0"), ("sensors/room", b'{"t": 21, "h": 40}')]
        )
        await site.until(lambda: site.mon.get(FRIDGE, "/Temperature") == 4.0)
        await site.until(lambda: site.mon.get(ROOM, "/Humidity") == 40.0)
        await site.until(lambda: site.status("/Features/ess_control/State") == "running")
        filters = sorted(link._subs)
        assert len(filters) >= 5, filters  # two sensors, two set-topic filters, HA's birth topic
        topics = [t for f in filters for t in concrete(f)]
        assert all(any(topic_matches(f, t) for f in filters) for t in topics)
        settings_before = {p: site.mon.get(SETTINGS, ESS + p) for p in ("TargetW", "Mode")}
        retained_before = await retained_when(
            mosquitto.port, "venus-ems/+/+", lambda r: len(tunable_state(r)) == 8 + 1
        )
        changes: list[tuple[str, str, object]] = []
        sub = site.mon.subscribe([FRIDGE, ROOM])

        async def record() -> None:
            async for batch in sub:
                changes.extend((s, p, v) for (s, p), v in batch.items())

        messages = [(t, p) for _ in range(6) for t in topics for p in BAD_PAYLOADS]
        messages += [(t, HUGE) for t in topics]
        caplog.clear()
        async with anyio.create_task_group() as tg:
            tg.start_soon(record)
            await publish_many(mosquitto.port, messages)
            # a valid reading after the flood: once it is on D-Bus every bad one was handled
            await publish_many(mosquitto.port, [("sensors/fridge/t", b"5.5")])
            await site.until(lambda: site.mon.get(FRIDGE, "/Temperature") == 5.5)
            await until(lambda: (FRIDGE, "/Temperature", 5.5) in changes)
            site.mon.unsubscribe(sub)
        lines = complaint_lines(caplog.records)

        # nothing changed but the valid reading; no feature failed or restarted
        assert [(s, p, v) for s, p, v in changes if p == "/Temperature"] == [
            (FRIDGE, "/Temperature", 5.5)
        ]
        assert site.mon.get(ROOM, "/Temperature") == 21.0
        assert site.mon.get(ROOM, "/Humidity") == 40.0
        assert {p: site.mon.get(SETTINGS, ESS + p) for p in settings_before} == settings_before
        for name in ("ess_control", "output_limiter", "temperature_fridge", "mqtt_exporter"):
            assert site.status(f"/Features/{name}/State") == "running", name
            assert site.status(f"/Features/{name}/Restarts") == 0, name
        retained_after = await retained_snapshot(mosquitto.port, "venus-ems/+/+")
        assert tunable_state(retained_after) == tunable_state(retained_before)

        # one line per source: per sensor, per known set topic, one for unknown set topics
        assert len(messages) > 1500
        assert all(r.exc_info is None and "Traceback" not in r.getMessage() for r in lines)
        assert all("\n" not in r.getMessage() and len(r.getMessage()) < 400 for r in lines)
        per_feature = Counter(r.getMessage().split("]", 1)[0] for r in lines)
        assert per_feature == {
            "[temperature_fridge": 1,
            "[temperature_room": 1,
            "[ess_control": 3 + 1,  # target_w, grid_target, soc_target_pct; every other name
            "[output_limiter": 1 + 1,  # limit_w; every other name
        }, [r.getMessage() for r in lines]

        # a minute later each source reports again, counting what it held back
        await site.run(61)
        caplog.clear()
        await publish_many(mosquitto.port, [(t, b"1_0") for t in topics])
        await publish_many(mosquitto.port, [("sensors/fridge/t", b"6.5")])
        await site.until(lambda: site.mon.get(FRIDGE, "/Temperature") == 6.5)
        again = complaint_lines(caplog.records)
        assert Counter(r.getMessage().split("]", 1)[0] for r in again) == per_feature
        assert all("more rejected since the last report" in r.getMessage() for r in again)
