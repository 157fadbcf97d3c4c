"""The dashboard server: started by the daemon after MQTT, reading the daemon's shared Monitor.

``WebServer(config.web, clock)`` is handed to :func:`venus_ems.daemon.run_daemon` as an extra
component; ``run(monitor)`` listens on ``host:port`` and serves until cancelled. A port that
cannot be bound is logged and tried again (1, 2, 4 … 60 s): the dashboard never stops the
daemon from controlling the site.
"""

from __future__ import annotations

import logging

import anyio
from aiohttp import web
from anyio.abc import TaskStatus

from ..clock import Clock
from ..runtime.config import WebConfig
from ..venus import Monitor
from .app import Dashboard, build_app
from .state import DashboardState

__all__ = ["WebServer"]

_LOG = logging.getLogger(__name__)


class WebServer:
    """The dashboard as a daemon component."""

    name = "web"

    def __init__(
        self, config: WebConfig, clock: Clock, *, human_clock: Clock | None = None
    ) -> None:
        """``clock`` is the site's clock (history); ``human_clock`` times sessions and limits."""
        self.config = config
        self.clock = clock
        self.human_clock = human_clock
        self.port: int | None = None
        self.dashboard: Dashboard | None = None

    @property
    def url(self) -> str:
        """Where the dashboard listens (once started)."""
        host = self.config.host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}/"

    async def run(
        self, monitor: Monitor, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve until cancelled; started once the first bind was tried."""
        cfg = self.config
        state = DashboardState(
            monitor, self.clock, history_s=cfg.history_s, sample_interval_s=cfg.sample_interval_s
        )
        self.dashboard = Dashboard(cfg, state, clock=self.human_clock)
        runner = web.AppRunner(
            build_app(self.dashboard),
            handle_signals=False,
            access_log=None,
            shutdown_timeout=0.5,
            handler_cancellation=True,
        )
        await runner.setup()
        try:
            async with anyio.create_task_group() as tg:
                await tg.start(state.run)
                delay, started = 1.0, False
                while not await self._listen(runner):
                    if not started:
                        started = True
                        task_status.started()
                    await anyio.sleep(delay)  # real time: a busy port frees in real time
                    delay = min(delay * 2, 60.0)
                if not started:
                    task_status.started()
                await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(2.0):
                await runner.cleanup()

    async def _listen(self, runner: web.AppRunner) -> bool:
        cfg = self.config
        site = web.TCPSite(runner, cfg.host, cfg.port, reuse_address=True)
        try:
            await site.start()
        except OSError as err:
            _LOG.error(
                "dashboard: cannot listen on %s:%d: %s; trying again", cfg.host, cfg.port, err
            )
            return False
        self.port = int(runner.addresses[0][1]) if cfg.port == 0 else cfg.port
        _LOG.info("dashboard on %s", self.url)
        return True
