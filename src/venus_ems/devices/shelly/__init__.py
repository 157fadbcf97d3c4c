"""Shelly drivers: gen1 (HTTP GET, Basic auth) and gen2/gen3/gen4 (JSON-RPC, Digest auth).

:func:`open_shelly` asks ``/shelly`` (never protected) for the generation and model and returns
a :class:`ShellyDevice` implementing ``PhaseMeter`` (EM, 3EM, Pro 3EM, Pro EM, EM gen3),
``PowerMeter`` (Plug, 1PM, Plus 1PM, 1PM Mini, PM Mini) and ``Switch`` (every relay). The
caller owns the ``aiohttp.ClientSession``; every call has a timeout; failures raise the
``DeviceError`` tree, and a device that cannot do what the configuration asks raises
``ConfigError``. Readings are stamped with ``clock.monotonic()`` when the answer arrived.
:func:`open_device` is the registry's entry (driver ``"shelly"``): the same, from a
``Connection`` whose only option is ``generation``.
"""

from __future__ import annotations

from typing import Literal

import aiohttp

from ...clock import Clock
from ...errors import ConfigError, DeviceProtocolError
from ..base import Connection
from ..http import decode_json, http_request
from .device import ShellyDevice
from .fields import ShellyInfo, parse_info
from .gen1 import Gen1Shelly
from .gen2 import Gen2Shelly, Inventory
from .rpc import ShellyRpcError

__all__ = [
    "Gen1Shelly",
    "Gen2Shelly",
    "Inventory",
    "ShellyDevice",
    "ShellyInfo",
    "ShellyRpcError",
    "base_url",
    "open_device",
    "open_shelly",
    "probe",
]

_GENERATIONS: dict[object, Literal["auto", 1, 2]] = {"auto": "auto", 1: 1, 2: 2}


def base_url(host: str) -> str:
    """``http://<host>`` for a bare host (``host:port`` allowed); a URL is kept as it is."""
    if host.startswith(("http://", "https://")):
        return host.rstrip("/")
    return f"http://{host}"


async def probe(session: aiohttp.ClientSession, host: str, *, timeout_s: float) -> ShellyInfo:
    """``GET /shelly`` → generation, model, MAC, firmware; DeviceError subclasses on failure."""
    url = f"{base_url(host)}/shelly"
    answer = await http_request(session, "GET", url, timeout_s=timeout_s)
    if answer.status != 200:
        raise DeviceProtocolError(f"GET {url}: HTTP {answer.status}")
    return parse_info(decode_json(answer, f"GET {url}"))


async def open_shelly(
    session: aiohttp.ClientSession,
    host: str,
    *,
    clock: Clock,
    timeout_s: float = 2.0,
    generation: Literal["auto", 1, 2] = "auto",
    username: str | None = None,
    password: str | None = None,
) -> ShellyDevice:
    """Detect the device at ``host`` and return its driver.

    Raises DeviceError subclasses when the device cannot be reached or understood, and
    ConfigError when ``generation`` (1 = gen1, 2 = RPC) does not match what it reports.
    """
    info = await probe(session, host, timeout_s=timeout_s)
    url = base_url(host)
    api = 1 if info.generation == 1 else 2
    if generation not in ("auto", api):
        raise ConfigError(
            f"{info.product_name} at {host} speaks the gen{api} API but generation = {generation}"
        )
    if api == 1:
        creds = None if password is None else (username or "admin", password)
        return Gen1Shelly(session, url, info, clock=clock, timeout_s=timeout_s, credentials=creds)
    device = Gen2Shelly(
        session, url, info, Inventory(), clock=clock, timeout_s=timeout_s, password=password
    )
    device.inventory = Inventory.of(await device.get_status())
    return device


async def open_device(
    session: aiohttp.ClientSession, conn: Connection, *, clock: Clock
) -> ShellyDevice:
    """Registry entry: :func:`open_shelly` for ``conn``; ConfigError for an unknown option."""
    unknown = sorted(set(conn.options) - {"generation"})
    if unknown:
        raise ConfigError(f"the shelly driver has no option {', '.join(unknown)}")
    value = conn.options.get("generation", "auto")
    generation = None if isinstance(value, bool) else _GENERATIONS.get(value)
    if generation is None:
        raise ConfigError(f"shelly generation must be auto, 1 or 2, not {value!r}")
    return await open_shelly(
        session,
        conn.host,
        clock=clock,
        timeout_s=conn.timeout_s,
        generation=generation,
        username=conn.username,
        password=conn.password,
    )
