"""kill -9 of the daemon during counter writes: the file stays intact, counters never go back.

The real daemon (``venus-ems run``) runs in a subprocess with a net-metering grid meter on an
emulated Pro 3EM. Its counters move fast (hundreds of kW), so it saves them on nearly every
poll; the test waits until a write is in progress (the temp file exists) and sends SIGKILL
right then, six times. Every value the bus ever saw, across all restarts, must never decrease,
the file must load cleanly after each kill, and its ceilings must bound everything published.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import textwrap

import anyio
import pytest

from venus_ems.clock import RealClock
from venus_ems.features.counters import CounterFile
from venus_ems.features.grid_meter import service_name
from venus_ems.sim.devices import PhaseReading, StaticMeter, pro_3em
from venus_ems.venus import open_monitor
from waiting import until

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
NAME = service_name("killme")
WATCHED = ("/Ac/Energy/Forward", "/Ac/Energy/Reverse", "/Ac/L1/Energy/Forward")
ROUNDS = 6

DAEMON = "import sys; from venus_ems.cli import main; sys.exit(main())"


def config(host: str, state_dir: str) -> str:
    return textwrap.dedent(
        f"""
        schema_version = 1
        [general]
        log_console = false
        log_path = "{state_dir}/daemon.log"
        state_dir = "{state_dir}"
        [[grid_meter]]
        name = "killme"
        enabled = true
        host = "{host}"
        metering = "net"
        poll_interval_s = 0.1
        timeout_s = 0.5
        hold_s = 2.0
        """
    )


async def wait_for_a_write(tmp_file, child) -> None:
    """Return as soon as a counter write is in progress (its temp file exists)."""
    with anyio.fail_after(20):
        while not tmp_file.exists():
            assert child.poll() is None, "the daemon died on its own"
            await anyio.sleep(0.0005)


async def test_kill_9_during_counter_writes(bus_address, tmp_path):
    clock = RealClock()
    # 360 kW imported on L1 and 180 kW exported on L2: 0.05 kWh/s net, saves on every poll
    meter = StaticMeter(
        [
            PhaseReading.of(360_000.0, energy_forward_wh=500_000.0),
            PhaseReading.of(-180_000.0, energy_reverse_wh=100_000.0),
            PhaseReading.of(0.0),
        ],
        clock=clock,
    )
    cfg = tmp_path / "config.toml"
    file = CounterFile(tmp_path / "grid_meter_killme.json")
    seen: dict[str, list[float]] = {path: [] for path in WATCHED}

    def record(changes) -> None:
        for (service, path), value in changes.items():
            if service == NAME and path in seen and value is not None:
                seen[path].append(value)

    mid_write = 0
    async with pro_3em(meter, clock=clock) as emu, open_monitor(bus_address) as mon:
        cfg.write_text(config(emu.url.removeprefix("http://"), str(tmp_path)))
        mon.on_change(record)
        last_saved: dict[str, float] = {}
        for _ in range(ROUNDS):
            child = subprocess.Popen(
                [sys.executable, "-c", DAEMON, "run", "--config", str(cfg), "--bus", bus_address],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                count = len(seen["/Ac/Energy/Forward"])
                await until(lambda c=count: len(seen["/Ac/Energy/Forward"]) > c + 3, timeout=20)
                await wait_for_a_write(file.tmp, child)
            finally:
                os.kill(child.pid, signal.SIGKILL)
                child.wait()
            assert child.returncode == -signal.SIGKILL
            mid_write += file.tmp.exists()  # the kill cut a write short
            loaded = file.load()
            assert loaded.problem == ""  # always a complete file: old or new, never a mix
            assert loaded.counters is not None
            saved = loaded.counters
            for key, value in saved.values.items():
                assert value >= last_saved.get(key, 0.0)
            last_saved = dict(saved.values)
            # everything the bus saw is bounded by what is on disk
            assert max(seen["/Ac/Energy/Forward"]) <= saved.ceiling["forward"] + 1e-9
            assert max(seen["/Ac/L1/Energy/Forward"]) <= saved.ceiling["L1/forward"] + 1e-9
            await until(lambda: mon.service(NAME) is None, timeout=10)  # the bus saw it die
    for path, values in seen.items():
        assert values, path
        assert all(b >= a for a, b in itertools.pairwise(values)), path
    print(f"{mid_write} of {ROUNDS} kills cut a write short")
    assert mid_write >= 1, "no kill landed during a write"
    # net metering: the import counter grew by the net energy only, far less than L1's gross
    assert seen["/Ac/Energy/Forward"][-1] - seen["/Ac/Energy/Forward"][0] < (
        seen["/Ac/L1/Energy/Forward"][-1] - seen["/Ac/L1/Energy/Forward"][0]
    )
