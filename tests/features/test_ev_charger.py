"""[ev_charger] end to end: the emulated Wattpilot (real websocket) as com.victronenergy.evcharger
on the simulated GX (real D-Bus): GUI writes, surplus charging, stale input, crash."""

from __future__ import annotations

import anyio
import pytest
from ev_support import EVCS, FAST, ev_site

from venus_ems.features.ev_charger import EvChargerFeature
from venus_ems.runtime.config import EvChargerConfig
from venus_ems.venus import Identity, Service

pytestmark = pytest.mark.anyio


async def test_manual_mode_follows_the_gui(bus_address, tmp_path):
    async with ev_site(bus_address, tmp_path, ev='mode = "manual"\nmanual_current_a = 10\n') as s:
        # the car is plugged in (10:00-13:30): AutoStart starts it at 10 A on 3 phases
        await s.until(lambda: s.evcs("/Status") == 2)
        await s.until(lambda: s.ev.enabled and s.ev.current_setpoint_a == 10)
        assert s.evcs("/Mode") == 0
        assert s.evcs("/StartStop") == 1
        await s.until(lambda: abs((s.evcs("/Ac/Power") or 0) - s.ev.power_w) < 400)
        assert s.evcs("/Session/Energy") is not None
        assert s.evcs("/Position") == 0

        assert await s.mon.set_value(EVCS, "/StartStop", 0) == 0
        await s.until(lambda: not s.ev.enabled)
        await s.until(lambda: s.evcs("/Status") == 1)
        assert await s.mon.set_value(EVCS, "/SetCurrent", 8.0) == 0
        assert await s.mon.set_value(EVCS, "/StartStop", 1) == 0
        await s.until(lambda: s.ev.enabled and s.ev.current_setpoint_a == 8)

        # bad writes are refused and change nothing
        assert await s.mon.set_value(EVCS, "/SetCurrent", 99.0) != 0
        assert await s.mon.set_value(EVCS, "/Mode", 7) != 0
        assert await s.mon.set_value(EVCS, "/StartStop", "yes") != 0
        assert s.evcs("/SetCurrent") == 8.0
        assert s.evcs("/Mode") == 0
        # /MaxCurrent caps: 7 A from the GUI
        assert await s.mon.set_value(EVCS, "/MaxCurrent", 7.0) == 0
        await s.until(lambda: s.ev.current_setpoint_a == 7)


async def test_auto_mode_charges_from_surplus_and_pauses_on_a_lost_meter(bus_address, tmp_path):
    ev = FAST + "battery_soc_pct = 0\nmax_phases = 1\n"  # the car before the battery, 1 phase
    async with ev_site(bus_address, tmp_path, ev=ev) as s:
        site = s.sim.gx.site
        await s.until(lambda: s.evcs("/Mode") == 1)
        await s.until(lambda: s.status("/Features/ev_charger/Decision") not in (None, ""))
        decision = s.status("/Features/ev_charger/Decision")
        reasons = s.status("/Features/ev_charger/Reasons")
        assert "surplus" in reasons, (decision, reasons)
        if decision.startswith("on"):
            assert s.ev.enabled
        site.set_meter_connected(False)  # systemcalc's grid values turn invalid
        await s.until(lambda: not s.ev.enabled)
        assert "grid reading stale or missing" in s.status("/Features/ev_charger/Reasons")
        site.set_meter_connected(True)


async def test_opportunity_loads_makes_surplus_charging_stand_down(bus_address, tmp_path):
    ol = Service(
        "com.victronenergy.opportunityloads",
        identity=Identity("OL"),
        device_instance=0,
        address=bus_address,
    )
    async with ev_site(bus_address, tmp_path, ev=FAST + "battery_soc_pct = 0\n") as s, ol:
        await s.until(
            lambda: "Opportunity Loads" in (s.status("/Features/ev_charger/Reasons") or "")
        )
        await s.until(lambda: not s.ev.enabled)


class Crashing(EvChargerFeature):
    """Raises after some decisions: a bug inside the feature."""

    steps = 0

    async def step(self, ctx, act, tracker, dev) -> None:
        type(self).steps += 1
        if type(self).steps == 5:
            raise RuntimeError("simulated bug")
        await super().step(ctx, act, tracker, dev)


async def test_a_crash_pauses_the_charger_until_the_feature_is_back(bus_address, tmp_path):
    def features(sim):
        wp = sim.wattpilot
        cfg = EvChargerConfig(
            enabled=True, host=wp.host, password=wp.password, mode="manual", manual_current_a=12
        )
        return [("ev_charger", Crashing(cfg))]

    Crashing.steps = 0
    async with ev_site(bus_address, tmp_path, features=features) as s:
        wp = s.sim.wattpilot
        await s.until(lambda: s.ev.enabled and s.ev.current_setpoint_a == 12)
        before = len(wp.writes)
        await s.until(lambda: Crashing.steps >= 8)
        # the actuator's safe state (paused: frc 1) is written and acknowledged at once...
        await s.until(lambda: ("frc", 1) in list(wp.writes)[before:])
        # ...and the restarted feature (1 s later) charges again
        await s.until(lambda: s.ev.enabled and list(wp.writes)[-1] == ("frc", 2), 30)


class Distributor:
    """A stand-in for the [surplus] distributor: grants the charger a fixed allowance."""

    name = "surplus"

    def __init__(self, grant_w: float) -> None:
        self.grant_w = grant_w

    async def run(self, ctx, *, task_status) -> None:
        ctx.consumers.activate(self.name)
        task_status.started()
        try:
            while True:
                for seat in ctx.consumers.consumers():
                    ctx.consumers.grant(seat.spec.name, self.grant_w, ctx.clock.monotonic())
                await anyio.sleep(1)
        finally:
            ctx.consumers.deactivate(self.name)


async def test_auto_mode_follows_the_distributors_grant(bus_address, tmp_path):
    def features(sim):
        wp = sim.wattpilot
        cfg = EvChargerConfig(
            enabled=True,
            host=wp.host,
            password=wp.password,
            start_delay_s=0,
            min_on_off_s=0,
            max_phases=1,
        )
        return [("surplus", Distributor(2100.0)), ("ev_charger", EvChargerFeature(cfg))]

    async with ev_site(bus_address, tmp_path, features=features) as s:
        # 2100 W granted on one phase: 9 A (2100 / 230 V = 9.1, rounded down)
        await s.until(lambda: s.ev.enabled and s.ev.current_setpoint_a == 9, 30)
        assert "granted 2100 W" in s.status("/Features/ev_charger/Reasons")


async def test_a_silent_charger_is_shown_invalid_not_zero_and_recovers(bus_address, tmp_path):
    async with ev_site(bus_address, tmp_path, ev='mode = "manual"\nstale_input_s = 6\n') as s:
        await s.until(lambda: s.evcs("/Status") == 2)
        await s.sim.wattpilot.set_fault("silent")  # the socket stays open, nothing comes
        await s.until(lambda: s.evcs("/Connected") == 0, 20)
        assert s.evcs("/Ac/Power") is None  # invalid, never 0 W
        assert s.evcs("/Status") is None
        assert s.status("/Features/ev_charger/Decision") == "charger unreachable: safe state"
        await s.sim.wattpilot.set_fault("ok")
        await s.until(lambda: s.evcs("/Connected") == 1 and s.evcs("/Status") == 2, 40)
