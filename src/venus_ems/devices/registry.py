"""The driver registry: the ``driver`` a config names -> the function that opens such a device.

Features open their devices here and nowhere else, so they never import a driver family, and a
new driver is its module under ``devices/`` plus one line in :data:`DRIVERS`. Entries are lazy
``"module:function"`` paths: only the drivers a config uses are imported (start-up time and
memory on a GX). Every opener has the signature of :class:`Opener`; what the device it returns
can do is told by the protocols of ``devices.base`` it implements (``isinstance`` checks them).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Protocol

from ..errors import ConfigError

if TYPE_CHECKING:  # the config validation imports this module: keep it light
    import aiohttp

    from ..clock import Clock
    from .base import Connection, Device

__all__ = ["DEFAULT_DRIVER", "DRIVERS", "Opener", "load_opener", "open_device"]

DRIVERS: Mapping[str, str] = MappingProxyType(
    {
        "blueprint": "venus_ems.devices.blueprint:open_device",
        "opendtu": "venus_ems.devices.opendtu:open_device",
        "shelly": "venus_ems.devices.shelly:open_device",
    }
)
"""Driver name (as written in the config) -> ``"module:function"`` of its opener."""

DEFAULT_DRIVER = "shelly"
"""The driver of a config that names none (configs written before drivers were selectable)."""


class Opener(Protocol):
    """Opens one device: detects it, checks it fits ``conn`` and returns its driver object.

    Raises DeviceError subclasses when the device cannot be reached or understood (the caller
    retries) and ConfigError when it can never work as configured (wrong model, unknown option).
    """

    async def __call__(
        self, session: aiohttp.ClientSession, conn: Connection, *, clock: Clock
    ) -> Device:
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


async def open_device(
    driver: str, session: aiohttp.ClientSession, conn: Connection, *, clock: Clock
) -> Device:
    """Open the device at ``conn`` with ``driver``; DeviceError or ConfigError (see Opener)."""
    return await load_opener(driver)(session, conn, clock=clock)
