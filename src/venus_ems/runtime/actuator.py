"""Actuators: the one writer of each physical output (DESIGN rule 6).

Features never write outputs themselves; they *claim* an actuator with a value and a priority.
The actuator arbitrates (highest priority wins, ties go to the earliest claim), skips unchanged
values, rate-limits, refreshes claimed values that expire at the device (mode-3 setpoints, hub4
overrides), puts a timeout on every write, logs instead of writing in dry-run mode, and owns the
output's safe state: it writes it when every claim is released or expired (a stalled feature's
claim expires after ``claim_ttl_s``), and, shielded and time-bounded, when the daemon stops; a
safe write that is not confirmed in time is logged as an error.

Outputs are owned, not just written (docs/decisions.md D23). A :class:`ReadableOutput` is read
back every ``readback_s`` and whenever the monitor reports a change of its path or of its
service's owner. A new owner (the target process restarted and lost what we wrote) gets our
value again, or the safe value we had released to. A different value while a feature holds the
output is re-asserted (at most every ``readback_s``); one written after we released the output is
someone else's and is left alone. :attr:`Actuator.in_force` is what the target really holds, and
the status service reports it. Before a value other than the safe one is written it is noted in
the output ledger (:mod:`.ledger`), so that the next start can put back what a killed process
left (:mod:`.leftovers`).

Only an ``EmsError`` or a timeout is a failed write (reported, retried after ``retry_s``); any
other exception from a writer is a bug and ends :meth:`Actuator.run` (and so the daemon), after
the safe state has been attempted.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import anyio
from anyio.abc import TaskGroup, TaskStatus

from ..clock import Clock, sleep_or_event
from ..errors import EmsError
from .ledger import OutputLedger, same_value
from .logging import redact
from .ownership import UNKNOWN, UNSET, OwnedOutput, ReadableOutput, Readback

__all__ = [
    "UNKNOWN",
    "Actuator",
    "ActuatorRegistry",
    "Claim",
    "OutputWriter",
    "ReadableOutput",
    "Readback",
]

_LOG = logging.getLogger(__name__)

T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)
_UNSET: Any = UNSET


class OutputWriter(Protocol[T_contra]):
    """Writes one output; raises an EmsError (BusError, DeviceError) when the write fails.

    Any other exception is a bug: the actuator does not retry it, it ends the daemon.
    """

    @property
    def target(self) -> str:
        """What is written, for logs and status (``com.victronenergy.hub4/Overrides/Setpoint``)."""
        ...

    async def write(self, value: T_contra) -> None:
        """Write ``value``; raise on failure."""
        ...


@dataclass(frozen=True, slots=True)
class Claim(Generic[T]):
    """A feature's request for an output: value, priority, and when it was (re)made (clock s)."""

    feature: str
    value: T
    priority: int
    at: float
    seq: int


