"""``venus-ems demo``: the simulated GX, its emulated devices and the venus-ems daemon, live.

The daemon runs with ``demo.toml`` (in this package), filled in with the emulators' addresses;
the ``micro-inverters`` scenario uses ``demo_micro.toml`` instead (zero feed-in with the
battery-fed micro-inverters behind the emulated OpenDTU; ESS control off, the Multi passes the
grid through), ``surplus-three`` ``demo_surplus.toml`` (the surplus distributor and three
loads behind emulated Shellys), ``ev-charging`` ``demo_ev.toml`` (``demo.toml`` plus the
emulated Wattpilot as ``[ev_charger]`` and ``[no_battery_to_ev]``). Features this venus-ems
does not have yet are left out with a note. One status line per second shows what the GX and
venus-ems see.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from importlib.resources import files

import anyio

from ..clock import Clock
from ..daemon import run_daemon
from ..features import REGISTRY
from ..runtime.config import Config, WebConfig, parse_config
from ..runtime.statusline import format_status
from ..venus import open_monitor
from ..web import WebServer
from .run import running_site, time_of_day

__all__ = ["DEMO_CONFIGS", "demo_config", "run_demo"]

DEMO_CONFIGS = {
    "micro-inverters": "demo_micro.toml",
    "surplus-three": "demo_surplus.toml",
    "ev-charging": "demo_ev.toml",
}
"""Scenario -> the demo configuration it runs with (default ``demo.toml``)."""


def demo_config(
    shelly_host: str,
    opendtu_host: str = "",
    state_dir: str = "",
    *,
    scenario: str = "",
    relay_hosts: Mapping[str, str] | None = None,
    wattpilot: tuple[str, str] = ("", ""),
) -> tuple[Config, list[str]]:
    """The demo's config (features this build lacks removed) and notes about what was removed.

    ``relay_hosts`` fills ``{relay:<name>}`` with the address of the Shelly in front of each
    switched load.
    """
    name = DEMO_CONFIGS.get(scenario, "demo.toml")
    template = files("venus_ems.sim").joinpath(name).read_text()
    text = (
        template.replace("{shelly_host}", shelly_host)
        .replace("{opendtu_host}", opendtu_host)
        .replace("{state_dir}", state_dir)
        .replace("{wattpilot_host}", wattpilot[0])
        .replace("{wattpilot_password}", wattpilot[1])
    )
    for relay, host in (relay_hosts or {}).items():
        text = text.replace(f"{{relay:{relay}}}", host)
    config, _ = parse_config(text, source="demo.toml")
    missing = {name.partition(".")[0] for name in config.enabled_features()} - set(REGISTRY)
    notes = [f"[{t}] left out: not available in this build yet" for t in sorted(missing)]
    if missing:
        config = config.model_copy(update={t: Config.model_fields[t].default for t in missing})
    return config, notes


async def run_demo(
    address: str,
    clock: Clock,
    *,
    scenario: str,
    start_s: float,
    state_dir: str,
    seconds: float = math.inf,
    control_port: int = 0,
    web: WebConfig | None = None,
) -> None:
    """Run everything and print a status line per second until ``seconds`` pass or cancelled.

    With ``web`` the dashboard is served too (on the site's clock for its history).
    """
    async with running_site(
        scenario,
        address=address,
        clock=clock,
        start_s=start_s,
        external_meter="grid_meter" in REGISTRY,
        control_port=control_port,
    ) as sim:
        config, notes = demo_config(
            f"127.0.0.1:{sim.shelly.port}",
            f"127.0.0.1:{sim.opendtu.port}" if sim.opendtu else "",
            state_dir,
            scenario=scenario,
            relay_hosts={n: f"127.0.0.1:{e.port}" for n, e in sim.relays.items()},
            wattpilot=(sim.wattpilot.host, sim.wattpilot.password) if sim.wattpilot else ("", ""),
        )
        print(sim.describe())
        for note in notes:
            print(f"note: {note}")
        print(f"scenario {scenario}, starting at {start_s / 3600:05.2f} h; Ctrl-C stops.")
        extras = [] if web is None else [WebServer(web, clock)]
        async with anyio.create_task_group() as tg, open_monitor(address) as mon:
            await tg.start(
                lambda task_status: run_daemon(
                    config,
                    bus_address=address,
                    clock=clock,
                    extras=extras,
                    task_status=task_status,
                )
            )
            for server in extras:
                print(f"dashboard: {server.url}", flush=True)
            t0 = clock.monotonic()
            while clock.monotonic() - t0 < seconds:
                print(format_status(mon, time_of_day(sim.gx.site.time)), flush=True)
                await clock.sleep(1.0)
            tg.cancel_scope.cancel()
