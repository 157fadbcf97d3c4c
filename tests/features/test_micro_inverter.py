"""The micro-inverter feature on the simulated GX with its emulated OpenDTU (real HTTP, D-Bus)."""

from __future__ import annotations

import pytest
from micro_support import (
    DCSYSTEM,
    FAST,
    SLOW,
    at_safe,
    dcload,
    limits_w,
    micro_site,
    raised,
)

from venus_ems.features import micro_inverter
from venus_ems.venus import SETTINGS_SERVICE

pytestmark = pytest.mark.anyio


async def test_holds_the_grid_and_shows_the_inverters_on_the_gx(bus_address, tmp_path):
    async with micro_site(bus_address, tmp_path) as site:
        # the first writes are the safe limits (start), then regulation
        await site.until(lambda: raised(site.sim), 30)
        await site.run(60)
        assert 0.0 <= site.grid_w <= 60.0, site.status("Reasons")
        mon, gx = site.mon, site.sim.gx
        # the group is a dcsystem: systemcalc (simulated) sums it, DVCC counts it
        group = mon.get_float(DCSYSTEM, "/Dc/0/Power")
        assert group is not None
        assert group > 100.0
        system = mon.get_float("com.victronenergy.system", "/Dc/System/Power")
        assert system == pytest.approx(group)
        assert gx.site.dc_system_w == pytest.approx(group)
        # each inverter is visible with power, voltage, yield and limit
        for serial in (FAST, SLOW):
            svc = dcload(serial)
            assert mon.get_float(svc, "/Dc/0/Power") is not None
            assert mon.get_float(svc, "/Dc/0/Voltage") == pytest.approx(
                gx.site.battery.voltage_v, abs=1.0
            )
            assert mon.get_float(svc, "/Ac/Energy/Forward") is not None
            limit = mon.get_float(svc, "/Ac/PowerLimit")
            assert limit == pytest.approx(limits_w(site.sim)[serial], abs=1.0)
            assert mon.get(svc, "/Serial") == serial
        owner = mon.get("com.victronenergy.venusems", f"/Outputs/micro_{FAST}/Owner")
        assert owner == "micro_inverter_control"


async def test_lost_meter_puts_every_inverter_at_its_safe_limit_and_back(bus_address, tmp_path):
    async with micro_site(bus_address, tmp_path, extra="stale_input_s = 3.0\n") as site:
        await site.until(lambda: raised(site.sim), 30)
        site.sim.gx.site.set_meter_connected(False)
        took = await site.until(lambda: at_safe(site.sim), 20)
        assert took <= 3.0 + 4.0  # detection, then the DTU's acknowledgement
        assert "no grid reading" in site.status("Reasons")
        assert "safe" in site.status("Message")
        site.sim.gx.site.set_meter_connected(True)
        await site.until(lambda: raised(site.sim), 30)


async def test_dtu_offline_values_go_invalid_never_zero(bus_address, tmp_path):
    async with micro_site(bus_address, tmp_path, extra="dtu_stale_s = 5.0\n") as site:
        await site.until(lambda: site.mon.get_float(DCSYSTEM, "/Dc/0/Power") is not None, 20)
        await site.sim.opendtu.set_fault("offline")
        await site.run(8)
        assert site.mon.get(DCSYSTEM, "/Dc/0/Power") is None
        assert site.mon.get(dcload(FAST), "/Ac/Power") is None
        assert site.mon.get(DCSYSTEM, "/Connected") == 0
        assert "DTU reading stale" in site.status("Reasons")
        await site.sim.opendtu.set_fault("ok")
        await site.until(lambda: site.mon.get_float(DCSYSTEM, "/Dc/0/Power") is not None, 20)


async def test_radio_loss_leaves_the_inverter_alone(bus_address, tmp_path):
    async with micro_site(bus_address, tmp_path) as site:
        await site.until(lambda: raised(site.sim), 30)
        await site.run(30)
        site.sim.gx.site.set_micro_reachable(SLOW, False)
        before = site.sim.gx.site.micros[SLOW].commands
        await site.run(40)
        assert site.sim.gx.site.micros[SLOW].commands == before
        assert f"{SLOW}: unreachable" in site.status("Reasons")
        assert site.mon.get(dcload(SLOW), "/Connected") == 0


