"""What a killed run left is put back at the next start, and only what is ours (real D-Bus)."""

from __future__ import annotations

from datetime import datetime, timezone

import anyio
import pytest

from venus_ems.clock import SteppedClock
from venus_ems.runtime.ledger import OutputLedger
from venus_ems.runtime.leftovers import bus_id, clear_leftovers
from venus_ems.venus import Identity, PathSpec, Service, open_monitor

pytestmark = pytest.mark.anyio
HUB4 = "com.victronenergy.hub4"
SETTINGS = "com.victronenergy.settings"
CAP = {"kind": "dbus", "service": HUB4, "path": "/Overrides/MaxDischargePower"}
START = datetime(2026, 6, 21, tzinfo=timezone.utc)


def hub4(address: str, cap: float) -> Service:
    svc = Service(HUB4, identity=Identity("hub4"), device_instance=0, address=address)
    svc.add_path("/Overrides/MaxDischargePower", cap, PathSpec("d", writable=True))
    svc.add_path("/Overrides/Setpoint", None, PathSpec("d", writable=True))
    return svc


async def ledger_for(mon, tmp_path) -> OutputLedger:
    return OutputLedger(tmp_path / "outputs", bus_id=await bus_id(mon))


async def test_our_leftover_is_cleared_and_the_entry_removed(bus_address, tmp_path, caplog):
    async with hub4(bus_address, 250.0) as svc, open_monitor(bus_address) as mon:
        ledger = await ledger_for(mon, tmp_path)
        assert ledger.bus_id  # the daemon's id, a new one at every boot
        ledger.record("ess.max_discharge_power", CAP, 250.0, 300.0, -1.0, at=START.timestamp())
        outcome = await clear_leftovers(mon, ledger, SteppedClock(START))
        assert svc["/Overrides/MaxDischargePower"] == -1.0
        assert outcome == {"ess.max_discharge_power": "cleared: 250.0 -> -1.0"}
        assert ledger.entries() == []
        assert "the last run left 250.0 on com.victronenergy.hub4/Overrides/Max" in caplog.text


async def test_someone_elses_value_is_left_alone(bus_address, tmp_path):
    """Between the kill and the restart Dynamic ESS (or the user) wrote its own value."""
    async with hub4(bus_address, 1200.0) as svc, open_monitor(bus_address) as mon:
        ledger = await ledger_for(mon, tmp_path)
        ledger.record("ess.max_discharge_power", CAP, 250.0, None, -1.0, at=START.timestamp())
        outcome = await clear_leftovers(mon, ledger, SteppedClock(START))
        assert svc["/Overrides/MaxDischargePower"] == 1200.0
        assert "someone else's value 1200.0" in outcome["ess.max_discharge_power"]
        assert ledger.entries() == []


async def test_an_entry_from_before_a_reboot_is_void(bus_address, tmp_path):
    async with hub4(bus_address, 250.0) as svc, open_monitor(bus_address) as mon:
        ledger = OutputLedger(tmp_path, bus_id="an-earlier-boot")
        ledger.record("ess.max_discharge_power", CAP, 250.0, None, -1.0, at=START.timestamp())
        ledger.bus_id = await bus_id(mon)
        outcome = await clear_leftovers(mon, ledger, SteppedClock(START))
        assert outcome["ess.max_discharge_power"].startswith("void")
        assert svc["/Overrides/MaxDischargePower"] == 250.0  # not ours: hub4 lost ours at boot


async def test_mode3_setpoints_older_than_the_multis_timeout_fell_back(bus_address, tmp_path):
    async with open_monitor(bus_address) as mon:
        ledger = await ledger_for(mon, tmp_path)
        ledger.record("ess.phase_setpoints", {"kind": "mode3"}, (-900.0,) * 3, None, (0.0,) * 3,
                      at=START.timestamp() - 61)  # fmt: skip
        outcome = await clear_leftovers(mon, ledger, SteppedClock(START))
        assert outcome["ess.phase_setpoints"].startswith("fallen back by itself")
        assert ledger.entries() == []


async def test_fresh_mode3_setpoints_are_put_back_although_they_cannot_be_read(
    bus_address, tmp_path
):
    vebus = Service(
        "com.victronenergy.vebus.ttyS4", identity=Identity("Multi"), device_instance=276,
        address=bus_address,
    )  # fmt: skip
    for n in (1, 2, 3):
        vebus.add_path(f"/Hub4/L{n}/AcPowerSetpoint", 0.0, PathSpec("d", writable=True))
    async with vebus, open_monitor(bus_address) as mon:
        for n in (1, 2, 3):  # what the killed run wrote last (mk2-dbus would not echo it)
            vebus[f"/Hub4/L{n}/AcPowerSetpoint"] = -900.0
        ledger = await ledger_for(mon, tmp_path)
        ledger.record("ess.phase_setpoints", {"kind": "mode3"}, (-900.0,) * 3, None, (50.0,) * 3,
                      at=START.timestamp() - 20)  # fmt: skip
        outcome = await clear_leftovers(mon, ledger, SteppedClock(START))
        assert outcome["ess.phase_setpoints"].startswith("cleared: a value we cannot read back")
        assert [vebus[f"/Hub4/L{n}/AcPowerSetpoint"] for n in (1, 2, 3)] == [50.0] * 3


async def test_an_absent_target_keeps_the_entry_for_the_next_start(bus_address, tmp_path, caplog):
    async with open_monitor(bus_address) as mon:
        ledger = await ledger_for(mon, tmp_path)
        ledger.record("ess.max_discharge_power", CAP, 250.0, None, -1.0, at=START.timestamp())
        with anyio.fail_after(3):
            outcome = await clear_leftovers(mon, ledger, SteppedClock(START), wait_s=0.3)
        assert outcome["ess.max_discharge_power"] == "target absent: kept for the next start"
        assert len(ledger.entries()) == 1
        assert "is absent" in caplog.text


async def test_the_users_persisted_setting_comes_back_after_a_crash(bus_address, tmp_path):
    """The output limiter's fallback writes a *persisted* setting: it survives reboots, and so
    does its entry; the safe value in the entry is the user's own, read before the first cap."""
    settings = Service(SETTINGS, identity=Identity("settings"), device_instance=None,
                       address=bus_address)  # fmt: skip
    path = "/Settings/CGwacs/MaxDischargePower"
    settings.add_path(path, 250.0, PathSpec("d", writable=True))
    async with settings, open_monitor(bus_address) as mon:
        ledger = OutputLedger(tmp_path, bus_id="an-earlier-boot")
        target = {"kind": "dbus", "service": SETTINGS, "path": path}
        ledger.record("ess.max_discharge_power", target, 250.0, None, 4000.0,
                      at=START.timestamp() - 86400, persistent=True)  # fmt: skip
        ledger.bus_id = await bus_id(mon)
        outcome = await clear_leftovers(mon, ledger, SteppedClock(START))
        assert settings[path] == 4000.0
        assert outcome["ess.max_discharge_power"] == "cleared: 250.0 -> 4000.0"


async def test_dry_run_reports_and_writes_nothing(bus_address, tmp_path):
    async with hub4(bus_address, 250.0) as svc, open_monitor(bus_address) as mon:
        ledger = await ledger_for(mon, tmp_path)
        ledger.record("ess.max_discharge_power", CAP, 250.0, None, -1.0, at=START.timestamp())
        outcome = await clear_leftovers(mon, ledger, SteppedClock(START), dry_run=True)
        assert outcome["ess.max_discharge_power"] == "dry run: left as it is"
        assert svc["/Overrides/MaxDischargePower"] == 250.0
        assert len(ledger.entries()) == 1
