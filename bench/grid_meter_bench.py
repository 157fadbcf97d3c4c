"""Grid meter (M1) benchmark: publish rate and CPU per poll, beside a bare poller, in one run.

A Shelly Pro 3EM emulator runs in a child process (its CPU is not ours); a private dbus-daemon
carries the service; a Monitor in this process counts the ItemsChanged that arrive.

* rate: the feature at its default ``poll_interval_s = 1.0`` for ``--seconds``; prints the
  updates per second a consumer sees and the longest gap between two (target: >= 1 Hz).
* CPU: the feature at 10 polls/s, and a bare poller doing only what any bridge must do per poll
  (one ``Shelly.GetStatus`` over HTTP, JSON decode, one ItemsChanged of the same paths);
  prints CPU ms per poll of each and their ratio.

    python bench/grid_meter_bench.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import aiohttp
import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from venus_ems.clock import RealClock
from venus_ems.features.grid_meter import GridMeter, service_name
from venus_ems.runtime.actuator import ActuatorRegistry
from venus_ems.runtime.config import GridMeterConfig
from venus_ems.runtime.feature import FeatureContext
from venus_ems.venus import Identity, PathSpec, Service, open_monitor
from venus_ems.venus.daemon import PrivateBus

EMULATOR = textwrap.dedent(
    """
    import anyio
    from venus_ems.clock import RealClock
    from venus_ems.sim.devices import PhaseReading, StaticMeter, pro_3em

    async def main():
        clock = RealClock()
        meter = StaticMeter([PhaseReading.of(p) for p in (900.0, -300.0, 40.0)], clock=clock)
        async with pro_3em(meter, clock=clock) as emu:
            print(emu.url, flush=True)
            await anyio.sleep_forever()

    anyio.run(main)
    """
)


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def run_feature(url, bus, state_dir, poll_s, seconds):
    """Run the grid meter; returns (updates seen, longest gap s, polls, CPU s)."""
    config = GridMeterConfig(
        name="bench", enabled=True, host=url.removeprefix("http://"), poll_interval_s=poll_s
    )
    feature = GridMeter(config)
    name = service_name("bench")
    arrivals: list[float] = []
    async with open_monitor(bus) as mon, anyio.create_task_group() as tg:
        sub = mon.subscribe(services=[name], paths=["/UpdateIndex"])

        async def count():
            async for _ in sub:
                arrivals.append(time.monotonic())

        tg.start_soon(count)
        ctx = FeatureContext(
            feature.name,
            RealClock(),
            mon,
            ActuatorRegistry(tg),
            bus_address=bus,
            state_dir=Path(state_dir),
        )
        await tg.start(lambda task_status: feature.run(ctx, task_status=task_status))
        await anyio.sleep(1.0)  # warm up
        arrivals.clear()
        polls0, cpu0, t0 = feature.polls, cpu_s(), time.monotonic()
        await anyio.sleep(seconds)
        polls, cpu, elapsed = feature.polls - polls0, cpu_s() - cpu0, time.monotonic() - t0
        tg.cancel_scope.cancel()
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    return len(arrivals) / elapsed, max(gaps, default=float("inf")), polls, cpu


async def run_bare(url, bus, poll_s, seconds):
    """The minimum per poll: GetStatus, decode, one ItemsChanged; returns (polls, CPU s)."""
    svc = Service(
        "com.victronenergy.grid.bare", identity=Identity("bare"), device_instance=41, address=bus
    )
    paths = ["/Ac/Power"] + [
        f"/Ac/L{i}/{q}" for i in (1, 2, 3) for q in ("Power", "Voltage", "Current")
    ]
    for p in [*paths, "/UpdateIndex"]:
        svc.add_path(p, None, PathSpec("d"))
    frame = json.dumps({"id": 1, "src": "bench", "method": "Shelly.GetStatus"}).encode()
    # a Monitor on the same bus, as the feature run has one (its cost counts on both sides)
    async with svc, aiohttp.ClientSession() as session, open_monitor(bus):
        deadline = time.monotonic() + seconds
        polls, cpu0 = 0, cpu_s()
        while time.monotonic() < deadline:
            async with session.post(f"{url}/rpc", data=frame) as resp:
                doc = json.loads(await resp.read())["result"]["em:0"]
            values = {"/Ac/Power": doc["total_act_power"], "/UpdateIndex": float(polls % 256)}
            for i, p in zip((1, 2, 3), "abc", strict=True):
                values[f"/Ac/L{i}/Power"] = doc[f"{p}_act_power"]
                values[f"/Ac/L{i}/Voltage"] = doc[f"{p}_voltage"]
                values[f"/Ac/L{i}/Current"] = doc[f"{p}_current"]
            svc.update(values)
            polls += 1
            await anyio.sleep(poll_s)
        return polls, cpu_s() - cpu0


async def main(seconds: float) -> None:
    child = subprocess.Popen([sys.executable, "-c", EMULATOR], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        url = child.stdout.readline().strip()
        with tempfile.TemporaryDirectory() as tmp, PrivateBus(Path(tmp)) as bus:
            rate, gap, _, _ = await run_feature(url, bus.address, tmp, 1.0, seconds)
            print(
                f"publish rate at poll_interval_s=1.0: {rate:.2f} updates/s, "
                f"longest gap {gap:.3f} s (target >= 1 Hz)"
            )
            _, _, polls, cpu = await run_feature(url, bus.address, tmp, 0.1, seconds)
            bare_polls, bare_cpu = await run_bare(url, bus.address, 0.1, seconds)
            ours = cpu / polls * 1000
            bare = bare_cpu / bare_polls * 1000
            print(
                f"CPU per poll: grid meter {ours:.2f} ms ({polls} polls), "
                f"bare poller {bare:.2f} ms ({bare_polls} polls), ratio {ours / bare:.2f}"
            )
            print(f"CPU at 1 Hz: {ours / 10:.3f} % of one core")
    finally:
        child.terminate()
        child.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    anyio.run(main, parser.parse_args().seconds)