async def test_refused_limits_restart_the_inverter(bus_address, tmp_path):
    async with micro_site(bus_address, tmp_path, extra="max_failures = 2\n") as site:
        site.sim.gx.site.set_micro_refuse_limits(FAST, True)
        await site.until(lambda: site.sim.gx.site.micros[FAST].restarts >= 1, 90)
        assert "restart" in site.status("Message")
        err = site.mon.get("com.victronenergy.venusems", f"/Outputs/micro_{FAST}/Error")
        assert "did not take limit" in err


async def test_victron_ess_holding_the_grid_keeps_the_inverters_safe(bus_address, tmp_path):
    settings = {"/Settings/CGwacs/Hub4Mode": 1, "/Settings/CGwacs/AcPowerSetPoint": 50.0}
    async with micro_site(bus_address, tmp_path, settings=settings) as site:
        await site.run(20)
        assert at_safe(site.sim)
        assert "Victron ESS (mode 1) holds the grid at 50 W" in site.status("Reasons")
        await site.mon.set_value(SETTINGS_SERVICE, "/Settings/CGwacs/AcPowerSetPoint", -100.0)
        await site.until(lambda: "Victron ESS" not in (site.status("Reasons") or ""), 10)


async def test_pv_fed_inverter_takes_power_limit_writes(bus_address, tmp_path):
    inverters = (
        f'[[micro_inverter_control.inverters]]\nserial = "{FAST}"\nsource = "pv"\n'
        f'[[micro_inverter_control.inverters]]\nserial = "{SLOW}"\n'
    )
    async with micro_site(bus_address, tmp_path, inverters=inverters) as site:
        pv = f"com.victronenergy.pvinverter.venusems_micro_{FAST}"
        await site.until(lambda: site.mon.service(pv) is not None, 20)
        assert site.mon.get_float(pv, "/Ac/MaxPower") == 600.0
        assert await site.mon.set_value(pv, "/Ac/PowerLimit", 120.0) == 0
        await site.until(lambda: abs(limits_w(site.sim)[FAST] - 120.0) < 1, 15)
        assert await site.mon.set_value(pv, "/Ac/PowerLimit", -5.0) != 0  # refused
        await site.run(70)  # not refreshed within 60 s: back to unlimited (its safe limit)
        assert limits_w(site.sim)[FAST] == 600.0
        assert site.mon.get_float(pv, "/Ac/PowerLimit") == 600.0


async def test_a_crashing_feature_leaves_its_inverters_safe(bus_address, tmp_path, monkeypatch):
    async with micro_site(bus_address, tmp_path) as site:
        await site.until(lambda: raised(site.sim), 30)

        def broken(*args, **kw):
            raise RuntimeError("bug in the core")

        monkeypatch.setattr(micro_inverter, "decide", broken)
        await site.until(lambda: at_safe(site.sim), 15)  # claims released: the safe limits
        assert "bug in the core" in site.status("LastError")


async def test_target_is_tunable_at_run_time_and_kept(bus_address, tmp_path):
    async with micro_site(bus_address, tmp_path) as site:
        await site.until(lambda: raised(site.sim), 30)
        await site.run(30)
        assert 0.0 <= site.grid_w <= 60.0
        path = "/Settings/VenusEms/MicroInverterControl/TargetW"
        assert await site.mon.set_value(SETTINGS_SERVICE, path, 150.0) == 0
        await site.run(40)
        assert 125.0 <= site.grid_w <= 190.0  # the new band: 125..165 W (+ meter noise)
        floating = "/Settings/VenusEms/MicroInverterControl/SocFloatingMax"
        assert site.mon.get_float(SETTINGS_SERVICE, floating) == 74.0  # seed B's memory, stored


async def test_dry_run_decides_but_writes_nothing(bus_address, tmp_path):
    async with micro_site(bus_address, tmp_path, dry_run=True) as site:
        await site.run(40)
        assert all(mi.commands == 0 for mi in site.sim.gx.site.micros.values())
        value = site.mon.get("com.victronenergy.venusems", f"/Outputs/micro_{FAST}/Written")
        assert value is not None
        assert value > 18.0  # it went on deciding after the (logged) start at the safe limit
