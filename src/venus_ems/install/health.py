"""When a freshly started venus-ems counts as healthy.

Healthy means, within ``timeout_s`` of the (re)start:

1. ``supervise`` runs the service and reports it *up* with a process that is not ``old_pid``;
2. that process publishes ``com.victronenergy.venusems`` with ``/Version`` equal to the version
   just installed (so a crash-looping daemon, or an old one still holding the name, never
   passes);
3. and, ``settle_s`` later, the same process is still up and still answers.

A daemon that cannot read its config, import a module or reach the bus never gets past step 2;
one that dies shortly after start fails step 3. A crash loop (``CRASH_LOOP`` processes seen, none
of them healthy) fails at once instead of waiting for the timeout.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import anyio

from ..clock import Clock, RealClock
from ..errors import BusError
from ..runtime.status import STATUS_SERVICE
from ..venus.bus import call, connect
from .service import SvStatus, svstat

__all__ = ["CRASH_LOOP", "Health", "wait_healthy"]

_POLL_S = 0.25
CRASH_LOOP = 4
"""Distinct daemon processes that may fail to become healthy before we stop waiting."""


@dataclass(frozen=True)
class Health:
    """The outcome: ``ok``, the healthy process, and what was last seen (for the user)."""

    ok: bool
    pid: int | None
    detail: str
    seconds: float


async def _version(address: str | None) -> str | None:
    """``/Version`` of our status service, None when it does not answer."""
    try:
        bus = await connect(address)
    except BusError:
        return None
    try:
        body = await call(
            bus, STATUS_SERVICE, "/Version", "com.victronenergy.BusItem", "GetValue", timeout=2.0
        )
    except BusError:
        return None
    finally:
        bus.disconnect()
    value = body[0].value if body else None
    return value if isinstance(value, str) else None


async def wait_healthy(
    service_dir: Path,
    *,
    version: str,
    bus_address: str | None,
    timeout_s: float,
    settle_s: float,
    old_pid: int | None = None,
    clock: Clock | None = None,
) -> Health:
    """Poll until healthy (see the module docstring) or ``timeout_s`` has passed."""
    clock = clock or RealClock()
    t0 = clock.monotonic()
    detail = "not checked yet"
    pids: set[int] = set()
    while (elapsed := clock.monotonic() - t0) < timeout_s:
        status = await anyio.to_thread.run_sync(svstat, service_dir)
        detail = _describe(status, service_dir)
        if status.pid is not None and status.pid != old_pid:
            pids.add(status.pid)
        if len(pids) >= CRASH_LOOP:
            detail = f"crash loop: restarted {len(pids) - 1} times in {elapsed:.0f} s"
            break
        if status.up and status.pid is not None and status.pid != old_pid:
            seen = await _version(bus_address)
            if seen == version:
                await clock.sleep(settle_s)
                later = await anyio.to_thread.run_sync(svstat, service_dir)
                if later.up and later.pid == status.pid and await _version(bus_address) == version:
                    return Health(True, status.pid, f"up (pid {status.pid})", elapsed + settle_s)
                detail = f"pid {status.pid} did not stay up for {settle_s:g} s ({later.text})"
            else:
                detail = (
                    f"up (pid {status.pid}) but {STATUS_SERVICE} /Version is "
                    + (repr(seen) if seen is not None else "not on the bus")
                    + f", expected {version!r}"
                )
        await clock.sleep(_POLL_S)
    return Health(False, None, detail, clock.monotonic() - t0)


def _describe(status: SvStatus, service_dir: Path) -> str:
    if not status.supervised:
        return (
            f"supervise is not running for {service_dir} (is svscan watching /service?): "
            f"{status.text}"
        )
    return status.text
