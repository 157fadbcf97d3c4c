"""Helpers for the water heater tests: the simulated GX with its tank and emulated heating rod.

``heater_site`` runs a scenario with the Heizstab emulator (Modbus TCP, RTU over TCP or RTU on
a pty) on a stepped clock with the daemon in process; ``config_text`` is the feature's TOML.
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
from venus_ems.venus import Monitor, open_monitor

ACLOAD = "com.victronenergy.acload.venusems_water_heater"
SENSOR = "com.victronenergy.temperature.venusems_water_heater"
STATUS = "com.victronenergy.venusems"
FEATURE = "/Features/water_heater"


def heater_host(sim: SimHandles, transport: str) -> str:
    """The emulator's address as the config names it."""
    assert sim.heater is not None
    return sim.heater.rtu_path if transport == "rtu" else f"127.0.0.1:{sim.heater.port}"


def config_text(
    host: str, transport: str, state_dir: Path, extra: str = "", shutdown_s: float = 2.0
) -> str:
    """The daemon's TOML for the emulated heater at ``host``."""
    return (
        "schema_version = 1\n"
        "[general]\nlog_console = true\nlog_level = 'WARNING'\n"
        f"state_dir = '{state_dir}'\nrestart_backoff_initial_s = 1.0\nrestart_backoff_max_s = 2.0\n"
        f"shutdown_timeout_s = {shutdown_s}\n"
        "[water_heater]\nenabled = true\n"
        f'host = "{host}"\ntransport = "{transport}"\ntimeout_s = 0.5\npoll_interval_s = 1.0\n'
        "up_delay_s = 5.0\ndown_delay_s = 3.0\nmin_switch_interval_s = 10.0\n" + extra + "\n"
    )


@dataclass
class HeaterSite:
    sim: SimHandles
    clock: SteppedClock
    mon: Monitor

    async def run(self, seconds: float) -> None:
        """Advance simulated time second by second, giving the bus and Modbus time to work."""
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

    @property
    def tank(self) -> Any:
        tank = self.sim.gx.site.tank
        assert tank is not None
        return tank

    @property
    def rod_w(self) -> float:
        """W of the rod's stages the SSRs switch on now."""
        tank = self.tank
        return float(
            sum(w for w, on in zip(tank.params.stage_powers_w, tank.elements, strict=True) if on)
        )

    def load(self, path: str) -> Any:
        return self.mon.get(ACLOAD, path)

    def status(self, path: str) -> Any:
        return self.mon.get(STATUS, f"{FEATURE}/{path}")


@asynccontextmanager
async def heater_site(
    bus_address: str,
    tmp_path: Path,
    *,
    transport: str = "tcp",
    extra: str = "",
    scenario: str = "summer-sunny",
    start_s: float = 12 * 3600.0,
    tank_c: float | None = None,
    full_battery: bool = True,
) -> AsyncIterator[HeaterSite]:
    clock = SteppedClock()
    async with running_site(
        scenario,
        address=bus_address,
        clock=clock,
        start_s=start_s,
        heater=transport,  # type: ignore[arg-type]
        settings={"/Settings/CGwacs/OvervoltageFeedIn": 1} if full_battery else None,
    ) as sim:
        if full_battery:  # the surplus goes to the grid, not into the battery
            sim.gx.site.battery.set_soc(100.0)
        if tank_c is not None:
            assert sim.gx.site.tank is not None
            sim.gx.site.tank.temperature_c = tank_c
        text = config_text(heater_host(sim, transport), transport, tmp_path / "state", extra)
        config, _ = parse_config(text)
        async with open_monitor(bus_address) as mon, anyio.create_task_group() as tg:
            await tg.start(
                lambda task_status: run_daemon(
                    config, bus_address=bus_address, clock=clock, task_status=task_status
                )
            )
            site = HeaterSite(sim, clock, mon)
            try:
                yield site
            finally:
                tg.cancel_scope.cancel()
