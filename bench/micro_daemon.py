"""Daemon CPU with micro-inverter control: 3 inverters read at 1 Hz, against an idle daemon.

One run: a private dbus-daemon; in a helper process the simulated GX (real clock, the
``micro-inverters`` day with a third inverter, the grid meter at 1 Hz) and an emulated OpenDTU
for its three inverters; then ``venus-ems run`` as its own process, first with no features
(baseline), then with ``[micro_inverter_control]`` (three battery-fed inverters, the DTU read
every second, a decision on every grid reading). CPU is the daemon's user+system time over the
measuring window.

    python bench/micro_daemon.py [--seconds 60] [--warmup 15]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from daemon_bench import cpu_s, free_port, rss_mb, wait_published
from venus_ems.venus.daemon import PrivateBus

SERIALS = ("114184020001", "116184020002", "114184020003")


async def site(address: str, port: int) -> None:
    """The simulated GX with three battery-fed inverters and their OpenDTU, until killed."""
    from venus_ems.clock import RealClock  # noqa: PLC0415
    from venus_ems.sim.devices import OpenDtuEmulator  # noqa: PLC0415
    from venus_ems.sim.physics import AC_IN  # noqa: PLC0415
    from venus_ems.sim.scenarios import MICRO_PAIR, get_scenario, hoymiles  # noqa: PLC0415
    from venus_ems.sim.venus.gx import SimulatedGx  # noqa: PLC0415
    from venus_ems.sim.wiring import SiteInverterBank  # noqa: PLC0415

    sc = get_scenario("micro-inverters")
    third = hoymiles("HM-800", SERIALS[2], position=AC_IN)
    sc = replace(sc, site=replace(sc.site, micro_inverters=(*MICRO_PAIR, third)))
    clock = RealClock()
    gx = SimulatedGx(sc, address=address, clock=clock, start_s=19 * 3600.0)
    async with anyio.create_task_group() as tg:
        await tg.start(gx.run)
        async with OpenDtuEmulator(SiteInverterBank(gx.site), clock=clock, port=port):
            print("ready", flush=True)
            await anyio.sleep_forever()


def config(port: int, state: str, *, feature: bool) -> str:
    text = f"""schema_version = 1
[general]
log_console = false
log_path = "{state}/log"
state_dir = "{state}"
"""
    if not feature:
        return text
    text += f"""
[micro_inverter_control]
enabled = true
host = "127.0.0.1:{port}"
password = "openDTU42"
poll_interval_s = 1.0
total_cap_w = 2900.0
"""
    for serial in SERIALS:
        text += f'[[micro_inverter_control.inverters]]\nserial = "{serial}"\n'
    return text


def decision(address: str) -> str:
    """What the feature reports (proves it ran during the measurement)."""
    r = subprocess.run(
        [
            "dbus-send",
            f"--bus={address}",
            "--print-reply",
            "--dest=com.victronenergy.venusems",
            "/Features/micro_inverter_control/Decision",
            "com.victronenergy.BusItem.GetValue",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return r.stdout.rsplit("string", 1)[-1].strip().strip('"') if r.returncode == 0 else "-"


def measure(address: str, conf: Path, seconds: float, warmup: float) -> tuple[float, float]:
    """(CPU % of one core, RSS MB) of ``venus-ems run`` with ``conf``."""
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "venus_ems.cli", "run", "--config", str(conf), "--bus", address],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_published(address, t0)
    time.sleep(warmup)
    c0, w0 = cpu_s(proc.pid), time.monotonic()
    time.sleep(seconds)
    c1, w1 = cpu_s(proc.pid), time.monotonic()
    rss = rss_mb(proc.pid)
    shown = decision(address)
    if "micro_inverter_control" in conf.read_text():
        print(f"  feature decision at the end: {shown}", flush=True)
    proc.terminate()
    proc.wait(30)
    return 100 * (c1 - c0) / (w1 - w0), rss


def run(seconds: float, warmup: float) -> dict[str, tuple[float, float]]:
    """Both configurations, measured in one invocation."""
    with PrivateBus() as bus, tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        helper = subprocess.Popen(
            [sys.executable, __file__, "--site", bus.address, str(port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert helper.stdout is not None
        helper.stdout.readline()
        try:
            results = {}
            runs = (("idle daemon (no features)", False), ("3 inverters at 1 Hz", True))
            for name, feature in runs:
                path = Path(tmp, f"{feature}.toml")
                path.write_text(config(port, tmp, feature=feature))
                results[name] = measure(bus.address, path, seconds, warmup)
        finally:
            helper.terminate()
            helper.wait(10)
    return results


def report(results: dict[str, tuple[float, float]]) -> list[str]:
    (base, base_rss), (cpu, rss) = results.values()
    lines = [f"{n}: CPU {c:.2f} % of one core, RSS {r:.1f} MB" for n, (c, r) in results.items()]
    ratio = cpu / base if base else float("nan")
    lines.append(
        f"micro-inverter control costs +{cpu - base:.2f} % CPU ({ratio:.1f}x the idle daemon), "
        f"+{rss - base_rss:.1f} MB RSS; target: the daemon with 3 inverters at 1 Hz < 1 % of a "
        f"core -> {'met' if cpu < 1.0 else 'NOT met'} ({cpu:.2f} %)"
    )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--warmup", type=float, default=15.0)
    ap.add_argument("--site", nargs=2)
    a = ap.parse_args()
    if a.site:
        anyio.run(site, a.site[0], int(a.site[1]))
        return
    print(
        f"# micro_daemon on {os.uname().nodename}, {time.strftime('%Y-%m-%d')}, "
        f"{a.seconds:.0f} s per run after {a.warmup:.0f} s warm-up"
    )
    print("\n".join(report(run(a.seconds, a.warmup))))


if __name__ == "__main__":
    main()
