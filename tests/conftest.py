"""Shared fixtures: a real dbus-daemon per test, anyio on asyncio."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from broker import Broker
from venus_ems.runtime.config import MqttConfig
from venus_ems.venus.daemon import PrivateBus

VECTORS = Path(
    os.environ.get("VENUS_EMS_VECTORS", Path(__file__).resolve().parents[2] / "shared" / "vectors")
)
"""Real device payloads (../shared/vectors); tests that need them skip when they are absent."""


@pytest.fixture
def vector():
    """Load a device payload from the shared vectors; skip the test when they are absent."""

    def load(name: str):
        path = VECTORS / name
        if not path.is_file():
            pytest.skip(f"vector {name} not available at {VECTORS}")
        return json.loads(path.read_text(encoding="utf-8"))

    return load


@pytest.fixture
def vector_text():
    """Read a text vector (e.g. a Markdown file of known answers); skip when absent."""

    def load(name: str) -> str:
        path = VECTORS / name
        if not path.is_file():
            pytest.skip(f"vector {name} not available at {VECTORS}")
        return path.read_text(encoding="utf-8")

    return load


# CI runs the property tests derandomized (the same examples every run, so a landing never
# depends on luck); locally they explore new examples each run.
settings.register_profile("ci", derandomize=True)
if os.environ.get("VENUS_EMS_CI"):
    settings.load_profile("ci")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def private_bus(tmp_path) -> Iterator[PrivateBus]:
    """A private dbus-daemon (the real Debian binary) for one test."""
    with PrivateBus(tmp_path) as bus:
        yield bus


@pytest.fixture
def bus_address(private_bus) -> str:
    """Address of the test's private dbus-daemon."""
    return private_bus.address


@pytest.fixture
def session_bus(bus_address, monkeypatch) -> str:
    """Like bus_address, also exported as DBUS_SESSION_BUS_ADDRESS."""
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", bus_address)
    return bus_address


@pytest.fixture
def mosquitto(tmp_path) -> Iterator[Broker]:
    """A real mosquitto on a free loopback port, anonymous access."""
    with Broker(tmp_path) as b:
        yield b


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
    """MQTT settings for the test broker."""
    return MqttConfig.model_validate({**fast_mqtt, "host": mosquitto.host, "port": mosquitto.port})


def system_python() -> str | None:
    """Debian's python3 with python3-dbus (velib's library), if installed."""
    for exe in ("/usr/bin/python3",):
        if os.path.exists(exe):
            return exe
    return None
