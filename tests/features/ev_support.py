"""Helpers for the EV feature tests: the ev-charging day with its emulated Wattpilot, real time.

``ev_site`` runs the simulated GX (real D-Bus) and the Wattpilot emulator (real websocket) on the
real clock with the daemon in process; ``config_text`` is the daemon's TOML for that charger.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from venus_ems.clock import RealClock
from venus_ems.daemon import run_daemon
from venus_ems.runtime.config import parse_config
from venus_ems.sim.run import SimHandles, running_site
from venus_ems.venus import Monitor, open_monitor

EVCS = "com.victronenergy.evcharger.venusems_wattpilot"
STATUS = "com.victronenergy.venusems"
FAST = (
    "start_delay_s = 0\nstop_delay_s = 0\nup_delay_s = 0\ndown_delay_s = 0\n"
    "min_on_off_s = 0\nmin_phase_switch_s = 60\nstale_input_s = 6\n"
)


def config_text(sim: SimHandles, state_dir: Path, ev: str = "", extra: str = "") -> str:
    """The daemon's TOML: [ev_charger] on the emulated Wattpilot plus ``ev`` keys, ``extra``."""
    wp = sim.wattpilot
    assert wp is not None
    return (
        "schema_version = 1\n"
        "[general]\nlog_console = true\nlog_level = 'WARNING'\n"
        f"state_dir = '{state_dir}'\nrestart_backoff_initial_s = 1.0\n"
        "restart_backoff_max_s = 2.0\nshutdown_timeout_s = 10.0\n"
        f'[ev_charger]\nenabled = true\nhost = "{wp.host}"\npassword = "{wp.password}"\n'
        + ev
        + "\n"
        + extra
    )


@dataclass
class EvSite:
    sim: SimHandles
    mon: Monitor

    @property
    def ev(self) -> Any:
        return self.sim.gx.site.ev

    def evcs(self, path: str) -> Any:
        return self.mon.get(EVCS, path)

    def status(self, path: str) -> Any:
        return self.mon.get(STATUS, path)

    async def until(self, predicate: Callable[[], bool], seconds: float = 20.0) -> None:
        with anyio.fail_after(seconds):
            while not predicate():
                await anyio.sleep(0.1)


@asynccontextmanager
async def ev_site(
    bus_address: str,
    tmp_path: Path,
    *,
    ev: str = "",
    extra: str = "",
    start_s: float = 10.5 * 3600.0,
    features: Callable[[SimHandles], list[tuple[str, Any]]] | None = None,
) -> AsyncIterator[EvSite]:
    clock = RealClock()
    async with running_site(
        "ev-charging", address=bus_address, clock=clock, start_s=start_s
    ) as sim:
        config, _ = parse_config(config_text(sim, tmp_path / "state", ev, extra))
        async with open_monitor(bus_address) as mon, anyio.create_task_group() as tg:
            await tg.start(
                lambda task_status: run_daemon(
                    config,
                    bus_address=bus_address,
                    clock=clock,
                    features=None if features is None else features(sim),
                    task_status=task_status,
                )
            )
            try:
                yield EvSite(sim, mon)
            finally:
                tg.cancel_scope.cancel()
