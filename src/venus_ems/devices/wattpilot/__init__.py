"""Fronius Wattpilot (classic and Flex) over its local websocket (registry: "wattpilot").

No official documentation exists; the facts come from reverse-engineered clients
(joscha82/wattpilot, wattpilot-api, mabunixda/wattpilot) and are in the shared vectors
``wattpilot-handshake.md`` and ``wattpilot-deltastatus.json`` and ``devices.md`` §4.

| module | what |
|---|---|
| ``auth.py`` | the hashed password (PBKDF2 or bcrypt), the auth hash, the HMAC of secured writes |
| ``frames.py`` | bounded frame decoding, hello / authRequired / response, setValue + securedMsg |
| ``status.py`` | the status keys kept and their typed reading (per-phase values from ``nrg``) |
| ``link.py`` | one websocket: connect, log in, the first full status |
| ``charger.py`` | :class:`WattpilotCharger`: the connection kept, reconnects, acknowledged writes |

The one option is ``auth``: ``"auto"`` (default: what the charger announces in
``authRequired.hash``, else bcrypt for a ``wattpilot_flex``, else PBKDF2), ``"pbkdf2"`` or
``"bcrypt"`` for a charger that announces the wrong one. The password comes from the config
(a Secret read from the environment); the username is unused (the Wattpilot has none).
"""

from __future__ import annotations

import aiohttp

from ...clock import Clock
from ...errors import ConfigError
from ..base import Connection
from .charger import WattpilotCharger, open_wattpilot

__all__ = ["WattpilotCharger", "open_device", "open_wattpilot"]

_SCHEMES = ("auto", "pbkdf2", "bcrypt")


async def open_device(
    session: aiohttp.ClientSession, conn: Connection, *, clock: Clock
) -> WattpilotCharger:
    """Connect and log in (the registry's opener); ConfigError for an unknown option."""
    unknown = sorted(set(conn.options) - {"auth"})
    if unknown:
        raise ConfigError(f"the wattpilot driver has no option {', '.join(unknown)}")
    scheme = conn.options.get("auth", "auto")
    if scheme not in _SCHEMES:
        raise ConfigError(f"wattpilot option auth must be one of {', '.join(_SCHEMES)}")
    return await open_wattpilot(session, conn, clock=clock, scheme=str(scheme))
