"""Shared fixtures: a real dbus-daemon per test, anyio on asyncio."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from broker import Broker
from venus_ems.runtime.config import MqttConfig
from venus_ems.venus.daemon import PrivateBus

VECTORS = Path(
    os.environ.get("VENUS_EMS_VECTORS", Path(__file__).resolve().parents[2] / "shared" / "vectors")
)
"""Real device payloads (../shared/vectors, or $VENUS_EMS_VECTORS)."""

IN_CI = bool(os.environ.get("CI") or os.environ.get("VENUS_EMS_CI"))
"""Under CI a missing vector fails the run; elsewhere the tests that need one are skipped."""


def _missing(what: str) -> str:
    return f"{what} not available at {VECTORS} (set VENUS_EMS_VECTORS to the vectors folder)"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under CI, no vectors folder at all ends the run before any test (exit code 4)."""
    if IN_CI and not VECTORS.is_dir():
        raise pytest.UsageError(_missing("the shared vectors") + "; CI needs them")


def pytest_report_header(config: pytest.Config) -> str:
    """Say where the vectors come from, so a skipped or failed vector test is explained."""
    found = len(list(VECTORS.glob("*.json"))) if VECTORS.is_dir() else 0
    return f"vectors: {VECTORS} ({found} JSON files{', required (CI)' if IN_CI else ''})"


@pytest.fixture
def vector():
    """Load a device payload from the shared vectors; when it is absent, skip (fail under CI)."""

    def load(name: str):
        path = VECTORS / name
        if not path.is_file():
            if IN_CI:
                pytest.fail(_missing(f"vector {name}") + "; CI needs it")
            pytest.skip(_missing(f"vector {name}"))
        return json.loads(path.read_text(encoding="utf-8"))

    return load


@pytest.fixture
def vector_text():
    """Read a text vector (e.g. a Markdown file of known answers); skip when absent."""

    def load(name: str) -> str:
        path = VECTORS / name
        if not path.is_file():
            if IN_CI:
                pytest.fail(_missing(f"vector {name}") + "; CI needs it")
            pytest.skip(_missing(f"vector {name}"))
        return path.read_text(encoding="utf-8")

    return load


# CI runs the property tests derandomized (the same examples every run, so a landing never
# depends on luck) and without the timing health checks (a loaded CI machine is slow, not
# wrong); locally they explore new examples each run.
settings.register_profile(
    "ci", derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
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
