"""Owned outputs: read back, follow the target's owner, note our values in the output ledger.

The part of :class:`~.actuator.Actuator` that makes an output owned rather than just written
(docs/decisions.md D23). A :class:`ReadableOutput` (the D-Bus writers) tells the owner of its
target service (the unique bus name of the process, which changes when it restarts) and, where
the target echoes it, the value in force. The actuator

* writes its value again when the target's owner changes (the new process lost it), or the safe
  value it had released to, unless the new process already holds it;
* writes a claimed value again when the target holds another one (someone else wrote it, or the
  target dropped it: hub4's override timeout is undocumented), at most every ``readback_s``;
* forgets an output it had released when someone else writes it afterwards (it is theirs);
* notes every value other than the safe one in the output ledger before writing it, and removes
  the entry once the safe value is confirmed or the output is given away.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ..clock import Clock
from .ledger import OutputLedger, same_value

__all__ = ["UNKNOWN", "UNSET", "OwnedOutput", "ReadableOutput", "Readback"]

_LOG = logging.getLogger(__name__)
_SETTLE_S = 1.0
"""A read-back value is judged only this long after our last write (its signal may lag)."""

UNSET: Any = object()
"""Nothing written (or the output given away)."""


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()
"""A read-back value the target does not tell (mk2-dbus does not echo mode-3 setpoints)."""


@dataclass(frozen=True, slots=True)
class Readback:
    """The target now: its process's unique bus name (None = absent) and value (or UNKNOWN)."""

    owner: str | None
    value: Any = UNKNOWN


@runtime_checkable
class ReadableOutput(Protocol):
    """An output writer that can also read its target back (the D-Bus writers)."""

    persistent: bool
    """The target keeps values across reboots (a localsettings setting)."""
    device_timeout_s: float | None
    """The target drops a value not renewed for this long (s), None = never."""
    refresh_s: float | None
    """Rewrite a claimed value this often (s) when the actuator sets no refresh of its own."""

    @property
    def target(self) -> str:
        """What is written, for logs and status."""
        ...

    async def write(self, value: Any) -> None:
        """Write ``value``; raise on failure."""
        ...

    def read_cached(self) -> Readback:
        """Owner and value as last seen (no bus traffic)."""
        ...

    async def read(self) -> Readback:
        """Owner and value, the value fetched from the target."""
        ...

    def watch(self, notify: Callable[[], None]) -> None:
        """Call ``notify()`` when the target's owner or value may have changed."""
        ...

    def spec(self) -> dict[str, Any] | None:
        """A JSON description to rebuild the writer from (None: it cannot be rebuilt)."""
        ...


