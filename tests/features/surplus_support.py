"""The simulated GX of scenario ``surplus-three`` with its three loads behind real Shellys.

pool-pump (750 W) behind a Shelly Plus 1PM (gen2 RPC), heater (2000 W) behind a Shelly 1PM
(gen1 REST), dryer (1200 W) behind another Shelly 1PM driven as a *generic HTTP* consumer
(its REST URLs and JSON fields). The daemon runs with ``[surplus]`` on the same stepped clock.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
from test_ess_control_support import Site, daemon_config

from venus_ems.clock import SteppedClock
from venus_ems.daemon import run_daemon
from venus_ems.features.surplus import Surplus
from venus_ems.runtime.config import SurplusConfig
from venus_ems.sim.devices import ShellyGen1Emulator, plus_1pm
from venus_ems.sim.venus.gx import SimulatedGx
from venus_ems.sim.wiring import SiteRelay
from venus_ems.venus import open_monitor
from waiting import bus_watch

ACLOAD = "com.victronenergy.acload.venusems_surplus_"


def consumers(urls: dict[str, str], **overrides: Any) -> list[dict[str, Any]]:
    """The three consumers' config tables (priority: pool 10, heater 20, dryer 30)."""
    dryer = urls["dryer"]
    common = {"min_on_s": 30.0, "min_off_s": 30.0, "poll_interval_s": 2.0, "timeout_s": 1.0}
    out = [
        {"name": "pool", "driver": "shelly", "host": urls["pool-pump"].removeprefix("http://"),
         "power_w": 750.0, "priority": 10, **common},
        {"name": "heater", "driver": "shelly", "host": urls["heater"].removeprefix("http://"),
         "generation": 1, "power_w": 2000.0, "priority": 20, **common},
        {"name": "dryer", "driver": "http", "on_url": f"{dryer}/relay/0?turn=on",
         "off_url": f"{dryer}/relay/0?turn=off", "status_url": f"{dryer}/relay/0",
         "status_field": "ison", "power_url": f"{dryer}/meter/0", "power_field": "power",
         "power_w": 1200.0, "priority": 30, **common},
    ]  # fmt: skip
    for c in out:
        c.update(overrides.get(c["name"], {}))
    return out


@asynccontextmanager
async def surplus_site(
    bus_address: str,
    *,
    start_s: float = 12 * 3600,
    relays_on: tuple[str, ...] = (),
    state_dir: str | None = None,
    mqtt_port: int | None = None,
    extra: list[dict[str, Any]] | None = None,
    others: list[tuple[str, Any]] | None = None,
    **table: Any,
) -> AsyncIterator[tuple[Site, Surplus]]:
    """The site running; ``relays_on``: loads a previous run left on (before the daemon)."""
    clock = SteppedClock()
    gx = SimulatedGx(
        "surplus-three",
        address=bus_address,
        clock=clock,
        start_s=start_s,
        settings={"overvoltage_feed_in": 1},  # es-ESS needed feed-in to see surplus at 100 %
    )
    for name in relays_on:
        gx.site.set_relay(name, True)
    tmp = tempfile.TemporaryDirectory(prefix="venus-ems-state-")
    mqtt = (
        ""
        if mqtt_port is None
        else f"[mqtt]\nenabled = true\nhost = '127.0.0.1'\nport = {mqtt_port}\n"
        "reconnect_initial_s = 0.05\nreconnect_max_s = 0.2\n"
    )
    config = daemon_config(mqtt)
    general = config.general.model_copy(update={"state_dir": state_dir or tmp.name})
    config = config.model_copy(update={"general": general})
    try:
        async with AsyncExitStack() as stack:
            emus = {
                "pool-pump": plus_1pm(SiteRelay(gx.site, "pool-pump"), clock=clock),
                "heater": ShellyGen1Emulator(
                    "SHSW-PM", switch=SiteRelay(gx.site, "heater"), clock=clock
                ),
                "dryer": ShellyGen1Emulator(
                    "SHSW-PM", switch=SiteRelay(gx.site, "dryer"), clock=clock
                ),
            }
            for emu in emus.values():
                await stack.enter_async_context(emu)
            urls = {n: e.url for n, e in emus.items()}
            overrides = table.pop("overrides", {})
            table.setdefault("interval_s", 5.0)
            # the pre-D51 keep rules: these tests time clouds against a 100 W hysteresis and no
            # battery buffer (the buffer's rule is tested in tests/control)
            table.setdefault("hysteresis_w", 100.0)
            table.setdefault("borrow_s", 0.0)
            table.setdefault("reservation_points", ((0.0, 500.0), (100.0, 500.0)))
            tables = consumers(urls, **overrides) + list(extra or [])
            cfg = SurplusConfig(enabled=True, consumer=tables, **table)
            feature = Surplus(cfg)
            async with anyio.create_task_group() as tg, bus_watch(bus_address) as bus:
                await tg.start(gx.run)
                async with open_monitor(bus_address) as mon:
                    site = Site(gx, clock, mon, bus)
                    site.emus = emus  # type: ignore[attr-defined]
                    async with anyio.create_task_group() as daemon:
                        await daemon.start(
                            lambda task_status: run_daemon(
                                config,
                                bus_address=bus_address,
                                clock=clock,
                                features=[("surplus", feature), *(others or [])],
                                task_status=task_status,
                            )
                        )
                        await site.run(1)
                        try:
                            yield site, feature
                        finally:
                            daemon.cancel_scope.cancel()
                tg.cancel_scope.cancel()
    finally:
        tmp.cleanup()


def relays(site: Site) -> dict[str, bool]:
    """Which loads the physics has on."""
    return {n: r.on for n, r in site.gx.site.relays.items()}
