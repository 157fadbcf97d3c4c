"""Issue 5 end to end on the simulated GX: a Shelly bridge as the GX's grid meter, faults, MQTT.

The simulated GX publishes no meter of its own; an emulated Shelly Pro 3EM measures the simulated
grid; venus-ems publishes it as com.victronenergy.grid; the simulated systemcalc and hub4control
follow it. Failures hold, then go invalid (never 0), then recover. The exporter's topics are seen
by Debian's mosquitto_sub.
"""

from __future__ import annotations

import anyio
import pytest
from test_mqtt_exporter_live import mosquitto_sub

from venus_ems.clock import SteppedClock
from venus_ems.daemon import run_daemon
from venus_ems.runtime.config import parse_config
from venus_ems.sim.run import running_site
from venus_ems.venus import open_monitor
from waiting import BusWatch, bus_watch

pytestmark = pytest.mark.anyio
SYSTEM = "com.victronenergy.system"
OURS = "com.victronenergy.grid.venusems_house"


def config(shelly_port: int, mqtt_port: int) -> str:
    return f"""
schema_version = 1
[general]
log_console = false
[mqtt]
enabled = true
host = "127.0.0.1"
port = {mqtt_port}
reconnect_initial_s = 0.05
reconnect_max_s = 0.2
[[grid_meter]]
name = "house"
enabled = true
host = "127.0.0.1:{shelly_port}"
generation = 2
poll_interval_s = 1.0
hold_s = 3.0
timeout_s = 0.5
[mqtt_exporter]
enabled = true
rate_limit_s = 0.0
[[mqtt_exporter.exports]]
service = "com.victronenergy.system"
prefix = "/Ac/Grid"
topic = "site/grid*"
"""


def system_grid(mon) -> list[float | None]:
    return [mon.get_float(SYSTEM, f"/Ac/Grid/L{p}/Power") for p in (1, 2, 3)]


async def tick(clock: SteppedClock, seconds: int, bus: BusWatch) -> None:
    """Advance second by second; each ends once the HTTP polls and D-Bus signals are handled."""
    for _ in range(seconds):
        await clock.advance(1.0)
        await bus.settle()


async def test_shelly_bridge_is_the_gx_grid_meter(bus_address, mosquitto, tmp_path):
    clock = SteppedClock()
    async with (
        running_site("summer-sunny", address=bus_address, clock=clock, start_s=11 * 3600,
                     external_meter=True) as sim,
        open_monitor(bus_address) as mon,
        bus_watch(bus_address) as bus,
        mosquitto_sub(mosquitto.port, "site/#") as sub,
        anyio.create_task_group() as tg,
    ):  # fmt: skip
        cfg, _ = parse_config(config(sim.shelly.port, mosquitto.port))
        cfg = cfg.model_copy(
            update={"general": cfg.general.model_copy(update={"state_dir": str(tmp_path)})}
        )
        await tg.start(
            lambda task_status: run_daemon(
                cfg, bus_address=bus_address, clock=clock, task_status=task_status
            )
        )
        await tick(clock, 5, bus)
        # systemcalc follows our service (one publication behind at most); both agree with the
        # simulated grid within what a 1 Hz meter sees of a changing load
        assert mon.get(OURS, "/Connected") == 1
        assert sim.gx._external_w == [mon.get_float(OURS, f"/Ac/L{p}/Power") for p in (1, 2, 3)]
        true = sim.gx.site.meter.true_w
        for reading in (
            [mon.get_float(OURS, f"/Ac/L{p}/Power") for p in (1, 2, 3)],
            system_grid(mon),
        ):
            assert all(
                r is not None and abs(r - t) < 100 for r, t in zip(reading, true, strict=True)
            )
        assert not sim.gx.site.ess.meter_missing
        # the exporter's topics reach a real subscriber
        with anyio.fail_after(5):
            while not {"site/grid/Ac/Grid/L1/Power", "site/grid/Ac/Grid/L3/Power"} <= sub.topics():
                await tick(clock, 1, bus)
        assert float(sub.payloads("site/grid/Ac/Grid/L1/Power")[-1]) == pytest.approx(
            mon.get_float(SYSTEM, "/Ac/Grid/L1/Power"), abs=60
        )

        for fault in ("offline", "garbage", "http500"):
            await sim.shelly.set_fault(fault)
            seen: list[list[float | None]] = []
            for _ in range(6):
                await tick(clock, 1, bus)
                seen.append(system_grid(mon))
            # held first, then invalid; never a 0 W reading
            assert all(v is None or v != 0.0 for row in seen for v in row), (fault, seen)
            assert seen[0][0] is not None, fault
            assert seen[-1] == [None, None, None], fault
            assert mon.get(OURS, "/Connected") == 0
            assert sim.gx.site.ess.meter_missing  # the GX knows it has no meter
            await sim.shelly.set_fault("ok")
            await tick(clock, 4, bus)
            assert mon.get(OURS, "/Connected") == 1, fault
            assert all(v is not None for v in system_grid(mon)), fault
            assert not sim.gx.site.ess.meter_missing
        tg.cancel_scope.cancel()
