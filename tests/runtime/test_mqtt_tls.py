"""TLS to a real mosquitto: verification on by default, CA option, explicit insecure mode."""

from __future__ import annotations

import logging
import ssl

import anyio
import pytest
from mqtt_helpers import retained

from broker import Broker
from venus_ems.errors import ConfigError
from venus_ems.runtime.config import MqttConfig
from venus_ems.runtime.mqtt import MqttLink, tls_context

pytestmark = pytest.mark.anyio


@pytest.fixture
def tls_broker(tmp_path, tls_files):
    with Broker(tmp_path, tls=tls_files) as b:
        yield b


def _settings(broker, fast_mqtt, **extra) -> MqttConfig:
    return MqttConfig.model_validate(
        {**fast_mqtt, "host": "localhost", "port": broker.port, "tls": True, **extra}
    )


async def _try_connect(link: MqttLink) -> None:
    async with anyio.create_task_group() as tg:
        await tg.start(link.run)
        if link.connected:
            tg.cancel_scope.cancel()
            return
        with anyio.move_on_after(1):
            await link.wait_connected()
        tg.cancel_scope.cancel()


async def test_self_signed_broker_is_rejected_without_its_ca(tls_broker, fast_mqtt):
    link = MqttLink(_settings(tls_broker, fast_mqtt))
    await _try_connect(link)
    assert link.connections == 0
    assert link.last_error is not None
    assert "certificate verify failed" in link.last_error
    assert "ca_file" in link.last_error  # the error says how to fix it


async def test_broker_is_accepted_with_its_ca(tls_broker, tls_files, fast_mqtt, caplog):
    caplog.set_level(logging.WARNING)
    link = MqttLink(_settings(tls_broker, fast_mqtt, ca_file=str(tls_files.ca_cert)))
    await _try_connect(link)
    assert link.connections == 1
    assert not [r for r in caplog.records if "verification is OFF" in r.getMessage()]
    ctx = ssl.create_default_context(cafile=str(tls_files.ca_cert))
    ctx.check_hostname = False  # the observer connects to 127.0.0.1
    payload = await retained(tls_broker.port, "venus-ems/$SYS/Status", tls_context=ctx)
    assert payload == b"Offline"


async def test_hostname_is_checked(tls_broker, tls_files, fast_mqtt):
    # the certificate names localhost; 127.0.0.1 is the same broker under a name it lacks
    settings = _settings(tls_broker, fast_mqtt, ca_file=str(tls_files.ca_cert))
    link = MqttLink(settings.model_copy(update={"host": "127.0.0.1"}))
    await _try_connect(link)
    assert link.connections == 0
    assert link.last_error is not None
    assert "certificate" in link.last_error


async def test_insecure_connects_and_warns(tls_broker, fast_mqtt, caplog):
    caplog.set_level(logging.WARNING)
    link = MqttLink(_settings(tls_broker, fast_mqtt, insecure=True))
    await _try_connect(link)
    assert link.connections == 1
    warnings = [r for r in caplog.records if "verification is OFF" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING


def test_bad_ca_file_is_a_config_error(tmp_path):
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    settings = MqttConfig(enabled=True, tls=True, ca_file=str(bad))
    with pytest.raises(ConfigError, match="ca_file"):
        tls_context(settings)


def test_plain_has_no_context():
    assert tls_context(MqttConfig()) is None