class OwnedOutput:
    """Mixin of :class:`~.actuator.Actuator`: read-back, owner following and the ledger."""

    name: str
    writer: Any
    clock: Clock
    safe_value: Any
    written: Any
    last_write_at: float | None
    last_error: str | None
    dry_run: bool
    readback_s: float
    min_interval_s: float
    ledger: OutputLedger | None
    _claims: dict[str, Any]
    _reader: ReadableOutput | None
    _read: Readback | None
    _owner_at_write: str | None
    _reassert: bool
    _reasserted_at: float | None
    _overwritten_at: float | None
    _poked: bool
    _unconfirmed: bool
    _ledger_error: str | None

    @property
    def desired(self) -> Any:
        """The value the output should have now (see Actuator)."""
        raise NotImplementedError

    def _report(self) -> None:
        raise NotImplementedError

    def _wake_up(self) -> None:
        raise NotImplementedError

    def _forget(self) -> None:
        """The output is someone else's now: no safe write, no re-assertion, no ledger entry."""
        self.written = UNSET
        self._unconfirmed = False
        self.last_error = None
        self._reassert = False
        self._owner_at_write = None
        self._ledger_clear()

    @property
    def in_force(self) -> Any:
        """What the target holds now; None when absent, unknown or fallen back.

        As the monitor sees the target now where it tells, else what we wrote while the target
        keeps it (``device_timeout_s``).
        """
        reader = self._reader
        rb = None if reader is None else reader.read_cached()
        if rb is not None and rb.owner is None:
            return None
        if rb is not None and rb.value is not UNKNOWN:
            return rb.value
        if self.written is UNSET or self.dry_run or self.last_write_at is None:
            return None
        timeout = None if reader is None else reader.device_timeout_s
        if timeout is not None and self.clock.monotonic() - self.last_write_at > timeout:
            return None
        return self.written

    def notify(self) -> None:
        """The target may have changed (owner or value): read it back soon."""
        self._poked = True
        self._wake_up()

    async def _check(self, *, fresh: bool) -> None:
        """Read the target back; follow a new owner; notice a value that is not ours."""
        reader = self._reader
        assert reader is not None
        rb = await reader.read() if fresh else reader.read_cached()
        now = self.clock.monotonic()  # when it was read (a round trip takes time)
        changed = rb != self._read
        self._read = rb
        if self.written is not UNSET and not self.dry_run and rb.owner is not None:
            if self._owner_at_write is not None and rb.owner != self._owner_at_write:
                self._new_owner(rb)
            elif (
                rb.value is not UNKNOWN
                and self.last_write_at is not None
                and now - self.last_write_at >= _SETTLE_S
                and self.last_error is None
            ):
                self._compare(rb, now)
        if changed:
            self._report()

    def _new_owner(self, rb: Readback) -> None:
        """The target's process restarted: what we wrote may be gone."""
        desired = self.desired
        if rb.value is not UNKNOWN and same_value(rb.value, desired):
            self._owner_at_write = rb.owner  # it still holds our value (a persisted setting)
            return
        if not self._reassert:
            _LOG.warning(
                "%s: %s restarted (new owner %s, holding %r): writing %r again",
                self.name,
                self.writer.target,
                rb.owner,
                rb.value,
                desired,
            )
        self._reassert = True

    def _compare(self, rb: Readback, now: float) -> None:
        """Same owner, a value that is not what we wrote: re-assert a claim, else let it be."""
        if same_value(rb.value, self.written):
            self._overwritten_at = None
            return
        if not self._claims:
            _LOG.info(
                "%s: %s holds %r, written by someone else after we released it: theirs now",
                self.name,
                self.writer.target,
                rb.value,
            )
            self._forget()
            return
        if self._overwritten_at is None:
            _LOG.warning(
                "%s: %s holds %r instead of our %r (someone else wrote it, or the target dropped"
                " it): writing ours again in %g s if it stays so",
                self.name,
                self.writer.target,
                rb.value,
                self.written,
                self.readback_s,
            )
            self._overwritten_at = now
        # A grace of one read-back period: a feature that sees a new owner (Dynamic ESS) gives
        # the output away meanwhile; a writer that keeps fighting is answered at most that often
        # (and never faster than the output's rate limit: a persisted setting wears the flash).
        last = self._reasserted_at
        spacing = max(self.readback_s, self.min_interval_s)
        if now - self._overwritten_at >= self.readback_s and (
            last is None or now - last >= spacing
        ):
            self._reassert = True

    # ----------------------------------------------------------------- the ledger

    def _ledger_note(self, value: Any) -> None:
        """Before writing ``value``: note it in the ledger unless it is the safe value."""
        reader, ledger = self._reader, self.ledger
        if reader is None or ledger is None or same_value(value, self.safe_value):
            return
        spec = reader.spec()
        if spec is None:
            return
        previous = None if self.written is UNSET else self.written
        try:
            ledger.record(
                self.name,
                spec,
                value,
                previous,
                self.safe_value,
                at=self.clock.now().timestamp(),
                persistent=reader.persistent,
            )
        except OSError as err:
            self._ledger_failed(err)

    def _ledger_clear(self) -> None:
        if self.ledger is not None:
            try:
                self.ledger.clear(self.name)
            except OSError as err:
                self._ledger_failed(err)

    def _ledger_failed(self, err: OSError) -> None:
        text = str(err)
        if text != self._ledger_error:
            _LOG.warning(
                "%s: output ledger not written (%s): a leftover after a crash cannot be cleared",
                self.name,
                text,
            )
        self._ledger_error = text

    def _report_if_fallen_back(self) -> None:
        reader = self._reader
        if reader is None or reader.device_timeout_s is None or self.last_write_at is None:
            return
        if self.clock.monotonic() - self.last_write_at > reader.device_timeout_s:
            self._report()
