"""A refused config still clears what a killed run left (real D-Bus, the CLI as a process)."""

from __future__ import annotations

import sys
from datetime import datetime, timezone

import anyio
import pytest

from venus_ems.runtime.ledger import OutputLedger
from venus_ems.runtime.leftovers import bus_id
from venus_ems.venus import Identity, PathSpec, Service, open_monitor

pytestmark = pytest.mark.anyio
HUB4 = "com.victronenergy.hub4"
CAP = {"kind": "dbus", "service": HUB4, "path": "/Overrides/MaxDischargePower"}


def hub4(address: str, cap: float) -> Service:
    svc = Service(HUB4, identity=Identity("hub4"), device_instance=0, address=address)
    svc.add_path("/Overrides/MaxDischargePower", cap, PathSpec("d", writable=True))
    return svc


async def run_cli(config, bus_address: str):
    cmd = [sys.executable, "-m", "venus_ems.cli", "run", "--config", str(config)]
    return await anyio.run_process([*cmd, "--bus", bus_address], check=False)


async def test_a_refused_config_clears_the_killed_runs_cap_then_exits_2(bus_address, tmp_path):
    state = tmp_path / "state"
    config = tmp_path / "config.toml"
    config.write_text(
        f'schema_version = 1\n[general]\nstate_dir = "{state}"\n'
        "[ess_control]\nenabled = true\ndead_time_s = -5\n"  # refused: out of range
    )
    async with hub4(bus_address, 250.0) as svc, open_monitor(bus_address) as mon:
        ledger = OutputLedger(state / "outputs", bus_id=await bus_id(mon))
        now = datetime.now(timezone.utc).timestamp()
        ledger.record("ess.max_discharge_power", CAP, 250.0, 300.0, -1.0, at=now)
        done = await run_cli(config, bus_address)
        assert done.returncode == 2, done.stderr
        assert b"dead_time_s" in done.stderr  # the config error is still what the user sees
        assert svc["/Overrides/MaxDischargePower"] == -1.0
        assert ledger.entries() == []


async def test_without_leftovers_a_refused_config_never_touches_the_bus(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(f'schema_version = 1\n[general]\nstate_dir = "{tmp_path}"\nbogus = 1\n')
    done = await run_cli(config, "unix:path=/nonexistent/bus")
    assert done.returncode == 2
    assert b"bogus" in done.stderr
    assert b"could not be cleared" not in done.stderr
