"""One relay output of an emulated Shelly: switching, the flip-back timer and the last cause."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any

import anyio

from ...clock import Clock
from .sources import SwitchSource

__all__ = ["RelayControl"]

Spawn = Callable[[Callable[[], Coroutine[Any, Any, None]]], None]


class RelayControl:
    """Switches a ``SwitchSource``; an optional timer flips it back after N seconds of ``clock``."""

    def __init__(self, switch: SwitchSource, clock: Clock, spawn: Spawn) -> None:
        """``spawn`` runs the timer task (the emulator's task group)."""
        self.switch = switch
        self.source = "init"
        self._clock = clock
        self._spawn = spawn
        self._timer: tuple[float, float] | None = None
        self._scope: anyio.CancelScope | None = None

    def turn(self, on: bool, *, source: str, flip_after_s: float | None = None) -> bool:
        """Switch to ``on`` (cause ``source``), flip back after ``flip_after_s``; returns was_on."""
        was_on = self.switch.read().output
        self._cancel_timer()
        self.switch.set_output(on)
        self.source = source
        if flip_after_s is not None and flip_after_s > 0:
            scope = anyio.CancelScope()
            self._scope = scope
            self._timer = (self._clock.now().timestamp(), flip_after_s)
            self._spawn(partial(self._run_timer, scope, not on, flip_after_s))
        return was_on

    def timer(self) -> tuple[float, float, float] | None:
        """(started unix s, duration s, remaining s) of the running timer, or None."""
        if self._timer is None:
            return None
        started, duration = self._timer
        remaining = max(started + duration - self._clock.now().timestamp(), 0.0)
        return started, duration, remaining

    def _cancel_timer(self) -> None:
        if self._scope is not None:
            self._scope.cancel()
        self._scope = None
        self._timer = None

    async def _run_timer(self, scope: anyio.CancelScope, target: bool, delay: float) -> None:
        with scope:
            await self._clock.sleep(delay)
            self._scope = None
            self._timer = None
            self.switch.set_output(target)
            self.source = "timer"
