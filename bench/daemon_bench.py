"""Daemon CPU and memory with the meter and bridge features (issue 5), against an idle daemon.

One run: a private dbus-daemon and mosquitto; in a helper process three emulated Shellies (a Pro
3EM grid meter and two Plus 1PM PV meters) plus battery and system services; then `venus-ems run`
as its own process, first with no features (baseline), then with three meters polled at 1 Hz,
MQTT temperatures, the exporter and time to go. CPU is the daemon process's user+system time
over the measuring window; RSS is read from /proc at the end.

    python bench/daemon_bench.py [--seconds 60]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from venus_ems.venus.daemon import PrivateBus

TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# ----------------------------------------------------------------------------- the devices


async def devices(address: str, ports: list[int]) -> None:
    from venus_ems.clock import RealClock  # noqa: PLC0415
    from venus_ems.sim.devices import MemorySwitch, StaticMeter, plus_1pm, pro_3em  # noqa: PLC0415
    from venus_ems.venus import Identity, PathSpec, Service  # noqa: PLC0415

    clock = RealClock()
    grid = StaticMeter(3, clock=clock)
    pv = [MemorySwitch(load_w=-800.0, on=True, clock=clock) for _ in range(2)]
    battery = Service(
        "com.victronenergy.battery.bench",
        identity=Identity("bms"),
        device_instance=512,
        address=address,
    )
    for path, value in (
        ("/Soc", 60.0),
        ("/Dc/0/Voltage", 52.0),
        ("/Dc/0/Current", -10.0),
        ("/InstalledCapacity", 280.0),
    ):
        battery.add_path(path, value, PathSpec("d"))
    battery.add_path("/TimeToGo", None, PathSpec("d", writable=True))
    system = Service(
        "com.victronenergy.system",
        identity=Identity("systemcalc"),
        device_instance=0,
        address=address,
    )
    system.add_path("/Control/ActiveSocLimit", 10.0, PathSpec("d"))
    system.add_path("/Dc/Battery/BatteryService", battery.name, PathSpec("s"))
    async with (
        pro_3em(grid, clock=clock, port=ports[0]),
        plus_1pm(pv[0], clock=clock, port=ports[1]),
        plus_1pm(pv[1], clock=clock, port=ports[2]),
        battery,
        system,
    ):
        print("ready", flush=True)
        t = 0
        while True:  # loads that change every second, as a real site does
            t += 1
            for ch in range(3):
                grid.set_power(ch, 300.0 + 50 * ((t + ch) % 7))
            battery["/Dc/0/Current"] = -10.0 - (t % 5)
            await anyio.sleep(1.0)


# ----------------------------------------------------------------------------- the daemon


def config(ports: list[int], mqtt_port: int, state: str, *, features: bool) -> str:
    text = f"""schema_version = 1
[general]
log_console = false
log_path = "{state}/log"
state_dir = "{state}"
[mqtt]
enabled = true
host = "127.0.0.1"
port = {mqtt_port}
"""
    if not features:
        return text
    text += f"""
[[grid_meter]]
name = "grid"
enabled = true
host = "127.0.0.1:{ports[0]}"
generation = 2
[[pv_meter]]
name = "roof"
enabled = true
host = "127.0.0.1:{ports[1]}"
[[pv_meter]]
name = "garage"
enabled = true
host = "127.0.0.1:{ports[2]}"
phase = "L2"
[[temperature]]
name = "outside"
enabled = true
topic = "sensors/outside"
[mqtt_exporter]
enabled = true
[[mqtt_exporter.exports]]
service = "com.victronenergy.grid"
prefix = "/Ac"
topic = "bench/grid*"
[time_to_go]
enabled = true
"""
    return text


def measure(address: str, conf: Path, seconds: float, warmup: float) -> tuple[float, float, float]:
    """(CPU % of one core, RSS MB, seconds from start to the first published value)."""
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "venus_ems.cli", "run", "--config", str(conf), "--bus", address],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    first = wait_published(address, t0)
    time.sleep(warmup)
    c0, w0 = cpu_s(proc.pid), time.monotonic()
    time.sleep(seconds)
    c1, w1 = cpu_s(proc.pid), time.monotonic()
    rss = rss_mb(proc.pid)
    proc.terminate()
    proc.wait(10)
    return 100 * (c1 - c0) / (w1 - w0), rss, first


def wait_published(address: str, t0: float) -> float:
    """Seconds until com.victronenergy.venusems answers (our first published value)."""
    while time.monotonic() - t0 < 30:
        r = subprocess.run(
            [
                "dbus-send",
                f"--bus={address}",
                "--print-reply",
                "--dest=com.victronenergy.venusems",
                "/Version",
                "com.victronenergy.BusItem.GetValue",
            ],
            capture_output=True,
            check=False,
        )
        if r.returncode == 0:
            return time.monotonic() - t0
        time.sleep(0.05)
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--warmup", type=float, default=10.0)
    ap.add_argument("--devices", nargs=4)
    a = ap.parse_args()
    if a.devices:
        anyio.run(devices, a.devices[0], [int(p) for p in a.devices[1:]])
        return
    if not shutil.which("mosquitto"):
        sys.exit("mosquitto is not installed")
    print(
        f"# daemon_bench on {os.uname().nodename}, {time.strftime('%Y-%m-%d')}, "
        f"{a.seconds:.0f} s per run after {a.warmup:.0f} s warm-up"
    )
    with PrivateBus() as bus, tempfile.TemporaryDirectory() as tmp:
        mqtt_port = free_port()
        conf = Path(tmp, "mosquitto.conf")
        conf.write_text(f"listener {mqtt_port} 127.0.0.1\nallow_anonymous true\n")
        broker = subprocess.Popen(["mosquitto", "-c", str(conf)], stderr=subprocess.DEVNULL)
        ports = [free_port() for _ in range(3)]
        dev = subprocess.Popen(
            [sys.executable, __file__, "--devices", bus.address, *map(str, ports)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert dev.stdout is not None
        dev.stdout.readline()
        try:
            results = {}
            for name, features in (
                ("idle daemon (no features)", False),
                ("3 meters at 1 Hz + temperature + exporter + time to go", True),
            ):
                path = Path(tmp, f"{features}.toml")
                path.write_text(config(ports, mqtt_port, tmp, features=features))
                results[name] = measure(bus.address, path, a.seconds, a.warmup)
        finally:
            dev.terminate()
            broker.terminate()
        (base_cpu, base_rss, _), (cpu, rss, _) = results.values()
        for name, (c, r, s) in results.items():
            print(f"{name}: CPU {c:.2f} % of one core, RSS {r:.1f} MB, first value after {s:.2f} s")
        ratio = cpu / base_cpu if base_cpu else float("nan")
        print(
            f"features cost: +{cpu - base_cpu:.2f} % CPU ({ratio:.1f}x the idle daemon), "
            f"+{rss - base_rss:.1f} MB RSS; budget: < 2 % CPU, < 60 MB RSS, start < 3 s"
        )


if __name__ == "__main__":
    main()
