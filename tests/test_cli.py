"""The command line as a user runs it: subprocesses, real buses, exit codes."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
CLI = [sys.executable, "-m", "venus_ems.cli"]


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False
    )


def test_check_config_exit_codes(tmp_path):
    ok = run("check-config", str(ROOT / "config.example.toml"))
    assert ok.returncode == 0, ok.stderr
    assert "OK (schema_version 1)" in ok.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(
        "schema_version = 1\n[general]\ngrid_targt = 5\n"
        '[ess_control]\nenabled = true\nmethod = "mode3"\n'
    )
    res = run("check-config", str(bad))
    assert res.returncode == 2
    assert "general.grid_targt" in res.stderr
    assert "allow_mode3" in res.stderr
    missing = run("check-config", str(tmp_path / "nope.toml"))
    assert missing.returncode == 2


def test_check_config_refuses_two_loops_on_one_grid_target(tmp_path):
    clash = tmp_path / "clash.toml"
    clash.write_text(
        "schema_version = 1\n[ess_control]\nenabled = true\n"
        '[micro_inverter_control]\nenabled = true\nhost = "192.168.1.56"\n'
        '[[micro_inverter_control.inverters]]\nserial = "114182940773"\n'
    )
    res = run("check-config", str(clash), "--no-bus")
    assert res.returncode == 2
    assert "would both hold the grid" in res.stderr
    clash.write_text(
        clash.read_text().replace(
            "enabled = true\n[micro", 'mode = "soc_target"\nenabled = true\n[micro', 1
        )
    )
    ok = run("check-config", str(clash), "--no-bus")
    assert ok.returncode == 0, ok.stderr


def test_demo_shows_the_micro_inverters():
    res = run("demo", "--scenario", "micro-inverters", "--seconds", "6", timeout=90)
    assert res.returncode == 0, res.stderr
    lines = [line for line in res.stdout.splitlines() if re.match(r"\d\d:\d\d:\d\d \| PV", line)]
    assert "micro_inverter_control: " in lines[-1]
    assert "OpenDTU for the micro-inverters" in res.stdout


def test_demo_shows_the_ev_charger():
    res = run("demo", "--scenario", "ev-charging", "--start", "11:00", "--seconds", "6", timeout=90)
    assert res.returncode == 0, res.stderr
    lines = [line for line in res.stdout.splitlines() if re.match(r"\d\d:\d\d:\d\d \| PV", line)]
    assert "ev_charger: " in lines[-1]
    assert "no_battery_to_ev: " in lines[-1]
    assert "Fronius Wattpilot" in res.stdout


def test_run_refuses_a_bad_config_with_exit_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('schema_version = 1\n[general]\nlog_levle = "DEBUG"\n')
    res = run("run", "--config", str(bad))
    assert res.returncode == 2
    assert "general.log_levle" in res.stderr


def test_demo_shows_a_live_site_within_seconds():
    res = run("demo", "--seconds", "4", timeout=90)
    assert res.returncode == 0, res.stderr
    lines = [line for line in res.stdout.splitlines() if re.match(r"\d\d:\d\d:\d\d \| PV", line)]
    assert len(lines) >= 3
    assert "grid_meter.house: connected" in lines[-1]
    assert re.search(r"Grid [+-]\d+ [+-]\d+ [+-]\d+ W", lines[-1])


def test_sim_is_readable_with_dbus_send_and_status():
    proc = subprocess.Popen(
        [*CLI, "sim", "--scenario", "winter", "--speed", "5", "--duration", "40"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        address = first.split("D-Bus:", 1)[1].strip()
        soc = subprocess.run(
            [
                "dbus-send",
                f"--bus={address}",
                "--print-reply",
                "--dest=com.victronenergy.system",
                "/Dc/Battery/Soc",
                "com.victronenergy.BusItem.GetValue",
            ],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        assert soc.returncode == 0, soc.stderr
        assert re.search(r"double \d+", soc.stdout)
        status = run("status", "--bus", address, "--count", "2", "--interval", "0.5")
        assert status.returncode == 0, status.stderr
        assert status.stdout.count("| PV ") == 2
        assert "Grid" in status.stdout
        # the active battery's BMS limits come from the battery systemcalc reports
        assert re.search(r"Bat \d+\.\d\dV [+-]\d+\.\dA \d+% [>≫]\d+[<≪]\d+A", status.stdout)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert re.search(r"\d\d:\d\d:\d\d +100%", out)  # progress reached the end
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(
    "args", [["sim", "--scenario", "nope"], ["sim", "--start", "25:00"], ["sim", "--speed", "0"]]
)
def test_sim_bad_arguments_exit_2(args):
    res = run(*args)
    assert res.returncode == 2
    assert res.stderr.strip()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_run_publishes_its_status_and_stops_cleanly_on_a_signal(tmp_path, private_bus, signum):
    conf = tmp_path / "c.toml"
    conf.write_text(
        f'schema_version = 1\n[general]\nlog_path = "{tmp_path}/log"\nstate_dir = "{tmp_path}"\n'
        "[settings_guard]\nenabled = true\n"
    )
    proc = subprocess.Popen(
        [*CLI, "run", "--config", str(conf), "--bus", private_bus.address],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        state = None
        while time.monotonic() < deadline:
            r = subprocess.run(
                ["dbus-send", f"--bus={private_bus.address}", "--print-reply",
                 "--dest=com.victronenergy.venusems", "/Features/settings_guard/State",
                 "com.victronenergy.BusItem.GetValue"],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if r.returncode == 0 and "running" in r.stdout:
                state = "running"
                break
            time.sleep(0.1)
        assert state == "running"
        proc.send_signal(signum)
        _out, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err
        assert (tmp_path / "log" / "venus-ems.log").read_text().count("stopping on") == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_demo_shows_the_surplus_distributor():
    res = run("demo", "--scenario", "surplus-three", "--seconds", "8", timeout=90)
    assert res.returncode == 0, res.stderr
    lines = [line for line in res.stdout.splitlines() if re.match(r"\d\d:\d\d:\d\d \| PV", line)]
    assert "surplus: surplus " in lines[-1]
    assert "Shelly Plus 1PM switching heater" in res.stdout
