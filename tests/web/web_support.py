"""A simulated GX, the daemon with two features and the dashboard, on one stepped clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import anyio

from venus_ems.clock import SteppedClock
from venus_ems.daemon import run_daemon
from venus_ems.features.ess_control import EssControl
from venus_ems.runtime.config import EssControlConfig, WebConfig, parse_config
from venus_ems.runtime.passwords import hash_password
from venus_ems.sim.venus.gx import SimulatedGx
from venus_ems.web import WebServer

SETTINGS = "com.victronenergy.settings"
STATUS = "com.victronenergy.venusems"
TARGET = "/Settings/VenusEms/EssControl/TargetW"
PASSWORD = "correct horse battery"
_HASH = hash_password(PASSWORD, log2_n=10)  # cheap parameters: tests log in many times


class OneShot:
    """A feature that reports once and returns: the supervisor shows it as stopped."""

    name = "one_shot"

    async def run(self, ctx: Any, *, task_status: Any) -> None:
        ctx.report("done", ["nothing left to do"])
        task_status.started()


@dataclass
class WebSite:
    """The running pieces and a clock that tests move."""

    gx: SimulatedGx
    clock: SteppedClock
    human: SteppedClock
    server: WebServer

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    async def run(self, seconds: float, real_s: float = 0.01) -> None:
        """Advance simulated time second by second, letting the bus deliver."""
        for _ in range(round(seconds)):
            await self.clock.advance(1.0)
            await anyio.sleep(real_s)

    async def tick_forever(self, real_s: float = 0.05) -> None:
        """Keep the site running (1 simulated s per ``real_s``): for tests driving a browser."""
        while True:
            await self.clock.advance(1.0)
            await anyio.sleep(real_s)

    def setting(self, path: str) -> Any:
        assert self.gx.local_settings is not None
        return self.gx.local_settings.get(path)


def web_config(*, password: bool = False, **extra: Any) -> WebConfig:
    fields: dict[str, Any] = {"enabled": True, "port": 0, "sample_interval_s": 5.0, **extra}
    if password:
        fields["password_hash"] = _HASH
    return WebConfig.model_validate(fields)


@asynccontextmanager
async def web_site(
    bus_address: str,
    *,
    password: bool = False,
    scenario: str = "summer-sunny",
    start_s: float = 8 * 3600,
    **web: Any,
) -> AsyncIterator[WebSite]:
    clock, human = SteppedClock(), SteppedClock()
    gx = SimulatedGx(scenario, address=bus_address, clock=clock, start_s=start_s)
    server = WebServer(web_config(password=password, **web), clock, human_clock=human)
    config, _ = parse_config("schema_version = 1\n[general]\nlog_console = false\n")
    ess = EssControl(EssControlConfig(enabled=True))
    features = [("ess_control", ess), ("one_shot", OneShot())]
    async with anyio.create_task_group() as tg:
        await tg.start(gx.run)
        await tg.start(
            lambda task_status: run_daemon(
                config,
                bus_address=bus_address,
                clock=clock,
                features=features,
                extras=[server],
                task_status=task_status,
            )
        )
        site = WebSite(gx, clock, human, server)
        await site.run(2)
        try:
            yield site
        finally:
            tg.cancel_scope.cancel()


def client() -> aiohttp.ClientSession:
    """An HTTP client that keeps cookies set by an IP address (aiohttp drops them otherwise)."""
    return aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True), timeout=aiohttp.ClientTimeout(total=10)
    )
