"""Sessions, CSRF tokens and login rate limiting for the dashboard (memory bounded, clock-driven).

A session is a random 256-bit token in an HttpOnly, SameSite=Strict cookie; each session has its
own CSRF token, which every write must echo in the ``X-CSRF-Token`` header. Failed logins are
limited per client address and in total, so guessing costs minutes per handful of tries even
from many addresses.
"""

from __future__ import annotations

import hmac
import secrets
from collections import OrderedDict, deque
from dataclasses import dataclass

from ..clock import Clock

__all__ = ["LoginLimiter", "Session", "Sessions"]


@dataclass
class Session:
    """One logged-in browser: its CSRF token and when it expires (clock seconds)."""

    token: str
    csrf: str
    expires_at: float

    def csrf_ok(self, presented: str | None) -> bool:
        """Constant-time check of a presented CSRF token."""
        return presented is not None and hmac.compare_digest(presented, self.csrf)


class Sessions:
    """At most ``limit`` live sessions; the oldest is dropped when a new one does not fit."""

    def __init__(self, clock: Clock, *, ttl_s: float, limit: int = 32) -> None:
        """Sessions last ``ttl_s`` seconds of ``clock`` time."""
        self.clock = clock
        self.ttl_s = ttl_s
        self.limit = limit
        self._by_token: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        """Live sessions (expired ones are dropped lazily)."""
        return len(self._by_token)

    def create(self) -> Session:
        """A new session with fresh random tokens."""
        self._expire()
        while len(self._by_token) >= self.limit:
            self._by_token.popitem(last=False)
        s = Session(
            secrets.token_urlsafe(32),
            secrets.token_urlsafe(32),
            self.clock.monotonic() + self.ttl_s,
        )
        self._by_token[s.token] = s
        return s

    def get(self, token: str | None) -> Session | None:
        """The live session for a cookie value, or None (unknown, expired or malformed)."""
        if not token or len(token) > 128:
            return None
        s = self._by_token.get(token)
        if s is None:
            return None
        if self.clock.monotonic() >= s.expires_at:
            del self._by_token[token]
            return None
        return s

    def drop(self, token: str) -> None:
        """Log a session out."""
        self._by_token.pop(token, None)

    def _expire(self) -> None:
        now = self.clock.monotonic()
        for token in [t for t, s in self._by_token.items() if now >= s.expires_at]:
            del self._by_token[token]


class LoginLimiter:
    """Failed logins: ``per_client`` per ``window_s`` per address, ``total`` for everyone."""

    def __init__(
        self,
        clock: Clock,
        *,
        per_client: int = 5,
        total: int = 20,
        window_s: float = 300.0,
        clients: int = 256,
    ) -> None:
        """Remember at most ``clients`` addresses (the least recently failed is forgotten)."""
        self.clock = clock
        self.per_client = per_client
        self.total = total
        self.window_s = window_s
        self.clients = clients
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._all: deque[float] = deque()

    def retry_after(self, client: str) -> float:
        """Seconds until ``client`` may try again (0 = now)."""
        now = self.clock.monotonic()
        cutoff = now - self.window_s
        while self._all and self._all[0] <= cutoff:
            self._all.popleft()
        waits = [0.0]
        if len(self._all) >= self.total:
            waits.append(self._all[0] + self.window_s - now)
        mine = self._failures.get(client)
        if mine is not None:
            while mine and mine[0] <= cutoff:
                mine.popleft()
            if not mine:
                del self._failures[client]
            elif len(mine) >= self.per_client:
                waits.append(mine[0] + self.window_s - now)
        return max(waits)

    def failed(self, client: str) -> None:
        """Count one failed attempt."""
        now = self.clock.monotonic()
        self._all.append(now)
        while len(self._all) > self.total:
            self._all.popleft()
        mine = self._failures.pop(client, None) or deque(maxlen=self.per_client)
        mine.append(now)
        self._failures[client] = mine
        while len(self._failures) > self.clients:
            self._failures.popitem(last=False)

    def succeeded(self, client: str) -> None:
        """A good password clears the client's failures."""
        self._failures.pop(client, None)
