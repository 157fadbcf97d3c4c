"""The dashboard's HTTP side: pages, JSON API, live updates (server-sent events), and security.

Security rules (docs/dashboard.md):

* with a password every page and API needs a session (cookie ``venus_ems_session``: random
  256 bits, HttpOnly, SameSite=Strict); without one (loopback only, enforced by the config)
  a session is handed out on the first page load, and only to requests whose ``Host`` is a
  loopback name, so a DNS-rebinding page cannot use it;
* every write (``POST``) needs the session's CSRF token in ``X-CSRF-Token``, and a POST whose
  ``Origin`` is another site is refused;
* failed logins are rate-limited (:class:`~.auth.LoginLimiter`); bodies are capped at 4 KiB;
  at most ``max_clients`` live streams; writes per session are limited to 10 per 10 s;
* only localsettings paths under ``/Settings/VenusEms/`` that already exist can be written,
  with the type they have; the feature that owns a value validates it and puts back what it
  refuses, and the answer says so.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Awaitable, Callable
from importlib.resources import files
from urllib.parse import parse_qs

import anyio
from aiohttp import web

from ..clock import Clock, RealClock
from ..runtime.config import WebConfig, is_local_host
from ..runtime.passwords import PasswordHash, parse_hash, verify_password
from .auth import LoginLimiter, Session, Sessions
from .state import DashboardState
from .writes import SettingWriter

__all__ = ["COOKIE", "MAX_BODY", "build_app"]

COOKIE = "venus_ems_session"
MAX_BODY = 4096
_STATIC = {
    "app.js": "text/javascript",
    "app.css": "text/css",
    "icon.svg": "image/svg+xml",
}
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_HEARTBEAT_S = 15.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _asset(name: str) -> bytes:
    return files("venus_ems.web").joinpath("static").joinpath(name).read_bytes()


class Dashboard:
    """Request handlers around one :class:`DashboardState`."""

    def __init__(
        self, config: WebConfig, state: DashboardState, *, clock: Clock | None = None
    ) -> None:
        """Load the assets and the password hash once; ``clock`` times sessions and limits.

        Sessions, login and write limits are about people, so they run on real time
        (:class:`RealClock`) even when the site runs on a scaled or stepped clock.
        """
        self.config = config
        self.state = state
        clock = clock or RealClock()
        self.clock = clock
        self.sessions = Sessions(clock, ttl_s=config.session_ttl_s)
        self.limiter = LoginLimiter(clock)
        secret = config.password_hash
        self.password: PasswordHash | None = (
            None if secret is None else parse_hash(secret.get_secret_value())
        )
        self.assets = {name: _asset(name) for name in _STATIC}
        self.index_page = _asset("index.html")
        self.login_page = _asset("login.html").decode()
        self.streams = 0
        self._hashing = anyio.CapacityLimiter(1)
        self.writer = SettingWriter(state, clock, live=lambda t: self.sessions.get(t) is not None)

    # ----------------------------------------------------------------- helpers

    def session_of(self, request: web.Request) -> Session | None:
        """The request's live session, if any."""
        return self.sessions.get(request.cookies.get(COOKIE))

    def _with_cookie(self, resp: web.StreamResponse, session: Session) -> None:
        resp.set_cookie(
            COOKIE,
            session.token,
            httponly=True,
            samesite="Strict",
            path="/",
            max_age=int(self.config.session_ttl_s),
        )

    def _need_session(self, request: web.Request) -> Session:
        s = self.session_of(request)
        if s is None:
            raise web.HTTPUnauthorized(
                text=json.dumps({"ok": False, "error": "log in first"}),
                content_type="application/json",
            )
        return s

    def _need_csrf(self, request: web.Request, session: Session) -> None:
        if not session.csrf_ok(request.headers.get("X-CSRF-Token")):
            raise web.HTTPForbidden(
                text=json.dumps({"ok": False, "error": "missing or wrong CSRF token"}),
                content_type="application/json",
            )

    @staticmethod
    async def _body(request: web.Request) -> bytes:
        if request.content_length is not None and request.content_length > MAX_BODY:
            raise web.HTTPRequestEntityTooLarge(
                max_size=MAX_BODY, actual_size=request.content_length
            )
        body = await request.content.read(MAX_BODY + 1)
        if len(body) > MAX_BODY:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=len(body))
        return body

    # ----------------------------------------------------------------- pages

    async def index(self, request: web.Request) -> web.StreamResponse:
        """The dashboard (a login redirect when a password is set and there is no session)."""
        session = self.session_of(request)
        if session is None and self.password is not None:
            raise web.HTTPSeeOther("/login")
        resp = web.Response(body=self.index_page, content_type="text/html", charset="utf-8")
        if session is None:
            self._with_cookie(resp, self.sessions.create())
        return resp

    async def asset(self, request: web.Request) -> web.StreamResponse:
        """A file shipped in the package (no third-party assets)."""
        name = request.match_info["name"]
        if name not in self.assets:
            raise web.HTTPNotFound
        return web.Response(
            body=self.assets[name],
            content_type=_STATIC[name],
            headers={"Cache-Control": "no-cache"},
        )

    def _login_page(self, error: str = "", status: int = 200) -> web.Response:
        text = self.login_page.replace("{error}", html.escape(error))
        return web.Response(text=text, content_type="text/html", status=status)

    async def login_form(self, request: web.Request) -> web.StreamResponse:
        """The login page (straight to the dashboard when no password is configured)."""
        if self.password is None or self.session_of(request) is not None:
            raise web.HTTPSeeOther("/")
        return self._login_page()

    async def login(self, request: web.Request) -> web.StreamResponse:
        """Check the password (rate-limited); set the session cookie."""
        if self.password is None:
            raise web.HTTPSeeOther("/")
        client = request.remote or "?"
        wait = self.limiter.retry_after(client)
        if wait > 0:
            resp = self._login_page(f"Too many attempts: try again in {math.ceil(wait)} s.", 429)
            resp.headers["Retry-After"] = str(math.ceil(wait))
            return resp
        body = await self._body(request)
        try:
            fields = parse_qs(body.decode("utf-8", errors="replace"), max_num_fields=4)
        except ValueError:
            fields = {}
        password = (fields.get("password") or [""])[0]
        stored = self.password
        async with self._hashing:  # one scrypt at a time: bounded memory on a small GX
            ok = await anyio.to_thread.run_sync(verify_password, password, stored)
        if not ok:
            self.limiter.failed(client)
            return self._login_page("Wrong password.", 401)
        self.limiter.succeeded(client)
        resp = web.Response(status=303, headers={"Location": "/"})
        self._with_cookie(resp, self.sessions.create())
        return resp

    async def logout(self, request: web.Request) -> web.StreamResponse:
        """End the session (CSRF-checked like every write)."""
        session = self._need_session(request)
        self._need_csrf(request, session)
        self.sessions.drop(session.token)
        resp = web.json_response({"ok": True})
        resp.del_cookie(COOKIE, path="/")
        return resp

    # ----------------------------------------------------------------- API

    async def session_info(self, request: web.Request) -> web.StreamResponse:
        """The CSRF token of this session, and whether logging out makes sense."""
        session = self._need_session(request)
        return web.json_response({"csrf": session.csrf, "password": self.password is not None})

    async def snapshot(self, request: web.Request) -> web.StreamResponse:
        """Everything the page shows, as JSON."""
        self._need_session(request)
        return web.Response(text=self.state.snapshot_json(), content_type="application/json")

    async def history(self, request: web.Request) -> web.StreamResponse:
        """The kept history points ``[[seq, t, {series: value}], ...]``."""
        self._need_session(request)
        points = [p.as_json() for p in self.state.history.points]
        return web.json_response(
            {
                "interval_s": self.state.history.interval_s,
                "span_s": self.config.history_s,
                "points": points,
            }
        )

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: a snapshot and new history points on each change, rate-limited."""
        self._need_session(request)
        if self.streams >= self.config.max_clients:
            raise web.HTTPServiceUnavailable(text="too many open dashboards")
        self.streams += 1
        try:
            resp = web.StreamResponse(
                headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
            )
            await resp.prepare(request)
            await self._stream(resp)
        finally:
            self.streams -= 1
        return resp

    async def _stream(self, resp: web.StreamResponse) -> None:
        state = self.state
        seq = 0
        sent_generation = -1
        while True:
            if state.generation != sent_generation:
                sent_generation = state.generation
                points = [p.as_json() for p in state.history.since(seq)]
                seq = state.history.seq
                payload = state.snapshot_json()
                text = f'{{"view":{payload},"points":{json.dumps(points, allow_nan=False)}}}'
                await resp.write(f"data: {text}\n\n".encode())
                # Pacing is for the person watching, so it is real time even when the site
                # runs on a scaled or stepped clock (the demo, tests).
                await anyio.sleep(self.config.update_interval_s)
                continue
            with anyio.move_on_after(_HEARTBEAT_S):
                await state.changed.wait()
                continue
            await resp.write(b": keep-alive\n\n")

    async def write_setting(self, request: web.Request) -> web.StreamResponse:
        """Write one tunable through localsettings; report whether its feature kept it."""
        session = self._need_session(request)
        self._need_csrf(request, session)
        return await self.writer.write(session.token, await self._body(request))


def build_app(dashboard: Dashboard) -> web.Application:
    """The aiohttp application with its routes and security middleware."""
    loopback_only = dashboard.password is None

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        host = (request.host or "").rsplit(":", 1)[0].strip("[]")
        if loopback_only and not is_local_host(host):
            raise web.HTTPMisdirectedRequest(text="open the dashboard as http://127.0.0.1:PORT/")
        if request.method not in ("GET", "HEAD"):
            origin = request.headers.get("Origin")
            if origin is not None and origin != f"{request.scheme}://{request.host}":
                raise web.HTTPForbidden(text="cross-site request refused")
        try:
            resp = await handler(request)
        except web.HTTPException as err:
            _secure(err)
            raise
        _secure(resp)
        return resp

    app = web.Application(middlewares=[guard], client_max_size=MAX_BODY)
    d = dashboard
    app.router.add_get("/", d.index)
    app.router.add_get("/login", d.login_form)
    app.router.add_post("/login", d.login)
    app.router.add_post("/logout", d.logout)
    app.router.add_get("/static/{name}", d.asset)
    app.router.add_get("/api/session", d.session_info)
    app.router.add_get("/api/state", d.snapshot)
    app.router.add_get("/api/history", d.history)
    app.router.add_get("/api/events", d.events)
    app.router.add_post("/api/settings", d.write_setting)
    return app


def _secure(resp: web.StreamResponse) -> None:
    if resp.prepared:
        return
    h = resp.headers
    h.setdefault("Content-Security-Policy", _CSP)
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("Referrer-Policy", "same-origin")  # no-referrer makes forms send Origin: null
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("Cache-Control", "no-store")
