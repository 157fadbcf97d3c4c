"""Helpers for the micro-inverter feature tests: the simulated GX with its emulated OpenDTU.

``micro_site`` runs the ``micro-inverters`` scenario (an HM-600 and an HM-1500 fed from the
battery, the Multi passing the grid through) on a stepped clock with the daemon in process;
``config_text`` is the feature's configuration for an emulated DTU.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from venus_ems.clock import SteppedClock
from venus_ems.daemon import run_daemon
from venus_ems.runtime.config import parse_config
from venus_ems.sim.run import SimHandles, running_site
from venus_ems.sim.scenarios import MICRO_PAIR
from venus_ems.venus import Monitor, open_monitor

FAST, SLOW = (m.serial for m in MICRO_PAIR)
SAFE_W = {FAST: 18.0, SLOW: 45.0}  # 3 % of 600 W and of 1500 W
STATUS = "com.victronenergy.venusems"
FEATURE = "/Features/micro_inverter_control"
DCSYSTEM = "com.victronenergy.dcsystem.venusems_micro"


def dcload(serial: str) -> str:
    return f"com.victronenergy.dcload.venusems_micro_{serial}"


def config_text(
    port: int, state_dir: Path, extra: str = "", inverters: str = "", shutdown_s: float = 1.0
) -> str:
    """The daemon's TOML for the emulated DTU on ``port`` (both inverters battery-fed)."""
    inverters = inverters or (
        f'[[micro_inverter_control.inverters]]\nserial = "{FAST}"\n'
        f'[[micro_inverter_control.inverters]]\nserial = "{SLOW}"\n'
    )
    return (
        "schema_version = 1\n"
        "[general]\nlog_console = true\nlog_level = 'WARNING'\n"
        f"state_dir = '{state_dir}'\nrestart_backoff_initial_s = 1.0\nrestart_backoff_max_s = 2.0\n"
        f"shutdown_timeout_s = {shutdown_s}\n"
        "[micro_inverter_control]\nenabled = true\n"
        f'host = "127.0.0.1:{port}"\npassword = "openDTU42"\ntotal_cap_w = 2100.0\n'
        + extra
        + "\n"
        + inverters
    )


def limits_w(handles: SimHandles) -> dict[str, float]:
    """The limit each inverter acknowledged (W)."""
    return {s: mi.limit_w for s, mi in handles.gx.site.micros.items()}


def at_safe(handles: SimHandles) -> bool:
    """Every inverter acknowledged its safe limit."""
    return all(abs(limits_w(handles)[s] - w) < 0.5 for s, w in SAFE_W.items())


def raised(handles: SimHandles) -> bool:
    """Some inverter acknowledged a limit above its safe one (the daemon regulates)."""
    return any(limits_w(handles)[s] > w + 0.5 for s, w in SAFE_W.items())


@dataclass
class MicroSite:
    sim: SimHandles
    clock: SteppedClock
    mon: Monitor

    async def run(self, seconds: float) -> None:
        """Advance simulated time second by second, giving the bus and HTTP time to work."""
        for _ in range(round(seconds)):
            await self.clock.advance(1.0)
            await anyio.sleep(0.03)

    async def until(self, predicate: Callable[[], bool], seconds: float = 60.0) -> float:
        """Run until ``predicate()``; the simulated seconds it took (AssertionError if never)."""
        for i in range(round(seconds)):
            if predicate():
                return float(i)
            await self.run(1)
        assert predicate(), f"not within {seconds} s"
        return seconds

    def status(self, path: str) -> Any:
        return self.mon.get(STATUS, f"{FEATURE}/{path}")

    @property
    def grid_w(self) -> float:
        return sum(self.sim.gx.site.grid_w)


@asynccontextmanager
async def micro_site(
    bus_address: str,
    tmp_path: Path,
    *,
    extra: str = "",
    inverters: str = "",
    start_s: float = 19 * 3600.0,
    settings: dict[str, Any] | None = None,
    dry_run: bool = False,
) -> AsyncIterator[MicroSite]:
    clock = SteppedClock()
    async with running_site(
        "micro-inverters",
        address=bus_address,
        clock=clock,
        start_s=start_s,
        settings=settings,
    ) as sim:
        assert sim.opendtu is not None
        text = config_text(sim.opendtu.port, tmp_path / "state", extra, inverters)
        config, _ = parse_config(text)
        async with open_monitor(bus_address) as mon, anyio.create_task_group() as tg:
            await tg.start(
                lambda task_status: run_daemon(
                    config,
                    bus_address=bus_address,
                    clock=clock,
                    dry_run=dry_run,
                    task_status=task_status,
                )
            )
            site = MicroSite(sim, clock, mon)
            try:
                yield site
            finally:
                tg.cancel_scope.cancel()
