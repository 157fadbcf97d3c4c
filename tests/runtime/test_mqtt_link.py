"""MqttLink against a real mosquitto: Online/Offline, last will, reconnect, queue, handlers."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from mqtt_helpers import observe, retained, send

from broker import Broker, free_port
from venus_ems.callbacks import Owner
from venus_ems.clock import SteppedClock
from venus_ems.runtime.config import MqttConfig
from venus_ems.runtime.mqtt import MqttLink, MqttMessage
from waiting import until

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup

pytestmark = pytest.mark.anyio

STATUS = "venus-ems/$SYS/Status"


async def test_online_retained_and_subscription_roundtrip(mosquitto, mqtt_settings):
    link = MqttLink(mqtt_settings)
    got: list[MqttMessage] = []
    async with anyio.create_task_group() as tg:
        await tg.start(link.run)
        await link.subscribe("cmd/+/set", got.append)
        with anyio.fail_after(5):
            await link.wait_connected()
        assert await retained(mosquitto.port, STATUS) == b"Online"
        await send(mosquitto.port, "cmd/heater/set", b"on")
        await send(mosquitto.port, "cmd/heater/other", b"ignored")
        with anyio.fail_after(5):
            while not got:
                await anyio.sleep(0.01)
        tg.cancel_scope.cancel()
    assert [(m.topic, m.payload) for m in got] == [("cmd/heater/set", b"on")]
    assert link.connections == 1


async def test_orderly_stop_publishes_offline(mosquitto, mqtt_settings):
    link = MqttLink(mqtt_settings)
    async with anyio.create_task_group() as tg:
        await tg.start(link.run)
        with anyio.fail_after(5):
            await link.wait_connected()
        tg.cancel_scope.cancel()
    assert not link.connected
    assert await retained(mosquitto.port, STATUS) == b"Offline"
    # a clean DISCONNECT: the broker did not have to publish the will
    log = mosquitto.log_text()
    assert "Client venus_ems disconnected." in log, log
    assert "Client venus_ems closed its connection" not in log


async def test_last_will_offline_when_process_dies(mosquitto):
    child = Path(__file__).with_name("mqtt_child.py")
    proc = subprocess.Popen(
        [sys.executable, str(child), str(mosquitto.port)], stdout=subprocess.PIPE
    )
    try:
        async with observe(mosquitto.port, STATUS) as rec:
            assert proc.stdout is not None
            line = await anyio.to_thread.run_sync(proc.stdout.readline)
            assert line.strip() == b"up"
            await rec.wait_for(STATUS, b"Online")
            proc.kill()  # SIGKILL: no chance to say goodbye
            await rec.wait_for(STATUS, b"Offline")
    finally:
        proc.kill()
        proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()
    assert await retained(mosquitto.port, STATUS) == b"Offline"


async def test_broker_restart_restores_online_and_subscriptions(mosquitto, mqtt_settings):
    link = MqttLink(mqtt_settings)
    got: list[bytes] = []
    async with anyio.create_task_group() as tg:
        await tg.start(link.run)
        await link.subscribe("house/temp", lambda m: got.append(m.payload))
        with anyio.fail_after(5):
            await link.wait_connected()
        mosquitto.stop()  # retained Online is gone with it (persistence off)
        with anyio.fail_after(5):
            while link.connected:
                await anyio.sleep(0.01)
        link.publish("venus-ems/test/while_down", "queued", qos=1, retain=True)
        mosquitto.start()
        with anyio.fail_after(10):
            await link.wait_connected()
        assert await retained(mosquitto.port, STATUS) == b"Online"
        assert await retained(mosquitto.port, "venus-ems/test/while_down") == b"queued"
        await send(mosquitto.port, "house/temp", b"21.5")
        with anyio.fail_after(5):
            while not got:
                await anyio.sleep(0.01)
        tg.cancel_scope.cancel()
    assert got == [b"21.5"]
    assert link.connections == 2
    assert link.last_error is not None
    assert "lost" in link.last_error


async def test_start_does_not_wait_for_a_dead_broker(tmp_path, fast_mqtt):
    port = free_port()
    settings = MqttConfig.model_validate({**fast_mqtt, "host": "127.0.0.1", "port": port})
    link = MqttLink(settings)
    async with anyio.create_task_group() as tg:
        with anyio.fail_after(5):
            await tg.start(link.run)
        assert not link.connected
        assert link.last_error is not None
        assert "cannot connect" in link.last_error
        for i in range(5):
            link.publish(f"venus-ems/q/{i}", str(i), qos=1)
        with Broker(tmp_path, port=port) as b:
            async with observe(b.port, "venus-ems/q/#") as rec:
                with anyio.fail_after(10):
                    await link.wait_connected()
                await rec.wait_for("venus-ems/q/4", b"4")
            tg.cancel_scope.cancel()
    assert [t for t, _, _ in rec.messages] == [f"venus-ems/q/{i}" for i in range(5)]


async def test_start_is_bounded_when_the_broker_never_answers(fast_mqtt):
    # a listening socket nobody serves: TCP connects, CONNACK never comes
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        port = silent.getsockname()[1]
        settings = MqttConfig.model_validate(
            {**fast_mqtt, "host": "127.0.0.1", "port": port, "connect_timeout_s": 30.0}
        )
        link = MqttLink(settings)
        async with anyio.create_task_group() as tg:
            with anyio.fail_after(6):  # the link gives up waiting after 2 s, not 30
                await tg.start(link.run)
            assert not link.connected
            link.publish("venus-ems/x", "kept")  # callers are never blocked
            tg.cancel_scope.cancel()
    assert len(link._outbox) == 1


async def test_queue_is_bounded_and_drops_oldest(fast_mqtt):
    settings = MqttConfig.model_validate(
        {**fast_mqtt, "host": "127.0.0.1", "port": free_port(), "queue_size": 3}
    )
    link = MqttLink(settings)
    for i in range(5):
        link.publish("venus-ems/x", str(i))
    assert link.dropped == 2
    assert [m.payload for m in link._outbox] == [b"2", b"3", b"4"]


async def test_publish_rejects_bad_topics_and_values(mqtt_settings):
    link = MqttLink(mqtt_settings)
    for topic in ("a/+/b", "a/#", "", "/a", "$SYS/x"):
        with pytest.raises(ValueError, match="topic"):
            link.publish(topic, "1")
    with pytest.raises(ValueError, match="qos"):
        link.publish("a", "1", qos=3)
    with pytest.raises(TypeError, match="bool"):
        link.publish("a", True)
    settings = mqtt_settings.model_copy(update={"queue_size": 1})
    full = MqttLink(settings)
    full.publish("a", "kept")
    with pytest.raises(TypeError, match="bool"):
        full.publish("a", False)  # a rejected call must not push the queued message out
    assert [m.payload for m in full._outbox] == [b"kept"]
    assert link.dropped == 0
    assert not link._outbox


async def test_a_handler_bug_fails_the_feature_that_subscribed_it(mosquitto, mqtt_settings):
    """The owner (a feature run) gets the exception and ends; the link and others go on."""
    link = MqttLink(mqtt_settings)
    seen: list[bytes] = []
    calls: list[bytes] = []
    owner = Owner("feature")

    def broken(msg: MqttMessage) -> None:
        calls.append(msg.payload)
        raise RuntimeError(f"boom on {msg.text()}")

    async def good(msg: MqttMessage) -> None:
        await anyio.sleep(0)
        seen.append(msg.payload)

    async def feature(*, task_status):
        with owner.running():
            await link.subscribe("in/#", broken)
            task_status.started()
            await anyio.sleep_forever()

    async with anyio.create_task_group() as tg:
        await tg.start(link.run)
        await link.subscribe("in/#", good)  # the test's own, not owned by the feature
        await tg.start(feature)
        with anyio.fail_after(5):
            await link.wait_connected()
        await send(mosquitto.port, "in/a", b"1")
        await until(lambda: owner.ended)  # the bug ended the feature's run
        await send(mosquitto.port, "in/b", b"2")
        await until(lambda: len(seen) == 2)
        assert link.connected
        tg.cancel_scope.cancel()
    assert isinstance(owner.error, RuntimeError)
    assert str(owner.error) == "boom on 1"
    assert calls == [b"1"]  # the ended run's handler is not called again
    assert seen == [b"1", b"2"]
    assert link.connections == 1


async def test_a_handler_bug_outside_any_feature_ends_the_link(mosquitto, mqtt_settings):
    """A handler nobody owns is part of the link: its bug is not swallowed, run() raises it."""
    link = MqttLink(mqtt_settings)

    def broken(msg: MqttMessage) -> None:
        raise RuntimeError("link bug")

    async def run():
        async with anyio.create_task_group() as tg:
            await tg.start(link.run)
            await link.subscribe("in/#", broken)
            with anyio.fail_after(5):
                await link.wait_connected()
            await send(mosquitto.port, "in/a", b"1")
            with anyio.fail_after(5):
                await anyio.sleep_forever()

    with pytest.raises(ExceptionGroup) as caught:
        await run()
    assert caught.group_contains(RuntimeError, match="link bug", depth=None)
    assert await retained(mosquitto.port, STATUS) == b"Offline"  # said goodbye on the way out


async def test_service_message_ring_is_retained_and_bounded(mosquitto, fast_mqtt):
    settings = MqttConfig.model_validate(
        {
            **fast_mqtt,
            "host": mosquitto.host,
            "port": mosquitto.port,
            "service_messages": 3,
            "topic_prefix": "site/ems",
            "username": "u",
            "password": "hunter2-secret",
        }
    )
    clock = SteppedClock()
    link = MqttLink(settings, clock=clock)
    for i in range(5):
        link.service_message("grid_meter", "warning", f"poll failed #{i}")
        await clock.advance(1)
    link.service_message("ess_control", "info", "password was hunter2-secret")
    topic = "site/ems/grid_meter/ServiceMessages"
    async with anyio.create_task_group() as tg:
        await tg.start(link.run)
        with anyio.fail_after(5):
            await link.wait_connected()
        ring = json.loads(await retained(mosquitto.port, topic))
        other = json.loads(await retained(mosquitto.port, "site/ems/ess_control/ServiceMessages"))
        tg.cancel_scope.cancel()
    assert [e["text"] for e in ring] == ["poll failed #2", "poll failed #3", "poll failed #4"]
    assert ring[-1]["level"] == "warning"
    assert ring[-1]["time"] == "2026-06-21T00:00:04+00:00"
    assert other[0]["text"] == "password was ***"
    with pytest.raises(ValueError, match="level"):
        link.service_message("grid_meter", "loud", "x")
    with pytest.raises(ValueError, match="one topic level"):
        link.service_message("a/b", "info", "x")


async def test_wrong_credentials_are_an_auth_error(tmp_path, fast_mqtt, caplog):
    caplog.set_level(logging.DEBUG)
    with Broker(tmp_path, users={"ems": "right-password"}) as b:
        base = {**fast_mqtt, "host": b.host, "port": b.port, "username": "ems"}
        bad = MqttLink(MqttConfig.model_validate({**base, "password": "wrong-password"}))
        async with anyio.create_task_group() as tg:
            await tg.start(bad.run)
            assert not bad.connected
            tg.cancel_scope.cancel()
        assert bad.last_error is not None
        assert "refused our credentials" in bad.last_error
        assert any(r.levelno == logging.ERROR for r in caplog.records)
        good = MqttLink(MqttConfig.model_validate({**base, "password": "right-password"}))
        async with anyio.create_task_group() as tg:
            await tg.start(good.run)
            with anyio.fail_after(5):
                await good.wait_connected()
            tg.cancel_scope.cancel()
    assert "wrong-password" not in caplog.text
    assert "right-password" not in caplog.text
