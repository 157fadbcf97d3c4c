"""Daemon memory, CPU and start-up: idle, the meters of issue 5, every wave-1 feature.

One run: a private dbus-daemon and mosquitto; in a helper process the simulated GX (no GX grid
meter: systemcalc follows ours) with an emulated Shelly Pro 3EM measuring its grid and two
emulated Plus 1PM PV meters; then `venus-ems run` as its own process, once per configuration:

* idle: no feature (MQTT on);
* meters (issue 5): a grid meter and two PV meters polled at 1 Hz, an MQTT temperature, the
  exporter and time to go;
* wave 1: those plus Home Assistant discovery, ESS control (zero export), the output limiter and
  the settings guard: every feature venus-ems has.

``--mode bundle`` (default) runs the daemon as a GX does: from a bundle built from this tree and
this environment, with the clean interpreter (``python -I -S launch.py``); ``--mode venv`` runs
``python -m venus_ems.cli`` in this virtualenv. CPU is the daemon's user+system time over the
window; RSS (and its anonymous / file-backed parts, and USS: pages no other process shares) is
read from /proc at the end. First value: seconds from exec to com.victronenergy.venusems
answering GetValue.

    python bench/daemon_bench.py [--seconds 60] [--mode bundle|venv]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from venus_ems.venus.daemon import PrivateBus

ROOT = Path(__file__).resolve().parents[1]

TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS, RssAnon, RssFile and USS (Private_Clean + Private_Dirty) in MB."""
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "VmData"):
            out[key] = int(value.split()[0]) / 1024
    uss = 0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith(("Private_Clean:", "Private_Dirty:")):
            uss += int(line.split()[1])
    out["USS"] = uss / 1024
    return out


# ----------------------------------------------------------------------------- the devices


async def devices(address: str, ports: list[int]) -> None:
    from venus_ems.clock import RealClock  # noqa: PLC0415
    from venus_ems.sim.devices import MemorySwitch, plus_1pm  # noqa: PLC0415
    from venus_ems.sim.run import running_site  # noqa: PLC0415

    clock = RealClock()
    pv = [MemorySwitch(load_w=-800.0, on=True, clock=clock) for _ in range(2)]
    async with (
        running_site(
            "summer-sunny",
            address=address,
            clock=clock,
            start_s=12 * 3600,
            external_meter=True,
            shelly_port=ports[0],
        ),
        plus_1pm(pv[0], clock=clock, port=ports[1]),
        plus_1pm(pv[1], clock=clock, port=ports[2]),
    ):
        print("ready", flush=True)
        await anyio.sleep_forever()


# ----------------------------------------------------------------------------- the daemon

CONFIGS = ("idle", "meters", "wave1")
TITLES = {
    "idle": "idle daemon (no features)",
    "meters": "3 meters at 1 Hz + temperature + exporter + time to go",
    "wave1": "every wave-1 feature (those + HA discovery, ESS control, output limiter, guard)",
}


def config(kind: str, ports: list[int], mqtt_port: int, state: str) -> str:
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
    if kind == "idle":
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
ha_discovery = {"true" if kind == "wave1" else "false"}
[[mqtt_exporter.exports]]
service = "com.victronenergy.grid"
prefix = "/Ac"
topic = "bench/grid*"
[time_to_go]
enabled = true
"""
    if kind == "wave1":
        text += """
