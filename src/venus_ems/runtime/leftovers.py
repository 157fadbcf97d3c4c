"""At start, put back what a previous run left on its outputs (a ``kill -9``, a power cut).

Runs before any feature starts, for every entry of the output ledger (:mod:`.ledger`):

* an entry of a volatile output from another boot (another D-Bus daemon id) is void: the target
  lost the value with the reboot;
* an output the target drops by itself (mode-3 setpoints, 60 s) whose last write is older than
  that has fallen back already;
* otherwise the target is read back: its safe value or a value someone else wrote since (any value
  that is not one we recorded) is left alone; one of ours is overwritten with the safe value of the
  run that wrote it, which is what that run's SIGTERM would have done. An output that cannot be
  read back (mode-3 setpoints are not echoed) is ours while the ledger says so.

An entry is removed once settled; one whose target is absent or refuses the write stays for the
next start. Nothing is written in dry-run mode.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio

from ..clock import Clock
from ..errors import EmsError
from ..venus import call
from ..venus.monitor import Monitor
from .actuator import UNKNOWN
from .ledger import LedgerEntry, OutputLedger, same_value
from .outputs import writer_from_spec

__all__ = ["bus_id", "clear_leftovers"]

_LOG = logging.getLogger(__name__)
_DBUS = "org.freedesktop.DBus"


async def bus_id(monitor: Monitor) -> str | None:
    """The D-Bus daemon's id (a new one at every boot), or None if it does not answer."""
    try:
        (value,) = await call(monitor.bus, _DBUS, "/org/freedesktop/DBus", _DBUS, "GetId")
    except (EmsError, ValueError) as err:
        _LOG.warning("cannot read the D-Bus daemon id: %s", err)
        return None
    return value if isinstance(value, str) else None


async def clear_leftovers(
    monitor: Monitor,
    ledger: OutputLedger,
    clock: Clock,
    *,
    wait_s: float = 10.0,
    write_timeout_s: float = 5.0,
    dry_run: bool = False,
) -> dict[str, str]:
    """Settle every ledger entry; returns what happened per output name (for logs and tests)."""
    outcome: dict[str, str] = {}

    async def settle(entry: LedgerEntry) -> None:
        try:
            outcome[entry.name] = await _settle(
                monitor, ledger, clock, entry, wait_s, write_timeout_s, dry_run
            )
        except OSError as err:
            outcome[entry.name] = f"ledger not updated: {err}"
            _LOG.warning("%s: output ledger not updated: %s", entry.name, err)

    async with anyio.create_task_group() as tg:
        for entry in ledger.entries():
            tg.start_soon(settle, entry)
    return outcome


async def _settle(
    monitor: Monitor,
    ledger: OutputLedger,
    clock: Clock,
    entry: LedgerEntry,
    wait_s: float,
    write_timeout_s: float,
    dry_run: bool,
) -> str:
    """One entry: the outcome as a short text."""
    name = entry.name
    if entry.bus_id is not None and entry.bus_id != ledger.bus_id:
        ledger.clear(name)
        return "void: written before the last reboot"
    writer: Any = writer_from_spec(monitor, entry.target)
    if writer is None and entry.target.get("kind") == "stepped-load":
        from .step_output import step_writer_from_spec  # noqa: PLC0415 - pymodbus only if used

        writer = step_writer_from_spec(entry.target, clock)
    if writer is None:
        _LOG.warning("%s: output ledger entry with an unknown target %r", name, entry.target)
        ledger.clear(name)
        return "unknown target"
    try:
        return await _settle_with(writer, ledger, clock, entry, wait_s, write_timeout_s, dry_run)
    finally:
        close = getattr(writer, "aclose", None)
        if close is not None:  # a device writer holding its own bus connection
            await close()


async def _settle_with(
    writer: Any,
    ledger: OutputLedger,
    clock: Clock,
    entry: LedgerEntry,
    wait_s: float,
    write_timeout_s: float,
    dry_run: bool,
) -> str:
    """Settle ``entry`` through its rebuilt ``writer``."""
    name = entry.name
    age = clock.now().timestamp() - entry.at
    timeout = writer.device_timeout_s
    if timeout is not None and age > timeout:
        ledger.clear(name)
        return f"fallen back by itself ({age:.0f} s since the last write)"
    rb = writer.read_cached()
    if rb.owner is None:
        with anyio.move_on_after(wait_s):
            while rb.owner is None:
                await anyio.sleep(0.1)
                rb = writer.read_cached()
    if rb.owner is None:
        _LOG.warning("%s: %s is absent: cannot check what the last run left", name, writer.target)
        return "target absent: kept for the next start"
    rb = await writer.read()
    if rb.value is not UNKNOWN:
        if same_value(rb.value, entry.safe):
            ledger.clear(name)
            return "already safe"
        if not entry.ours(rb.value):
            _LOG.info(
                "%s: %s holds %r, not what the last run left (%s): someone else's, left alone",
                name,
                writer.target,
                rb.value,
                _values(entry),
            )
            ledger.clear(name)
            return f"someone else's value {rb.value!r}: left alone"
    found = "a value we cannot read back" if rb.value is UNKNOWN else repr(rb.value)
    _LOG.warning(
        "%s: the last run left %s on %s (it did not stop cleanly): writing its safe value %r",
        name,
        found,
        writer.target,
        entry.safe,
    )
    if dry_run:
        return "dry run: left as it is"
    try:
        with anyio.fail_after(write_timeout_s):
            await writer.write(entry.safe)
    except (EmsError, TimeoutError) as err:
        text = str(err) or "no answer"
        _LOG.warning("%s: putting back the safe value failed (%s): kept for next start", name, text)
        return f"write failed: {text}"
    ledger.clear(name)
    return f"cleared: {found} -> {entry.safe!r}"


def _values(entry: LedgerEntry) -> str:
    return " or ".join(repr(v) for v in entry.values)
