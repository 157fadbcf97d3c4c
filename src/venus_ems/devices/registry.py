"""The driver registry: the ``driver`` a config names -> the function that opens such a device.

Features open their devices here and nowhere else, so they never import a driver family, and a
new driver is its module under ``devices/`` plus one line in :data:`DRIVERS`. Entries are lazy
``"module:function"`` paths: only the drivers a config uses are imported (start-up time and
memory on a GX). Every opener has the signature of :class:`Opener`; what the device it returns
can do is told by the protocols of ``devices.base`` it implements (``isinstance`` checks them).

The *session* an opener gets is the transport its driver speaks through, owned by the caller
and shared by every device on it: an ``aiohttp.ClientSession`` for HTTP drivers, a pymodbus
client (one per serial port or TCP endpoint) for Modbus drivers (:data:`SESSION_KINDS`).
``open_session(driver, conn)`` builds the right one::

    async with open_session(cfg.driver, conn) as session:
        device = await open_device(cfg.driver, session, conn, clock=clock)
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ..errors import ConfigError

if TYPE_CHECKING:  # the config validation imports this module: keep it light
    from ..clock import Clock
    from .base import Connection, Device

__all__ = [
    "DEFAULT_DRIVER",
    "DRIVERS",
    "SESSION_KINDS",
    "Opener",
    "bus_client",
    "default_steps_w",
    "load_opener",
    "open_device",
    "open_session",
    "session_kind",
]

DRIVERS: Mapping[str, str] = MappingProxyType(
    {
        "blueprint": "venus_ems.devices.blueprint:open_device",
        "heizstab": "venus_ems.devices.heizstab:open_device",
        "http_switch": "venus_ems.devices.http_switch:open_device",
        "opendtu": "venus_ems.devices.opendtu:open_device",
        "shelly": "venus_ems.devices.shelly:open_device",
        "wattpilot": "venus_ems.devices.wattpilot:open_device",
    }
)
"""Driver name (as written in the config) -> ``"module:function"`` of its opener."""

SESSION_KINDS: Mapping[str, Literal["http", "modbus"]] = MappingProxyType({"heizstab": "modbus"})
"""Drivers whose session is not an ``aiohttp.ClientSession`` (the others are ``"http"``)."""

DEFAULT_DRIVER = "shelly"
"""The driver of a config that names none (configs written before drivers were selectable)."""


class Opener(Protocol):
    """Opens one device: detects it, checks it fits ``conn`` and returns its driver object.

    Raises DeviceError subclasses when the device cannot be reached or understood (the caller
    retries) and ConfigError when it can never work as configured (wrong model, unknown option).
    """

    async def __call__(self, session: Any, conn: Connection, *, clock: Clock) -> Device:
        """The opened device, which implements some protocols of ``devices.base``."""
        ...


def load_opener(driver: str) -> Opener:
    """Import the opener of ``driver``; ConfigError if it is unknown or cannot be loaded."""
    target = DRIVERS.get(driver)
    if target is None:
        known = ", ".join(sorted(DRIVERS))
        raise ConfigError(f"unknown device driver {driver!r} (known: {known})")
    module, _, attr = target.partition(":")
    try:
        opener: Opener = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"device driver {driver!r} ({target}) cannot be loaded: {err}") from err
    return opener


async def open_device(driver: str, session: Any, conn: Connection, *, clock: Clock) -> Device:
    """Open the device at ``conn`` with ``driver``; DeviceError or ConfigError (see Opener).

    ``session`` is of the kind :func:`session_kind` names for the driver.
    """
    return await load_opener(driver)(session, conn, clock=clock)


def default_steps_w(driver: str) -> tuple[float, ...]:
    """The power steps (W, from 0) of a stepped-load driver's device; ConfigError if it has none."""
    module = DRIVERS.get(driver, "").partition(":")[0]
    load_opener(driver)  # ConfigError for an unknown driver
    steps = getattr(importlib.import_module(module), "STEPS_W", None)
    if not isinstance(steps, tuple) or not steps:
        raise ConfigError(f"device driver {driver!r} has no fixed power steps")
    return tuple(float(s) for s in steps)


def bus_client(driver: str, conn: Connection) -> Any:
    """A new, unconnected client of the bus ``conn`` for a Modbus driver; the caller closes it.

    ConfigError for a driver that needs no bus client or a malformed connection.
    """
    if session_kind(driver) != "modbus":
        raise ConfigError(f"device driver {driver!r} has no bus client")
    from .modbus import modbus_client  # noqa: PLC0415 - pymodbus only when used

    return modbus_client(conn)


def session_kind(driver: str) -> Literal["http", "modbus"]:
    """What session ``driver`` needs: ``"http"`` (aiohttp) or ``"modbus"`` (pymodbus client)."""
    load_opener(driver)  # ConfigError for an unknown driver
    return SESSION_KINDS.get(driver, "http")


@asynccontextmanager
async def open_session(driver: str, conn: Connection) -> AsyncIterator[Any]:
    """A new session of the kind ``driver`` needs, for the bus ``conn`` names; closed on exit.

    ConfigError for an unknown driver or a malformed Modbus connection. HTTP features usually
    keep one ``aiohttp.ClientSession`` for all their devices instead; a Modbus client is one per
    bus (serial port or TCP endpoint) and may be shared by the devices on it.
    """
    if session_kind(driver) == "modbus":
        from .modbus import modbus_session  # noqa: PLC0415 - pymodbus only when used

        async with modbus_session(conn) as client:
            yield client
    else:
        import aiohttp  # noqa: PLC0415 - the config validation imports this module

        async with aiohttp.ClientSession() as http:
            yield http
