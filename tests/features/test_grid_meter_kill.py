"""Net-metering counters survive ``kill -9`` of the process running the grid meter."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import anyio
import pytest
from test_grid_meter_harness import until

from venus_ems.clock import RealClock
from venus_ems.features.counters import CounterFile
from venus_ems.features.grid_meter import service_name
from venus_ems.sim.devices import PhaseReading, StaticMeter, pro_3em
from venus_ems.venus import open_monitor

pytestmark = pytest.mark.anyio
NAME = service_name("killme")

# The child runs the feature exactly as the daemon would, on the real clock, saving often so
# that kill -9 regularly lands in the middle of a write.
CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import anyio

    from venus_ems.features.grid_meter import GridMeter
    from venus_ems.runtime.actuator import ActuatorRegistry
    from venus_ems.clock import RealClock
    from venus_ems.runtime.config import GridMeterConfig
    from venus_ems.runtime.feature import FeatureContext
    from venus_ems.venus import open_monitor

    async def main(host, bus, state_dir):
        config = GridMeterConfig(
            name="killme", enabled=True, host=host, metering="net",
            poll_interval_s=0.1, timeout_s=0.5, hold_s=2.0,
        )
        feature = GridMeter(config, save_interval_s=0.02)
        async with open_monitor(bus) as mon, anyio.create_task_group() as tg:
            ctx = FeatureContext(
                feature.name, RealClock(), mon, ActuatorRegistry(tg),
                bus_address=bus, state_dir=Path(state_dir),
            )
            await tg.start(lambda task_status: feature.run(ctx, task_status=task_status))
            await anyio.sleep_forever()

    anyio.run(main, *sys.argv[1:])
    """
)


def forward(path):
    return json.loads(path.read_text())["counters"]["forward"]


async def test_counters_survive_kill_9(bus_address, tmp_path):
    clock = RealClock()
    # 36 kW imported on L1 and 18 kW exported on L2: net +18 kW = 0.005 kWh per second
    meter = StaticMeter(
        [
            PhaseReading.of(36_000.0, energy_forward_wh=500_000.0),
            PhaseReading.of(-18_000.0, energy_reverse_wh=100_000.0),
            PhaseReading.of(0.0),
        ],
        clock=clock,
    )
    file = tmp_path / "grid_meter_killme.json"
    log = (tmp_path / "child.log").open("wb")
    async with pro_3em(meter, clock=clock) as emu, open_monitor(bus_address) as mon:
        host = emu.url.removeprefix("http://")
        last_file = None
        for round_ in range(4):
            child = subprocess.Popen(
                [sys.executable, "-c", CHILD, host, bus_address, str(tmp_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:

                def connected(child=child):
                    assert child.poll() is None, (tmp_path / "child.log").read_text()
                    return mon.get(NAME, "/Connected") == 1

                await until(connected, timeout=20)
                published = mon.get(NAME, "/Ac/Energy/Forward")
                if last_file is None:
                    assert published == pytest.approx(500.0, abs=0.01)  # the device counter
                else:
                    # continues from what was saved before the kill, not from the device
                    assert last_file <= published < last_file + 0.01
                await until(lambda p=published: mon.get(NAME, "/Ac/Energy/Forward") > p + 0.002)
                await anyio.sleep(0.013 * round_)  # vary where in the save cycle we kill
            finally:
                os.kill(child.pid, signal.SIGKILL)
                child.wait()
            assert child.returncode == -signal.SIGKILL
            killed_at = mon.get(NAME, "/Ac/Energy/Forward")
            loaded = CounterFile(file).load()  # always a complete file: old or new, never a mix
            assert loaded.problem == ""
            saved = loaded.counters.values["forward"]
            assert saved <= killed_at + 1e-9
            assert killed_at - saved < 0.005 * 0.5  # at most a save interval (+ a poll) lost
            if last_file is not None:
                assert saved >= last_file
            last_file = saved
            await until(lambda: mon.service(NAME) is None)  # the bus saw the process die
    log.close()
    # the net counter grew with the net power only: far less than the gross import
    assert 500.0 < last_file < 500.0 + 0.5
