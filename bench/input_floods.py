"""Daemon memory under hostile inputs: device reply floods and D-Bus path/service floods.

One run: a private dbus-daemon, the simulated GX (for localsettings), an emulated Shelly Pro 3EM
and `venus-ems run` as its own process publishing it as the grid meter with the defaults a user
gets (poll 1 s, timeout 2 s, hold 5 s). After a steady state (the baseline of the same run),
each fault is injected for --seconds; the daemon's peak resident set (VmHWM, reset before each
fault) and its resident set afterwards are read from /proc. Then a local client floods the bus
with never-seen paths and with new services. With --src the daemon runs from another source
tree (e.g. `git archive <commit> | tar -x -C /tmp/old`), to compare with an earlier version.

    python bench/input_floods.py [--seconds 10] [--paths 1000000] [--services 2000] [--src DIR]
                                 [--only chunked_flood,paths,...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from venus_ems.clock import RealClock
from venus_ems.sim.devices import StaticMeter, pro_3em
from venus_ems.sim.run import running_site
from venus_ems.sim.venus.flood import BusFlood
from venus_ems.venus import open_monitor
from venus_ems.venus.daemon import PrivateBus

OURS = "com.victronenergy.grid.venusems_house"
HTTP_FAULTS = ["chunked_flood", "gzip_bomb", "oversized", "deep_json", "huge_numbers", "garbage"]


def status_mb(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def config(state: Path, host: str) -> str:
    return f"""
schema_version = 1
[general]
log_console = false
log_path = "{state}"
state_dir = "{state}"
[[grid_meter]]
name = "house"
enabled = true
host = "{host}"
generation = 2
"""


async def wait(predicate, timeout: float) -> bool:
    with anyio.move_on_after(timeout):
        while not predicate():
            await anyio.sleep(0.05)
        return True
    return False


async def run(address: str, args: argparse.Namespace) -> list[tuple[str, str, float, float]]:
    clock = RealClock()
    rows: list[tuple[str, str, float, float]] = []
    state = Path(tempfile.mkdtemp(prefix="venus-ems-floods-"))
    meter = StaticMeter(3, clock=clock)
    meter.set_power(0, 700.0)
    async with (
        running_site("summer-sunny", address=address, clock=clock, start_s=11 * 3600),
        pro_3em(meter, clock=clock) as emu,
        open_monitor(address) as mon,
    ):
        conf = state / "config.toml"
        conf.write_text(config(state, emu.url.removeprefix("http://")))
        env = dict(os.environ)
        if args.src:
            env["PYTHONPATH"] = str(Path(args.src) / "src")
        proc = subprocess.Popen(
            [sys.executable, "-m", "venus_ems.cli", "run", "--config", str(conf), "--bus", address],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        pid = proc.pid

        def alive() -> str:
            return "running" if proc.poll() is None else f"exited {proc.returncode}"

        def connected() -> bool:
            return mon.get(OURS, "/Connected") == 1

        def reset_peak() -> None:
            Path(f"/proc/{pid}/clear_refs").write_text("5")

        try:
            await wait(connected, 30)
            await anyio.sleep(5)
            rows.append(("steady state", alive(), status_mb(pid, "VmHWM"), status_mb(pid, "VmRSS")))
            for mode in HTTP_FAULTS:
                if args.only and mode not in args.only:
                    continue
                if proc.poll() is not None:
                    break
                reset_peak()
                start = time.perf_counter()
                await emu.set_fault(mode)
                lost = await wait(lambda: mon.get(OURS, "/Connected") != 1, args.seconds)
                invalid_s = time.perf_counter() - start
                await anyio.sleep(max(0.0, args.seconds - invalid_s))
                what = f"{mode} (invalid after {invalid_s:.1f} s)" if lost else f"{mode} (held)"
                if mon.service(OURS) is None:
                    what = f"{mode} (service gone)"
                peak, rss = status_mb(pid, "VmHWM"), status_mb(pid, "VmRSS")
                start = time.perf_counter()
                await emu.set_fault("ok")
                recovered = await wait(connected, 30)
                state = alive() + (
                    f", back in {time.perf_counter() - start:.1f} s" if recovered else ", stuck"
                )
                rows.append((what, state, peak, rss))
            for kind in ("paths", "services", "budget"):
                if args.only and kind not in args.only:
                    continue
                if proc.poll() is not None:
                    break
                reset_peak()
                start = time.perf_counter()
                async with BusFlood(address, prefix=f"com.victronenergy.flood{kind}") as flood:
                    if kind == "paths":
                        await flood.paths(args.paths, batch=1000)
                        what = f"{args.paths} never-seen paths"
                    elif kind == "services":
                        await flood.services(args.services, paths=40)
                        what = f"{args.services} new services x 40 paths"
                    else:  # the worst case: enough services and paths to fill every budget
                        await flood.services(40, paths=15_000)
                        what = "40 new services x 15 000 paths"
                    took = time.perf_counter() - start
                    await anyio.sleep(2)
                    peak, rss = status_mb(pid, "VmHWM"), status_mb(pid, "VmRSS")
                rows.append((f"{what} ({took:.0f} s)", alive(), peak, rss))
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seconds", type=float, default=10.0, help="seconds per device fault")
    p.add_argument("--paths", type=int, default=1_000_000)
    p.add_argument("--services", type=int, default=2000)
    p.add_argument("--src", help="run the daemon from this source tree (its src/)")
    p.add_argument(
        "--only",
        type=lambda text: set(text.split(",")),
        default=set(),
        help="comma-separated faults to run: "
        + ", ".join([*HTTP_FAULTS, "paths", "services", "budget"]),
    )
    args = p.parse_args()
    with PrivateBus() as bus:
        rows = anyio.run(run, bus.address, args)
    steady = rows[0][2]
    print(f"daemon from {args.src or 'this tree'}; {args.seconds:g} s per device fault")
    print(f"{'input':44s} {'daemon':24s} {'peak RSS':>10s} {'RSS after':>10s} {'peak/steady':>12s}")
    for what, state, peak, rss in rows:
        print(f"{what:44s} {state:24s} {peak:8.1f} MB {rss:8.1f} MB {peak / steady:11.2f}x")


if __name__ == "__main__":
    main()
