"""Callbacks belong to the feature run that registered them, so their bugs surface there.

A component that calls back into features (the D-Bus ``Monitor``, the ``SettingsClient``, the
MQTT link) keeps its callbacks in :class:`Callbacks`, which records the :class:`Owner` current
at registration: the supervisor runs each feature run inside ``owner.running()``. When a
callback raises, its exception is handed to that owner, which cancels the run; the supervisor
then treats it exactly as if the feature itself had raised (log with traceback, outputs safe,
bounded restart). The component and the other features carry on. Callbacks of a run that has
ended are dropped, so a restarted feature does not leave its old callbacks behind.

A callback registered outside any feature run (by the daemon or a component itself) has no
owner: its exception propagates into the component, which fails as a whole — a bug in shared
machinery ends the process (after every output is put in its safe state).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Generic, ParamSpec

import anyio

__all__ = ["Callbacks", "Owner", "current_owner"]

P = ParamSpec("P")

_CURRENT: ContextVar[Owner | None] = ContextVar("venus_ems_callback_owner", default=None)


def current_owner() -> Owner | None:
    """The feature run the calling task belongs to (None outside any)."""
    return _CURRENT.get()


class Owner:
    """One run of one feature; the first exception of one of its callbacks ends the run."""

    def __init__(self, name: str) -> None:
        """``name``: the feature's name, for logs."""
        self.name = name
        self.error: Exception | None = None
        """The first exception a callback of this run raised (None while all is well)."""
        self.ended = False
        self._scope: anyio.CancelScope | None = None

    @property
    def active(self) -> bool:
        """True while the run goes on and none of its callbacks has failed."""
        return not self.ended and self.error is None

    def fail(self, error: Exception) -> None:
        """A callback of this run raised ``error``: keep the first one and cancel the run."""
        if not self.active:
            return
        self.error = error
        if self._scope is not None:
            self._scope.cancel()

    @contextmanager
    def running(self) -> Iterator[anyio.CancelScope]:
        """Make this the current owner (inherited by the tasks started inside) until it ends.

        The block runs in a cancel scope that :meth:`fail` cancels; the caller checks
        :attr:`error` afterwards.
        """
        if self.ended:
            raise RuntimeError(f"owner {self.name} has ended; make a new one per run")
        token = _CURRENT.set(self)
        try:
            with anyio.CancelScope() as scope:
                self._scope = scope
                if self.error is not None:
                    scope.cancel()
                yield scope
        finally:
            self.ended = True
            self._scope = None
            _CURRENT.reset(token)


class Callbacks(Generic[P]):
    """A list of callbacks, each with the owner that was current when it was added."""

    def __init__(self) -> None:
        """Start empty."""
        self._items: list[tuple[Callable[P, object], Owner | None]] = []

    def __len__(self) -> int:
        """Callbacks registered (including those of ended runs not yet dropped)."""
        return len(self._items)

    def add(self, callback: Callable[P, object]) -> None:
        """Register ``callback`` for the current owner (see :func:`current_owner`)."""
        self._items.append((callback, current_owner()))

    def discard(self, callback: Callable[P, object]) -> None:
        """Forget every registration of ``callback`` (no error if there is none)."""
        self._items = [item for item in self._items if item[0] != callback]

    def owner_of(self, callback: Callable[P, object]) -> Owner | None:
        """The owner of the first registration of ``callback`` (None if unowned or absent)."""
        for cb, owner in self._items:
            if cb == callback:
                return owner
        return None

    def live(self) -> list[tuple[Callable[P, object], Owner | None]]:
        """The callbacks to call now, dropping those of ended runs."""
        if any(owner is not None and owner.ended for _, owner in self._items):
            self._items = [(cb, o) for cb, o in self._items if o is None or not o.ended]
        return [(cb, o) for cb, o in self._items if o is None or o.active]

    def call(self, *args: P.args, **kwargs: P.kwargs) -> None:
        """Call each live callback; a failure goes to its owner, or is raised once all ran.

        Raises the first exception of an unowned callback (a bug of the component itself).
        """
        unowned: Exception | None = None
        for callback, owner in self.live():
            try:
                callback(*args, **kwargs)
            except Exception as err:  # noqa: BLE001, PERF203 - to its owner, or re-raised below
                if owner is None:
                    unowned = unowned or err
                else:
                    owner.fail(err)
        if unowned is not None:
            raise unowned
