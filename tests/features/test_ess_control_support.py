"""Shared helpers for the ESS feature tests: a simulated GX and the daemon on one stepped clock."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio

from venus_ems.clock import SteppedClock
from venus_ems.daemon import run_daemon
from venus_ems.runtime.config import Config, parse_config
from venus_ems.sim.venus.gx import SimulatedGx
from venus_ems.venus import Monitor, open_monitor
from waiting import BusWatch, bus_watch

STATUS = "com.victronenergy.venusems"
SETTINGS = "com.victronenergy.settings"
HUB4 = "com.victronenergy.hub4"
VEBUS = "com.victronenergy.vebus.ttyS4"
SYSTEM = "com.victronenergy.system"


def daemon_config(extra: str = "") -> Config:
    config, _ = parse_config(
        "schema_version = 1\n[general]\nlog_console = false\nrestart_backoff_initial_s = 1.0\n"
        "restart_backoff_max_s = 2.0\n" + extra
    )
    return config


@dataclass
class Site:
    """A running simulated GX, the daemon with our features, a monitor to look at both."""

    gx: SimulatedGx
    clock: SteppedClock
    mon: Monitor
    bus: BusWatch
    grid_log: list[tuple[float, float]] = field(default_factory=list)

    async def run(self, seconds: float) -> None:
        """Advance simulated time second by second; each second ends when the bus is settled."""
        for _ in range(round(seconds)):
            await self.clock.advance(1.0)
            await self.bus.settle()
            self.grid_log.append((self.gx.site.time, sum(self.gx.site.grid_w)))

    async def until(self, predicate: Callable[[], bool], seconds: float = 60.0) -> float:
        """Run until ``predicate()``; returns the simulated seconds it took (AssertionError)."""
        for i in range(round(seconds)):
            if predicate():
                return float(i)
            await self.run(1)
        assert predicate(), f"not within {seconds} s"
        return seconds

    def status(self, path: str) -> Any:
        return self.mon.get(STATUS, path)

    def grid_since(self, t: float) -> list[float]:
        return [w for at, w in self.grid_log if at >= t]


@asynccontextmanager
async def running(
    bus_address: str,
    features: list[tuple[str, Any]],
    *,
    scenario: str = "summer-sunny",
    start_s: float = 12 * 3600,
    settings: dict[str, Any] | None = None,
    config: Config | None = None,
    external_meter: bool = False,
) -> AsyncIterator[Site]:
    config = config or daemon_config()
    state = tempfile.TemporaryDirectory(prefix="venus-ems-state-")
    try:
        if config.general.state_dir is None:  # the output ledger goes there, not the checkout
            general = config.general.model_copy(update={"state_dir": state.name})
            config = config.model_copy(update={"general": general})
        async with _running(bus_address, features, config, scenario, start_s, settings,
                            external_meter) as site:  # fmt: skip
            yield site
    finally:
        state.cleanup()


@asynccontextmanager
async def _running(
    bus_address: str,
    features: list[tuple[str, Any]],
    config: Config,
    scenario: str,
    start_s: float,
    settings: dict[str, Any] | None,
    external_meter: bool,
) -> AsyncIterator[Site]:
    clock = SteppedClock()
    gx = SimulatedGx(
        scenario,
        address=bus_address,
        clock=clock,
        start_s=start_s,
        settings=settings,
        external_meter=external_meter,
    )
    async with anyio.create_task_group() as tg, bus_watch(bus_address) as bus:
        await tg.start(gx.run)
        async with open_monitor(bus_address) as mon:
            site = Site(gx, clock, mon, bus)
            async with anyio.create_task_group() as daemon:
                await daemon.start(
                    lambda task_status: run_daemon(
                        config,
                        bus_address=bus_address,
                        clock=clock,
                        features=features,
                        task_status=task_status,
                    )
                )
                await site.run(1)
                try:
                    yield site
                finally:
                    daemon.cancel_scope.cancel()
        tg.cancel_scope.cancel()
