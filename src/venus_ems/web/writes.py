"""Setting changes from the dashboard: localsettings only, existing paths only, the owner decides.

Only paths under ``/Settings/VenusEms/`` that localsettings already holds can be written, with
the type they have. localsettings checks the range; the feature that owns the value checks it
with its other values and puts back what it refuses (D12). The answer waits up to 1 s for that
verdict. Each session may make at most 10 changes per 10 s: a persisted setting wears the flash.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Callable

import anyio
from aiohttp import web

from ..clock import Clock
from ..errors import BusError
from ..runtime.status import STATUS_SERVICE
from ..venus import SETTINGS_SERVICE, DBusCallError, Subscription
from .state import DashboardState
from .view import TUNABLE_ROOT

__all__ = ["SettingWriter", "coerce"]

_SETTLE_S = 1.0  # how long a write waits for the owning feature's verdict (real time)
_WRITES = (10, 10.0)  # per session: at most this many writes per this many seconds


def _refuse(error: str, status: int = 400, **extra: object) -> web.Response:
    return web.json_response({"ok": False, "error": error[:500], **extra}, status=status)


def coerce(current: object, value: object) -> int | float | str:
    """A new value of the same kind as the stored one; ValueError saying what was expected."""
    if isinstance(current, str):
        if not isinstance(value, str) or len(value) > 256 or not value.isprintable():
            raise ValueError("expected a text of at most 256 printable characters")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("expected a number")  # noqa: TRY004 - answered as a 400, not a bug
    if not math.isfinite(value):
        raise ValueError("expected a finite number")
    if isinstance(current, int) and not isinstance(current, bool):
        if not float(value).is_integer():
            raise ValueError("expected a whole number")
        return int(value)
    return float(value)


class SettingWriter:
    """Writes one setting per request, rate-limited per session."""

    def __init__(self, state: DashboardState, clock: Clock, live: Callable[[str], bool]) -> None:
        """``clock`` times the rate limit; ``live(token)`` says whether a session still exists."""
        self.state = state
        self.clock = clock
        self.live = live
        self._writes: dict[str, deque[float]] = {}

    async def write(self, session: str, body: bytes) -> web.Response:
        """Handle a ``{path, value}`` body from session ``session``."""
        self._rate_limit(session)
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return _refuse("expected a JSON object {path, value}")
        if not isinstance(data, dict) or set(data) != {"path", "value"}:
            return _refuse("expected a JSON object {path, value}")
        path, value = data["path"], data["value"]
        mon = self.state.monitor
        current = mon.get(SETTINGS_SERVICE, path) if isinstance(path, str) else None
        if (
            not isinstance(path, str)
            or not path.startswith(TUNABLE_ROOT)
            or len(path) > 200
            or current is None
        ):
            return _refuse(f"not a venus-ems setting: {str(path)[:200]!r}", 404)
        try:
            value = coerce(current, value)
        except ValueError as err:
            return _refuse(str(err))
        sub = mon.subscribe(services=[SETTINGS_SERVICE, STATUS_SERVICE])
        try:
            try:
                code = await mon.set_value(SETTINGS_SERVICE, path, value, timeout=5.0)
            except (BusError, DBusCallError) as err:
                return _refuse(f"localsettings did not answer: {err}", 503)
            if code != 0:
                lo, hi = self.state.bounds.get(path, (None, None))
                rng = f" (allowed {lo:g}..{hi:g})" if lo is not None and hi is not None else ""
                return _refuse(f"localsettings refused {value!r}{rng}")
            refused = await self._settled(sub, path, value)
        finally:
            mon.unsubscribe(sub)
        if refused is not None:
            return _refuse(refused, 409, value=mon.get(SETTINGS_SERVICE, path))
        return web.json_response({"ok": True, "value": value})

    def _rate_limit(self, session: str) -> None:
        count, window = _WRITES
        now = self.clock.monotonic()
        times = self._writes.setdefault(session, deque(maxlen=count))
        if len(times) == count and now - times[0] < window:
            raise web.HTTPTooManyRequests(
                text=json.dumps({"ok": False, "error": "too many changes; wait a few seconds"}),
                content_type="application/json",
            )
        times.append(now)
        if len(self._writes) > 64:  # sessions are bounded; forget writers that are gone
            for token in [t for t in self._writes if not self.live(t)]:
                del self._writes[token]

    async def _settled(self, sub: Subscription, path: str, value: object) -> str | None:
        """Wait briefly for the owning feature's verdict: None if kept, else its reason.

        A refusal shows as the feature's message naming the path and the old value put back;
        the two come from different services, so they may arrive in either order.
        """
        put_back: object = None
        reason: str | None = None
        with anyio.move_on_after(_SETTLE_S):
            async for changes in sub:
                for (service, p), v in changes.items():
                    if service == SETTINGS_SERVICE and p == path and v != value:
                        put_back = v
                    elif (
                        service == STATUS_SERVICE
                        and p.endswith("/Message")
                        and isinstance(v, str)
                        and path in v
                    ):
                        reason = v
                if reason is not None and put_back is not None:
                    break  # the answer then carries the value really kept
        if reason is not None:
            return reason
        if put_back is not None:
            return self._complaint(path) or f"put back to {put_back!r} by venus-ems"
        return None

    def _complaint(self, path: str) -> str | None:
        svc = self.state.monitor.service(STATUS_SERVICE)
        if svc is None:
            return None
        for p, v in svc.values.items():
            if p.endswith("/Message") and isinstance(v, str) and path in v:
                return v
        return None
