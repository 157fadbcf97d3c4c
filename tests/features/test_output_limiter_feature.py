"""Multi output limiter end to end on the simulated GX: an 11 kW car on AC-out at 10:30.

Without a cap the Multi inverts about 11 kW from the battery (ESS mode 1, grid setpoint 50 W).
"""

from __future__ import annotations

import pytest
from test_ess_control_support import SETTINGS, VEBUS, running

from venus_ems.features.ess_control import EssControl
from venus_ems.features.output_limiter import OutputLimiter, build, inverter_output
from venus_ems.runtime.config import EssControlConfig, OutputLimiterConfig

pytestmark = pytest.mark.anyio
EV_DAY = {"scenario": "ev-charging", "start_s": 10.5 * 3600}
BASE = "/Settings/VenusEms/OutputLimiter/"


def limiter(**kw) -> OutputLimiter:
    return OutputLimiter(OutputLimiterConfig(enabled=True, **{"limit_w": 5000.0, **kw}))


def output_w(site) -> float:
    """What the simulated Multi inverts (W, + = DC to AC)."""
    s = site.gx.site
    return sum(o - i for o, i in zip(s.acout_w, s.acin_w, strict=True))


async def test_caps_the_inverter_output_through_max_discharge_power(bus_address):
    async with running(bus_address, [("output_limiter", limiter())], **EV_DAY) as site:
        overrides = site.gx.site.ess.overrides
        assert output_w(site) > 7500
        seen = inverter_output(site.mon, VEBUS, 3)  # AC-out minus AC-in, as D-Bus shows it
        assert seen is not None
        assert sum(seen) == pytest.approx(output_w(site), abs=50)
        took = await site.until(lambda: overrides.max_discharge_power_w != -1.0, 5)
        assert took <= 3
        # engaged at the limit in one step, scaled by the conversion loss (the cap is on AC)
        assert 5000.0 <= overrides.max_discharge_power_w <= 5000.0 * 1.3
        outputs = []
        for _ in range(60):
            await site.run(1)
            outputs.append(output_w(site))
        assert max(outputs[6:]) <= 5000.0 + 25.0  # at most the dead band above the limit
        assert min(outputs[20:]) >= 4800.0  # and not much below it
        assert site.status("/Outputs/ess_max_discharge_power/Owner") == "output_limiter"
        assert site.status("/Features/output_limiter/Decision").startswith("cap ")
        assert site.gx.site.ess.settings.max_discharge_power_w == -1.0  # persisted: untouched
        # runtime tunable: "cap the Multi at 3 kW"
        assert site.mon.get(SETTINGS, BASE + "LimitW") == 5000.0
        assert await site.mon.set_value(SETTINGS, BASE + "LimitW", 3000.0) == 0
        await site.run(40)
        assert 2800.0 <= output_w(site) <= 3025.0
        assert overrides.max_discharge_power_w <= 3000.0 * 1.3
        assert await site.mon.set_value(SETTINGS, BASE + "LimitW", -5.0) == -1  # refused
    assert overrides.max_discharge_power_w == -1.0  # stopped: no limit


async def test_gradual_steps_and_release(bus_address):
    async with running(
        bus_address, [("output_limiter", limiter(max_step_w=500.0))], **EV_DAY
    ) as site:
        ess = site.gx.site.ess
        await site.run(20)
        writes: list[float] = []
        last = ess.overrides.max_discharge_power_w
        for _ in range(60):
            await site.run(1)
            if ess.overrides.max_discharge_power_w != last:
                writes.append(ess.overrides.max_discharge_power_w - last)
                last = ess.overrides.max_discharge_power_w
        assert all(abs(step) <= 500.0 for step in writes), writes  # never a big swing
        # the car stops: the output falls far below the cap, which is released after 30 s
        site.gx.site.set_ev_enabled(False)
        took = await site.until(lambda: ess.overrides.max_discharge_power_w == -1.0, 90)
        assert took >= 30
        assert site.status("/Features/output_limiter/Decision") == "no cap"


async def test_holds_off_in_ess_mode_3(bus_address):
    settings = {"/Settings/CGwacs/Hub4Mode": 3}
    async with running(
        bus_address, [("output_limiter", limiter())], settings=settings, **EV_DAY
    ) as site:
        await site.run(10)
        assert site.gx.site.ess.overrides.max_discharge_power_w == -1.0
        assert site.status("/Features/output_limiter/Decision") == "holding off"
        assert "mode 3" in site.status("/Features/output_limiter/Reasons")


async def test_setpoint_method_outranks_grid_control(bus_address):
    ess_feature = EssControl(EssControlConfig(enabled=True))
    lim = limiter(method="setpoint")
    features = [("ess_control", ess_feature), ("output_limiter", lim)]
    async with running(bus_address, features, **EV_DAY) as site:
        await site.run(40)
        assert output_w(site) <= 5000.0 + 500.0
        assert site.status("/Outputs/ess_grid_setpoint/Owner") == "output_limiter"
        assert site.gx.site.ess.overrides.setpoint_w > 4000.0  # the grid takes the rest
        site.gx.site.set_ev_enabled(False)
        await site.until(
            lambda: site.status("/Outputs/ess_grid_setpoint/Owner") == "ess_control", 90
        )


