"""The simulated micro-inverters: ack vs dead time, refusals, restarts, the DTU's polling, DVCC."""

from __future__ import annotations

import pytest

from venus_ems.sim.physics import AC_IN, MultiParams, Site, SiteParams
from venus_ems.sim.scenarios import MICRO_PAIR, ScenarioDriver, get_scenario, hoymiles
from venus_ems.sim.wiring import SiteInverterBank

SERIAL = "114184020001"


def site(**kw) -> Site:
    params = hoymiles("HM-600", SERIAL, position=AC_IN, **kw)
    s = Site(SiteParams(multi=MultiParams(phases=1), micro_inverters=(params,)))
    s.set_ess_setting("hub4_mode", 3)
    s.set_inputs([800.0])
    return s


def run(s: Site, seconds: int) -> list[tuple[float, str, float]]:
    rows = []
    for _ in range(seconds):
        s.step(1.0)
        mi = s.micros[SERIAL]
        rows.append((round(s.time), mi.limit_status, round(mi.power_w)))
    return rows


def test_acknowledged_before_it_acts():
    s = site(initial_limit_w=100.0)
    run(s, 5)
    s.set_micro_limit(SERIAL, 50, relative=True)  # HM-600: ack after 2.5 s, acts after 3 s
    rows = run(s, 5)
    # t (s) -> limit status, AC W: acknowledged at 2.5 s (the DTU then reports 300 W), the
    # output moves at 3 s and ramps at 200 W/s
    assert rows[:4] == [
        (6, "Pending", 100),
        (7, "Pending", 100),
        (8, "Pending", 100),
        (9, "Ok", 300),
    ]
    assert s.micros[SERIAL].limit_w == 300.0


def test_refused_limits_fail_and_change_nothing():
    s = site(initial_limit_w=100.0)
    run(s, 10)
    s.set_micro_refuse_limits(SERIAL, True)
    s.set_micro_limit(SERIAL, 50, relative=True)
    run(s, 10)
    mi = s.micros[SERIAL]
    assert (mi.limit_status, mi.limit_w, round(mi.power_w)) == ("Failure", 100.0, 100)


def test_a_restart_comes_back_at_the_persistent_limit():
    s = site(initial_limit_w=100.0, restart_s=20.0)
    run(s, 10)
    s.restart_micro(SERIAL)
    rows = run(s, 30)
    assert [w for _, _, w in rows[3:20]] == [0] * 17  # off while restarting
    mi = s.micros[SERIAL]
    assert mi.limit_w == 600.0  # no persistent limit set: back at 100 %
    assert rows[-1][2] == 600
    assert mi.restarts == 1


def test_the_dtu_polls_every_inverter_and_holds_an_unreachable_ones_values():
    sc = get_scenario("micro-inverters")
    driver = ScenarioDriver(sc)
    bank = SiteInverterBank(driver.site, poll_interval_s=5.0)
    serials = [m.serial for m in MICRO_PAIR]
    driver.site.set_micro_limit(serials[0], 50, relative=True)
    ages = []
    for _ in range(12):
        driver.step(1.0)
        ages.append([round(i.data_age_s, 1) for i in bank.inverters()])
    assert max(a[0] for a in ages) < 5.0  # polled every 5 s, staggered
    assert {a[0] for a in ages} != {a[1] for a in ages}
    driver.site.set_micro_reachable(serials[0], False)
    held = bank.inverters()[0].ac.power_w
    for _ in range(20):
        driver.step(1.0)
    status = bank.inverters()[0]
    assert (status.reachable, status.ac.power_w) == (False, held)
    assert status.data_age_s >= 20


def test_scenario_passes_the_grid_through_and_dvcc_counts_the_dc_system():
    sc = get_scenario("micro-inverters")
    assert sc.site.micro_inverters == MICRO_PAIR
    driver = ScenarioDriver(sc)
    assert driver.site.ess.settings.hub4_mode == 3

    def run_with(credit: float | None) -> tuple[float, float]:
        s = Site(sc.site)
        s.set_ess_setting("hub4_mode", 3)  # the Multi passes the grid through
        s.battery.set_soc(100.0)  # full: the MPPTs may only cover what DVCC allows
        s.set_inputs([500.0], pv_dc_w=2000.0)
        for serial in s.micros:
            s.set_micro_limit(serial, 30, relative=True)
        s.set_dc_system(credit)
        for _ in range(40):
            s.step(1.0)
        assert s.solar is not None
        return s.solar.pv_power_w, s.battery.power_w

    micro_dc = sum(0.3 * m.max_power_w / 0.95 for m in MICRO_PAIR)
    pv, battery = run_with(micro_dc)  # our dcsystem: the MPPTs make up for the inverters
    assert pv == pytest.approx(micro_dc, rel=0.05)
    assert battery == pytest.approx(0.0, abs=5.0)
    pv, battery = run_with(0.0)  # a GX without a dcsystem: DVCC holds the MPPTs at CCL
    assert pv < micro_dc - 200.0
    assert battery < -200.0  # so the full battery feeds the inverters while PV is curtailed
