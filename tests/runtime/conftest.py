"""Fixtures for runtime tests: a real mosquitto (plain, TLS, with passwords) and MQTT settings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from broker import Broker, TlsFiles, make_tls_files, openssl_available
from venus_ems.runtime.config import MqttConfig
from venus_ems.runtime.config.secrets import forget_secrets


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Broker]:
    """A plain mosquitto on a free loopback port, anonymous access."""
    with Broker(tmp_path) as b:
        yield b


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A test CA and a broker certificate for localhost (needs the openssl CLI)."""
    if not openssl_available():
        pytest.skip("openssl CLI not installed (apt-get install openssl)")
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def fast_mqtt() -> dict[str, object]:
    """MqttConfig keys that make reconnects quick in tests."""
    return {
        "enabled": True,
        "reconnect_initial_s": 0.05,
        "reconnect_max_s": 0.2,
        "connect_timeout_s": 3.0,
        "keepalive_s": 5,
    }


@pytest.fixture
def mqtt_settings(mosquitto: Broker, fast_mqtt: dict[str, object]) -> MqttConfig:
    """Settings for the plain broker."""
    return MqttConfig.model_validate({**fast_mqtt, "host": mosquitto.host, "port": mosquitto.port})


@pytest.fixture(autouse=True)
def _fresh_secrets() -> Iterator[None]:
    """Each test starts with no registered secrets."""
    forget_secrets()
    yield
    forget_secrets()