[ess_control]
enabled = true
[output_limiter]
enabled = true
limit_w = 6000.0
[settings_guard]
enabled = true
"""
    return text


def daemon_command(mode: str, bundle: Path | None) -> list[str]:
    if mode == "venv":
        return [sys.executable, "-m", "venus_ems.cli"]
    assert bundle is not None
    base = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    return [base, "-I", "-S", str(bundle / "launch.py")]


def measure(
    cmd: list[str], address: str, conf: Path, seconds: float, warmup: float
) -> tuple[float, dict[str, float], float]:
    """(CPU % of one core, memory in MB, seconds from start to the first published value)."""
    env = {k: v for k, v in os.environ.items() if k != "VENUS_EMS_SITE_DIRS"}
    env["VENUS_EMS_SITE_DIRS"] = ""  # the bundle alone, as on a GX without usable image copies
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [*cmd, "run", "--config", str(conf), "--bus", address],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    first = wait_published(address, t0)
    time.sleep(warmup)
    c0, w0 = cpu_s(proc.pid), time.monotonic()
    time.sleep(seconds)
    c1, w1 = cpu_s(proc.pid), time.monotonic()
    mem = memory_mb(proc.pid)
    proc.terminate()
    proc.wait(10)
    return 100 * (c1 - c0) / (w1 - w0), mem, first


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
        time.sleep(0.02)
    return float("nan")


def unpacked_bundle(tmp: str, *, pure_dbus: bool) -> Path:
    """A host bundle from this tree and environment, unpacked (as installed on a GX)."""
    from venus_ems.install.bundle import build  # noqa: PLC0415

    out = Path(tmp, "bundle")
    pure = ("dbus-fast",) if pure_dbus else ()
    run = build(
        "host", out, repo=ROOT, from_env=True, compresslevel=1, host_pure=pure, say=lambda _: None
    )
    subprocess.run(["sh", str(run), "--extract", str(out)], check=True, capture_output=True)
    (top,) = (p for p in out.iterdir() if p.is_dir() and p.name.startswith("venus-ems-"))
    # as `venus-ems install` does: import everything once, which writes the byte-code caches
    base = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    env = {**os.environ, "VENUS_EMS_SITE_DIRS": ""}
    subprocess.run(
        [base, "-I", "-S", str(top / "launch.py"), "--check"],
        check=True,
        env=env,
        capture_output=True,
    )
    return top


class Lab:
    """Bus, broker and devices for the daemon runs (shared with bench/import_cost.py)."""

    def __enter__(self) -> Lab:
        self.bus = PrivateBus().__enter__()
        self.tmp = tempfile.mkdtemp(prefix="daemon-bench-")
        self.mqtt_port = free_port()
        conf = Path(self.tmp, "mosquitto.conf")
        conf.write_text(f"listener {self.mqtt_port} 127.0.0.1\nallow_anonymous true\n")
        self.broker = subprocess.Popen(["mosquitto", "-c", str(conf)], stderr=subprocess.DEVNULL)
        self.ports = [free_port() for _ in range(3)]
        self.dev = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "bench" / "daemon_bench.py"),
                "--devices",
                self.bus.address,
                *map(str, self.ports),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.dev.stdout is not None
        assert self.dev.stdout.readline().strip() == "ready"
        return self

    def config(self, kind: str) -> Path:
        state = Path(self.tmp, kind)
        state.mkdir(exist_ok=True)
        path = Path(self.tmp, f"{kind}.toml")
        path.write_text(config(kind, self.ports, self.mqtt_port, str(state)))
        return path

    def __exit__(self, *exc: object) -> None:
        self.dev.terminate()
        self.dev.wait(10)
        if self.dev.stdout is not None:
            self.dev.stdout.close()
        self.broker.terminate()
        self.broker.wait(10)
        self.bus.__exit__(None, None, None)
        shutil.rmtree(self.tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--warmup", type=float, default=10.0)
    ap.add_argument("--mode", choices=("bundle", "venv"), default="bundle")
    ap.add_argument("--pure-dbus", action="store_true", help="bundle: dbus-fast without Cython")
    ap.add_argument("--only", choices=CONFIGS, action="append")
    ap.add_argument("--repeat", type=int, default=1, help="runs per configuration (median)")
    ap.add_argument("--devices", nargs=4)
    a = ap.parse_args()
    if a.devices:
        anyio.run(devices, a.devices[0], [int(p) for p in a.devices[1:]])
        return
    if not shutil.which("mosquitto"):
        sys.exit("mosquitto is not installed")
    print(
        f"# daemon_bench on {os.uname().nodename}, {time.strftime('%Y-%m-%d')}, "
        f"{a.seconds:.0f} s per run after {a.warmup:.0f} s warm-up, mode {a.mode}"
        + (" (dbus-fast pure Python)" if a.pure_dbus else "")
    )
    with Lab() as lab:
        bundle = unpacked_bundle(lab.tmp, pure_dbus=a.pure_dbus) if a.mode == "bundle" else None
        cmd = daemon_command(a.mode, bundle)
        results = {}
        for kind in a.only or CONFIGS:
            runs = [
                measure(cmd, lab.bus.address, lab.config(kind), a.seconds, a.warmup)
                for _ in range(a.repeat)
            ]
            results[kind] = (
                statistics.median(r[0] for r in runs),
                {k: statistics.median(r[1][k] for r in runs) for k in runs[0][1]},
                statistics.median(r[2] for r in runs),
            )
            if a.repeat > 1:
                firsts = " ".join(f"{r[2]:.2f}" for r in runs)
                rss = " ".join(f"{r[1]['VmRSS']:.1f}" for r in runs)
                print(f"{kind}: RSS per run {rss} MB; first value per run {firsts} s")
    for kind, (cpu, mem, first) in results.items():
        print(
            f"{TITLES[kind]}: CPU {cpu:.2f} % of one core, RSS {mem['VmRSS']:.1f} MB "
            f"(anon {mem['RssAnon']:.1f}, file {mem['RssFile']:.1f}, USS {mem['USS']:.1f}, "
            f"VmData {mem['VmData']:.0f}), first value after {first:.2f} s"
        )
    if "idle" in results:
        base_cpu, base_mem, _ = results["idle"]
        for kind in results.keys() - {"idle"}:
            cpu, mem, _ = results[kind]
            ratio = cpu / base_cpu if base_cpu else float("nan")
            print(
                f"{kind} costs: +{cpu - base_cpu:.2f} % CPU ({ratio:.1f}x the idle daemon), "
                f"+{mem['VmRSS'] - base_mem['VmRSS']:.1f} MB RSS"
            )
    print("targets: idle <= 32 MB, wave 1 <= 45 MB, first value < 1 s, < 2 % CPU")


if __name__ == "__main__":
    main()
