"""The dashboard: a local web page over the daemon's shared Monitor (aiohttp, server-sent events).

It reads D-Bus only (our status service, the site's Victron services, localsettings) and writes
only our runtime tunables in localsettings; it never imports a device driver.
"""

from __future__ import annotations

from .server import WebServer

__all__ = ["WebServer"]
