"""The one clock: real, scaled (demo speed factor) or stepped (tests, benchmarks).

Nothing else in venus-ems reads the wall clock. ``monotonic()`` is in seconds and only ever
increases; ``now()`` is the tz-aware UTC wall time that goes with it. Code that waits uses
``await clock.sleep(s)`` so the same feature runs in real time, accelerated, or stepped.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from datetime import datetime, timedelta, timezone
from typing import Protocol, runtime_checkable

import anyio
import anyio.lowlevel
import anyio.to_thread

__all__ = [
    "Clock",
    "RealClock",
    "ScaledClock",
    "SteppedClock",
    "cpu_seconds",
    "sleep_or_event",
    "wait_idle",
]


def cpu_seconds() -> float:
    """CPU time of this process, s (for reports of what a run cost; not a clock to decide on)."""
    return time.process_time()


@runtime_checkable
class Clock(Protocol):
    """Time source for the whole daemon."""

    def monotonic(self) -> float:
        """Seconds on a monotonic scale (only differences are meaningful)."""
        ...

    def now(self) -> datetime:
        """Wall-clock time, tz-aware UTC."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time (<= 0 just yields)."""
        ...


class RealClock:
    """The machine's clocks."""

    def monotonic(self) -> float:
        """``time.monotonic()`` in seconds."""
        return time.monotonic()

    def now(self) -> datetime:
        """Current UTC time."""
        return datetime.now(timezone.utc)

    async def sleep(self, seconds: float) -> None:
        """Real sleep."""
        await anyio.sleep(max(seconds, 0.0))


class ScaledClock:
    """Time running ``speed`` times faster than real time, from ``start`` (UTC)."""

    def __init__(self, speed: float, start: datetime | None = None) -> None:
        """``speed`` > 0; ``start`` defaults to the real current time."""
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._t0 = time.monotonic()
        self._start = start if start is not None else datetime.now(timezone.utc)

    def monotonic(self) -> float:
        """Scaled seconds since construction."""
        return (time.monotonic() - self._t0) * self.speed

    def now(self) -> datetime:
        """``start`` plus scaled elapsed time."""
        return self._start + timedelta(seconds=self.monotonic())

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds / speed`` of real time."""
        await anyio.sleep(max(seconds, 0.0) / self.speed)


class SteppedClock:
    """Time that moves only when told to: ``advance(dt)`` wakes the sleepers that are due."""

    def __init__(self, start: datetime | None = None, t0: float = 0.0) -> None:
        """Begin at monotonic ``t0`` and wall time ``start`` (default 2026-06-21 00:00 UTC)."""
        self._t = t0
        self._t0 = t0
        self._start = start if start is not None else datetime(2026, 6, 21, tzinfo=timezone.utc)
        self._sleepers: list[tuple[float, int, anyio.Event]] = []
        self._seq = itertools.count()

    def monotonic(self) -> float:
        """Current stepped time in seconds."""
        return self._t

    def now(self) -> datetime:
        """``start`` plus the time advanced so far."""
        return self._start + timedelta(seconds=self._t - self._t0)

    async def sleep(self, seconds: float) -> None:
        """Wait until the clock has been advanced by ``seconds``."""
        if seconds <= 0:
            await anyio.lowlevel.checkpoint()
            return
        event = anyio.Event()
        heapq.heappush(self._sleepers, (self._t + seconds, next(self._seq), event))
        await event.wait()

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking each due sleeper at its own deadline, in order.

        After each wake-up every task runs until it blocks again (:func:`wait_idle`), so what a
        woken task does at its deadline happens before the clock moves on.
        """
        end = self._t + seconds
        while self._sleepers and self._sleepers[0][0] <= end:
            deadline, _, event = heapq.heappop(self._sleepers)
            self._t = max(self._t, deadline)
            event.set()
            await wait_idle()
        self._t = end
        await wait_idle()


_IDLE_LIMIT = 10_000
_THREAD_WAIT_S = 10.0


async def wait_idle(limit: int = _IDLE_LIMIT) -> int:
    """Barrier: return once every other task of this event loop is blocked; checkpoints taken.

    Blocked means waiting for something not yet done (an event, a timer, a socket) other than
    a worker thread of ``anyio.to_thread`` (a file save, say): while one runs, this waits for
    it (at most 10 s). One checkpoint also polls the sockets without waiting, so data that has
    already arrived is handled before this returns. A task that never blocks (a busy loop)
    ends the wait after ``limit`` checkpoints. On a loop other than asyncio, anyio's own
    barrier is used.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # not asyncio (trio)
        loop = None
    ready = getattr(loop, "_ready", None)  # asyncio's queue of callbacks due now
    if loop is None or ready is None:
        await anyio.wait_all_tasks_blocked()
        return 0
    me = asyncio.current_task()
    threads = anyio.to_thread.current_default_thread_limiter()
    thread_deadline = time.monotonic() + _THREAD_WAIT_S
    n = 0
    while n < limit:
        if threads.borrowed_tokens and time.monotonic() < thread_deadline:
            await anyio.sleep(0.0005)  # a worker thread will wake a task when it is done
            continue
        n += 1
        await anyio.lowlevel.checkpoint()
        if not ready and not any(
            _runnable(task) for task in asyncio.all_tasks(loop) if task is not me
        ):
            return n
    return limit


def _runnable(task: asyncio.Task[object]) -> bool:
    """True if ``task`` is about to run (not waiting on an unfinished future)."""
    waiter = getattr(task, "_fut_waiter", None)
    return waiter is None or bool(waiter.done())


async def sleep_or_event(clock: Clock, seconds: float, event: anyio.Event) -> bool:
    """Wait until ``event`` is set or ``seconds`` of clock time pass; True if the event fired."""
    if event.is_set():
        return True
    fired = False

    async def watch(scope: anyio.CancelScope) -> None:
        nonlocal fired
        await event.wait()
        fired = True
        scope.cancel()

    async with anyio.create_task_group() as tg:
        tg.start_soon(watch, tg.cancel_scope)
        await clock.sleep(seconds)
        tg.cancel_scope.cancel()
    return fired
