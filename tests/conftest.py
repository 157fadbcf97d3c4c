"""Shared fixtures: a real dbus-daemon per test, anyio on asyncio."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from venus_ems.venus.daemon import PrivateBus


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


def system_python() -> str | None:
    """Debian's python3 with python3-dbus (velib's library), if installed."""
    for exe in ("/usr/bin/python3",):
        if os.path.exists(exe):
            return exe
    return None