async def test_setpoint_method_keeps_the_cap_while_the_grid_reading_is_missing(bus_address):
    """Regression: without a grid reading the setpoint claim was no longer renewed and expired
    after 30 s, lifting the cap; missing readings must keep the cap in force. (Without its
    meter the simulated hub4control stops inverting: a long release time keeps the cap.)"""
    lim = limiter(method="setpoint", release_hysteresis_s=600.0)
    async with running(bus_address, [("output_limiter", lim)], **EV_DAY) as site:
        owner = "/Outputs/ess_grid_setpoint/Owner"
        await site.until(lambda: site.status(owner) == "output_limiter", 20)
        await site.run(5)
        site.gx.site.set_meter_connected(False)  # systemcalc's grid values turn invalid
        await site.run(2)
        held = lim.holder.value
        assert isinstance(held, float)
        assert held > 1000.0  # import for the car beyond the cap, far above the ESS setting
        await site.run(40)  # longer than the claim's time to live
        assert site.status(owner) == "output_limiter"
        assert site.gx.site.ess.overrides.setpoint_w == held
        assert "no grid reading" in site.status("/Features/output_limiter/Reasons")


async def test_phase_limits_on_a_single_phase_multi_stop_with_a_config_error(bus_address):
    feat = build(OutputLimiterConfig(enabled=True, phase_limits_w=(3000.0, 3000.0, 2000.0)))
    assert [t.name for t in feat.tunables.items.values()] == [
        "l1_limit_w",
        "l2_limit_w",
        "l3_limit_w",
    ]
    others = [("ess_control", EssControl(EssControlConfig(enabled=True)))]  # keeps the daemon up
    async with running(bus_address, [*others, ("output_limiter", feat)], scenario="winter") as site:
        await site.until(lambda: site.status("/Features/output_limiter/State") == "failed", 5)
        assert "needs a 3-phase Multi" in site.status("/Features/output_limiter/LastError")
        assert site.gx.site.ess.overrides.max_discharge_power_w == -1.0


class CrashingLimiter(OutputLimiter):
    """Raises once, after some decisions: a bug inside the feature."""

    def __init__(self, cfg: OutputLimiterConfig) -> None:
        super().__init__(cfg)
        self.steps = 0

    def step(self, ctx, act) -> None:
        self.steps += 1
        if self.steps == 20:
            raise RuntimeError("simulated bug")
        super().step(ctx, act)


async def test_a_crash_lifts_the_cap_until_the_restart(bus_address):
    cfg = OutputLimiterConfig(enabled=True, limit_w=5000.0)
    async with running(bus_address, [("output_limiter", CrashingLimiter(cfg))], **EV_DAY) as site:
        overrides = site.gx.site.ess.overrides
        await site.until(lambda: overrides.max_discharge_power_w != -1.0, 10)
        await site.until(lambda: overrides.max_discharge_power_w == -1.0, 40)  # safe: no limit
        await site.until(lambda: overrides.max_discharge_power_w != -1.0, 20)  # capped again
        assert site.status("/Features/output_limiter/Restarts") == 1
        assert site.status("/Features/output_limiter/LastError") == "RuntimeError: simulated bug"


async def test_stale_multi_readings_keep_the_cap(bus_address):
    """A fuse limit must not be lifted because the readings stopped: the cap in force stays."""
    async with running(bus_address, [("output_limiter", limiter())], **EV_DAY) as site:
        overrides = site.gx.site.ess.overrides
        await site.until(lambda: overrides.max_discharge_power_w != -1.0, 10)
        await site.run(10)
        await site.gx.services.vebus.close()  # the Multi's readings stop
        await site.run(40)
        assert overrides.max_discharge_power_w != -1.0
        reasons = site.status("/Features/output_limiter/Reasons")
        assert "Multi AC-out" in reasons


async def test_dynamic_ess_is_left_alone(bus_address):
    settings = {"/Settings/CGwacs/Hub4Mode": 1}
    async with running(
        bus_address, [("output_limiter", limiter())], settings=settings, **EV_DAY
    ) as site:
        overrides = site.gx.site.ess.overrides
        await site.until(lambda: overrides.max_discharge_power_w != -1.0, 10)
        assert await site.mon.set_value(SETTINGS, "/Settings/DynamicEss/Mode", 1) == 0
        await site.until(
            lambda: site.status("/Features/output_limiter/Decision") == "holding off", 10
        )
        overrides.max_discharge_power_w = 1234.0  # what Dynamic ESS writes
        await site.run(5)
    assert overrides.max_discharge_power_w == 1234.0  # neither overwritten nor reset on stop
