"""The dashboard's live state: follows the Monitor, keeps history and messages, builds snapshots.

One :class:`DashboardState` per server. It consumes one monitor subscription (all services,
coalesced per path, so memory is bounded however fast values change), counts changes in
``generation`` and wakes the live-update streams; snapshots are built at most once per
generation, however many pages are open.
"""

from __future__ import annotations

import json
import logging
import math
from collections import deque
from collections.abc import Mapping
from typing import Any

import anyio

from .. import __version__
from ..clock import Clock
from ..errors import BusError
from ..runtime.status import STATUS_SERVICE
from ..venus import BUSITEM, SETTINGS_SERVICE, DBusCallError, Monitor, call, unwrap
from . import view
from .history import History

__all__ = ["DashboardState", "clean"]

_LOG = logging.getLogger(__name__)
_MAX_TEXT = 500
_MAX_BOUNDS = 512


def clean(value: Any) -> Any:
    """JSON-safe copy: non-finite floats become None, long strings are cut, depth is bounded."""
    return _clean(value, 0)


def _clean(value: Any, depth: int) -> Any:
    if depth > 8:
        return None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return value if len(value) <= _MAX_TEXT else value[:_MAX_TEXT] + "…"
    if isinstance(value, Mapping):
        return {str(k)[:_MAX_TEXT]: _clean(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v, depth + 1) for v in value[:256]]
    if value is None or isinstance(value, (bool, int)):
        return value
    return str(value)[:_MAX_TEXT]


class DashboardState:
    """Everything the pages show, kept up to date from the shared Monitor."""

    def __init__(
        self,
        monitor: Monitor,
        clock: Clock,
        *,
        history_s: float = 3600.0,
        sample_interval_s: float = 10.0,
        messages: int = 50,
    ) -> None:
        """Nothing runs until :meth:`run`."""
        self.monitor = monitor
        self.clock = clock
        self.history = History(history_s, sample_interval_s)
        self.messages: deque[dict[str, Any]] = deque(maxlen=messages)
        self.bounds: dict[str, tuple[float | None, float | None]] = {}
        self.generation = 0
        self.changed = anyio.Event()
        self._snapshot: tuple[int, int, dict[str, Any]] | None = None
        self._asking: set[str] = set()

    # ----------------------------------------------------------------- snapshots

    def snapshot(self) -> dict[str, Any]:
        """The whole view (cached per generation and history point)."""
        key = (self.generation, self.history.seq)
        cached = self._snapshot
        if cached is not None and cached[:2] == key:
            return cached[2]
        mon = self.monitor
        status = mon.service(STATUS_SERVICE)
        site = view.site(mon)
        view_: dict[str, Any] = clean(
            {
                "t": self.clock.monotonic(),
                "now": self.clock.now().isoformat(timespec="seconds"),
                "version": __version__,
                "daemon": None if status is None else status.values.get("/Version"),
                "dry_run": bool(status is not None and status.values.get("/DryRun")),
                "site": site,
                "ess": view.ess_tracking(mon),
                "features": view.features(mon),
                "outputs": view.outputs(mon),
                "devices": view.devices(mon),
                "tunables": view.tunables(mon, self.bounds),
                "messages": list(self.messages)[::-1],
                "history_seq": self.history.seq,
            }
        )
        self._snapshot = (*key, view_)
        return view_

    def snapshot_json(self) -> str:
        """:meth:`snapshot` as compact JSON."""
        return json.dumps(self.snapshot(), separators=(",", ":"), allow_nan=False)

    def sample(self) -> None:
        """Take one history point now."""
        site = view.site(self.monitor)
        ess = view.ess_tracking(self.monitor)
        self.history.add(self.clock.monotonic(), clean(view.history_sample(site, ess)))
        self._wake()

    # ----------------------------------------------------------------- following the bus

    def _wake(self) -> None:
        self.generation += 1
        self.changed.set()
        self.changed = anyio.Event()

    def _take_message(self, path: str, value: object) -> None:
        parts = path.split("/")
        if len(parts) != 4 or parts[1] != "Features" or parts[3] != "Message":
            return
        if not isinstance(value, str) or not value:
            return
        name = self.monitor.get(STATUS_SERVICE, f"/Features/{parts[2]}/Name") or parts[2]
        self.messages.append(
            {
                "at": self.clock.now().isoformat(timespec="seconds"),
                "feature": clean(name),
                "text": clean(value),
            }
        )

    def _seed_messages(self) -> None:
        status = self.monitor.service(STATUS_SERVICE)
        if status is not None:
            for path, value in sorted(status.values.items()):
                self._take_message(path, value)

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Follow changes, take history samples and look up tunable bounds until cancelled."""
        mon = self.monitor
        sub = mon.subscribe()
        try:
            async with anyio.create_task_group() as tg:
                self._seed_messages()
                tg.start_soon(self._sampler)
                self._ask_bounds(tg)
                task_status.started()
                async for changes in sub:
                    for (service, path), value in changes.items():
                        if service == STATUS_SERVICE:
                            self._take_message(path, value)
                        elif service == SETTINGS_SERVICE and path.startswith(view.TUNABLE_ROOT):
                            self._ask_bounds(tg)
                    self._wake()
        finally:
            mon.unsubscribe(sub)

    async def _sampler(self) -> None:
        while True:
            self.sample()
            await self.clock.sleep(self.history.interval_s)

    # ----------------------------------------------------------------- tunable bounds

    def _ask_bounds(self, tg: anyio.abc.TaskGroup) -> None:
        svc = self.monitor.service(SETTINGS_SERVICE)
        if svc is None:
            return
        for path, value in svc.values.items():
            if (
                path.startswith(view.TUNABLE_ROOT)
                and isinstance(value, (int, float))
                and path not in self.bounds
                and path not in self._asking
                and len(self.bounds) + len(self._asking) < _MAX_BOUNDS
            ):
                self._asking.add(path)
                tg.start_soon(self._bounds_of, path)

    async def _bounds_of(self, path: str) -> None:
        """Ask localsettings for GetMin/GetMax (both 0 = no limit)."""
        bus = self.monitor.bus
        try:
            (lo,) = await call(bus, SETTINGS_SERVICE, path, BUSITEM, "GetMin", "", [], timeout=5.0)
            (hi,) = await call(bus, SETTINGS_SERVICE, path, BUSITEM, "GetMax", "", [], timeout=5.0)
        except (BusError, DBusCallError) as err:
            _LOG.debug("no bounds for %s: %s", path, err)
            self.bounds[path] = (None, None)
        else:
            lo, hi = unwrap(lo), unwrap(hi)
            if (
                isinstance(lo, (int, float))
                and isinstance(hi, (int, float))
                and not isinstance(lo, bool)
                and not isinstance(hi, bool)
                and not (lo == 0 and hi == 0)
            ):
                self.bounds[path] = (float(lo), float(hi))
            else:
                self.bounds[path] = (None, None)
        finally:
            self._asking.discard(path)
        self._wake()