class Actuator(OwnedOutput, Generic[T]):
    """Arbitrates claims for one output and writes the winner's value (or the safe value)."""

    def __init__(
        self,
        name: str,
        writer: OutputWriter[T],
        *,
        safe_value: T,
        clock: Clock,
        refresh_s: float | None = None,
        min_interval_s: float = 0.0,
        claim_ttl_s: float | None = None,
        write_timeout_s: float = 5.0,
        retry_s: float = 5.0,
        shutdown_timeout_s: float = 5.0,
        dry_run: bool = False,
        on_state: Callable[[Actuator[Any]], None] | None = None,
        refresh_released: bool = False,
        readback_s: float = 5.0,
        ledger: OutputLedger | None = None,
    ) -> None:
        """Times in s; ValueError for a non-positive ``refresh_s`` or ``readback_s``.

        ``refresh_s``: rewrite an unchanged claimed value this often (default: the writer's;
        with ``refresh_released`` the safe value too); ``min_interval_s``: rate limit;
        ``readback_s``: read a readable output back this often.
        """
        reader = writer if isinstance(writer, ReadableOutput) else None
        if refresh_s is None and reader is not None:
            refresh_s = reader.refresh_s
        if refresh_s is not None and refresh_s <= 0:
            raise ValueError("refresh_s must be positive")
        if readback_s <= 0:
            raise ValueError("readback_s must be positive")
        self.name = name
        self.writer = writer
        self.safe_value = safe_value
        self.clock = clock
        self.refresh_s = refresh_s
        self.refresh_released = refresh_released
        self.readback_s = readback_s
        self.ledger = ledger
        self._reader = reader
        self._read: Readback | None = None
        self._owner_at_write: str | None = None
        self._reassert = False
        self._reasserted_at: float | None = None
        self._overwritten_at: float | None = None
        self._unconfirmed = False
        self._poked = False
        self._next_check = 0.0
        self._ledger_error: str | None = None
        self.min_interval_s = min_interval_s
        self.claim_ttl_s = claim_ttl_s
        self.write_timeout_s = write_timeout_s
        self.retry_s = retry_s
        self.shutdown_timeout_s = shutdown_timeout_s
        self.dry_run = dry_run
        self._on_state = on_state
        self._claims: dict[str, Claim[T]] = {}
        self._seq = itertools.count()
        self._wake = anyio.Event()
        self.written: T = _UNSET
        self._reassert = False
        self.last_write_at: float | None = None
        self.last_attempt_at: float | None = None
        self.last_error: str | None = None
        self.writes = 0

    # ----------------------------------------------------------------- claims

    def claim(self, feature: str, value: T, *, priority: int = 0) -> None:
        """Ask for ``value``; repeating a claim renews it (keeps it from expiring)."""
        old = self._claims.get(feature)
        seq = old.seq if old is not None and old.priority == priority else next(self._seq)
        self._claims[feature] = Claim(feature, value, priority, self.clock.monotonic(), seq)
        if old is None or old.value != value or old.priority != priority:
            self._changed()

    def release(self, feature: str) -> None:
        """Drop a feature's claim; with no claim left the output goes to its safe value."""
        if self._claims.pop(feature, None) is not None:
            self._changed()

    def abandon(self, feature: str) -> None:
        """Drop a claim because someone else owns the output now (e.g. Dynamic ESS): no safe write.

        With no claim left the actuator forgets what it wrote, so neither now nor on shutdown
        does it write its safe value over the other owner's.
        """
        self._claims.pop(feature, None)
        if not self._claims:
            self._forget()
        self._changed()

    def reassert(self) -> None:
        """The output lost what we wrote (a device restarted): write the desired value again.

        Ignored until something was written. Rate limit and retry pacing still apply.
        """
        if self.written is not _UNSET:
            self._reassert = True
            self._wake.set()

    @property
    def value(self) -> T | None:
        """What this actuator last wrote (None when it wrote nothing or gave the output away)."""
        return None if self.written is _UNSET else self.written

    @property
    def owner(self) -> str | None:
        """The feature whose claim wins now, or None."""
        winner = self._winner()
        return None if winner is None else winner.feature

    @property
    def desired(self) -> T:
        """The value the output should have now (the winner's, else the safe value)."""
        winner = self._winner()
        return self.safe_value if winner is None else winner.value

    def desired_without(self, feature: str) -> T:
        """The value the output would have if ``feature`` had no claim."""
        winner = self._winner(exclude=feature)
        return self.safe_value if winner is None else winner.value

    def _winner(self, exclude: str | None = None) -> Claim[T] | None:
        claims = [c for f, c in self._claims.items() if f != exclude]
        if not claims:
            return None
        return max(claims, key=lambda c: (c.priority, -c.seq))

    def _changed(self) -> None:
        self._wake.set()
        self._report()

    def _wake_up(self) -> None:
        self._wake.set()

    def _report(self) -> None:
        if self._on_state is not None:
            self._on_state(self)

    def _expire(self, now: float) -> float | None:
        """Drop expired claims; return when the next one expires."""
        ttl = self.claim_ttl_s
        if ttl is None or not self._claims:
            return None
        for feature, c in list(self._claims.items()):
            if now - c.at > ttl:
                _LOG.warning("%s: claim of %s expired after %.1f s", self.name, feature, ttl)
                del self._claims[feature]
                self._changed()
        return min((c.at + ttl for c in self._claims.values()), default=None)

    # ----------------------------------------------------------------- the writer loop

    def _next_write_at(self, now: float) -> float | None:
        """When the desired value must be written (None: nothing to do)."""
        desired = self.desired
        if self.written is _UNSET and not self._claims:
            return None  # never claimed: leave the output alone (e.g. DESS owns the override)
        if self.last_error is not None and self.last_attempt_at is not None:
            retry_at = self.last_attempt_at + self.retry_s
        else:
            retry_at = now
        if self._reassert:  # the target lost or changed our value
            return max(now, retry_at)
        if self.written is _UNSET or desired != self.written or self.last_error is not None:
            earliest = (
                now if self.last_write_at is None else self.last_write_at + self.min_interval_s
            )
            return max(now, earliest, retry_at)
        refresh = self.refresh_s is not None and (self._claims or self.refresh_released)
        if refresh and self.refresh_s is not None and self.last_write_at is not None:
            return max(self.last_write_at + self.refresh_s, retry_at)
        return None

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Write until cancelled, then put the output in its safe state (shielded, bounded)."""
        reader = self._reader
        if reader is not None:
            reader.watch(self.notify)
            self._read = reader.read_cached()
            self._report()
        task_status.started()
        try:
            while True:
                now = self.clock.monotonic()
                expiry = self._expire(now)
                if reader is not None and (self._poked or now >= self._next_check):
                    fresh = now >= self._next_check
                    self._poked = False
                    if fresh:
                        self._next_check = now + self.readback_s
                    await self._check(fresh=fresh and self.written is not _UNSET)
                    continue
                at = self._next_write_at(now)
                if at is not None and at <= now:
                    await self._write(self.desired)
                    continue
                deadlines = [at, expiry]
                if reader is not None:
                    deadlines.append(self._next_check)
                    timeout = reader.device_timeout_s
                    if timeout is not None and self.last_write_at is not None:
                        fallback = self.last_write_at + timeout + 0.001
                        if fallback > now:
                            deadlines.append(fallback)  # in_force changes then: report it
                deadline = min((t for t in deadlines if t is not None), default=None)
                self._wake = anyio.Event()
                if self._poked:
                    continue
                if deadline is None:
                    await self._wake.wait()
                else:
                    await sleep_or_event(self.clock, deadline - now, self._wake)
                    self._report_if_fallen_back()
        finally:
            confirmed = False
            with anyio.move_on_after(self.shutdown_timeout_s, shield=True) as scope:
                confirmed = await self.safe_state()
            if not confirmed:
                why = (
                    f"no answer within {self.shutdown_timeout_s:g} s"
                    if scope.cancelled_caught
                    else self.last_error or "not written"
                )
                _LOG.error(
                    "%s: safe state %r of %s not confirmed (%s): it may still hold %r%s",
                    self.name,
                    self.safe_value,
                    self.writer.target,
                    why,
                    self.written,
                    "; the next start puts it back" if self.ledger is not None else "",
                )
            close = getattr(self.writer, "aclose", None)
            if close is not None:  # a writer holding its own connection lets it go last
                with anyio.move_on_after(1.0, shield=True):
                    await close()

    async def safe_state(self) -> bool:
        """Write the safe value now if we ever wrote something else (bounded by the timeout).

        True when the safe value is confirmed, or nothing of ours is out there.
        """
        self._claims.clear()
        if (
            not self._unconfirmed
            and not self._reassert
            and (
                self.written is _UNSET
                or (self.written == self.safe_value and self.last_error is None)
            )
        ):
            return True
        _LOG.info("%s: safe state %r", self.name, self.safe_value)
        await self._write(self.safe_value)
        return self.last_error is None and self.written == self.safe_value

    async def _write(self, value: T) -> None:
        now = self.clock.monotonic()
        self.last_attempt_at = now
        if self.dry_run:
            if value != self.written:
                _LOG.info("dry run: %s would write %r to %s", self.name, value, self.writer.target)
            self._written(value, now)
            return
        self._ledger_note(value)
        self._unconfirmed = True  # until the target answers, the value may be in force or not
        owner = None if self._reader is None else self._reader.read_cached().owner
        try:
            with anyio.fail_after(self.write_timeout_s):
                await self.writer.write(value)
        except TimeoutError:
            self._failed(value, f"no answer within {self.write_timeout_s} s")
        except EmsError as err:  # the bus or the device failed: report, retry later
            self._failed(value, str(err) or type(err).__name__)
        # anything else is a bug: it ends run(), safe state first, and the daemon with it
        else:
            self._owner_at_write = owner  # the process that got it (it may be gone already)
            self._written(value, now)

    def _written(self, value: T, now: float) -> None:
        if value != self.written:
            _LOG.debug("%s: wrote %r to %s", self.name, value, self.writer.target)
        if self._reassert:
            self._reasserted_at = now
            self._reassert = False
        self._overwritten_at = None
        self.written = value
        self._unconfirmed = False
        self.last_write_at = now
        self.last_error = None
        self.writes += 1
        if self._reader is not None and not self.dry_run and same_value(value, self.safe_value):
            self._ledger_clear()
        self._report()

    def _failed(self, value: T, message: str) -> None:
        message = redact(message)  # published on D-Bus and MQTT as /Outputs/<name>/Error
        if self.last_error != message:
            _LOG.warning(
                "%s: writing %r to %s failed: %s", self.name, value, self.writer.target, message
            )
        self.last_error = message
        self._report()


class ActuatorRegistry:
    """All actuators of the daemon, started in the task group they were given."""

    def __init__(
        self,
        tg: TaskGroup | None = None,
        *,
        on_state: Callable[[Actuator[Any]], None] | None = None,
        dry_run: bool = False,
        shutdown_timeout_s: float | None = None,
        ledger: OutputLedger | None = None,
    ) -> None:
        """Actuators added here start in ``tg``, report to ``on_state``, obey ``dry_run``.

        They note their values in ``ledger`` (the output ledger of the state dir).
        """
        self._tg = tg
        self._on_state = on_state
        self.dry_run = dry_run
        self.shutdown_timeout_s = shutdown_timeout_s
        self.ledger = ledger
        self._actuators: dict[str, Actuator[Any]] = {}

    def add(self, actuator: Actuator[T]) -> Actuator[T]:
        """Register (and start) an actuator; ValueError if the name is taken."""
        if actuator.name in self._actuators:
            raise ValueError(f"actuator {actuator.name} exists already")
        self._actuators[actuator.name] = actuator
        if self.dry_run:
            actuator.dry_run = True
        if self.shutdown_timeout_s is not None:
            actuator.shutdown_timeout_s = self.shutdown_timeout_s
        if actuator.ledger is None:
            actuator.ledger = self.ledger
        if self._on_state is not None and actuator._on_state is None:
            actuator._on_state = self._on_state
            self._on_state(actuator)
        if self._tg is not None:
            self._tg.start_soon(actuator.run)
        return actuator

    def ensure(self, name: str, factory: Callable[[], Actuator[Any]]) -> Actuator[Any]:
        """The actuator called ``name``, created with ``factory()`` on first use."""
        act = self._actuators.get(name)
        if act is None:
            act = self.add(factory())
            if act.name != name:
                raise ValueError(f"factory for {name} made {act.name}")
        return act

    def get(self, name: str) -> Actuator[Any] | None:
        """The actuator called ``name``, or None."""
        return self._actuators.get(name)

    def release_all(self, feature: str) -> None:
        """Drop every claim of ``feature`` (it crashed or stopped)."""
        for act in self._actuators.values():
            act.release(feature)

    def __iter__(self) -> Any:
        """Iterate over the actuators."""
        return iter(list(self._actuators.values()))
