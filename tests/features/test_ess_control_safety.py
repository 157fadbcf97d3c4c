"""Safe states of ESS grid control on the simulated GX: meter lost, meter frozen, crash,
and a Multi that falls back to passthrough when its mode-3 setpoints are not renewed."""

from __future__ import annotations

import pytest
from test_ess_control_support import running

from venus_ems.features.ess_control import EssControl
from venus_ems.runtime.actuator import Actuator
from venus_ems.runtime.config import EssControlConfig
from venus_ems.runtime.outputs import PhaseSetpointWriter
from venus_ems.venus import Identity, PathSpec, Service

pytestmark = pytest.mark.anyio
EV_DAY = {"scenario": "ev-charging", "start_s": 10.5 * 3600}
SAFE = 150.0


def controlling(setpoint: float | None) -> bool:
    """The zero-export aim (25 W), or a trim of it within the tracking tolerance."""
    return setpoint is not None and setpoint != SAFE and 0.0 <= setpoint <= 125.0


def config(**kw) -> EssControlConfig:
    return EssControlConfig(enabled=True, safe_setpoint_w=SAFE, **kw)


async def test_lost_meter_goes_to_the_safe_setpoint_and_back(bus_address):
    async with running(bus_address, [("ess_control", EssControl(config()))], **EV_DAY) as site:
        ess = site.gx.site.ess
        await site.until(lambda: ess.overrides.setpoint_w == 25.0, 5)
        site.gx.site.set_meter_connected(False)  # systemcalc's grid values turn invalid
        took = await site.until(lambda: ess.overrides.setpoint_w == SAFE, 5)
        assert took <= 3
        assert "no grid reading" in site.status("/Features/ess_control/Reasons")
        assert "safe setpoint 150 W" in site.status("/Features/ess_control/Message")
        site.gx.site.set_meter_connected(True)
        await site.until(lambda: controlling(ess.overrides.setpoint_w), 10)
        message = site.status("/Features/ess_control/Message")
        assert "resolved: inputs missing or stale (no grid reading)" in message


async def test_lost_meter_without_a_safe_setpoint_gives_the_override_back(bus_address):
    """The core sends ReleaseSetpoint: hub4control follows the user's setting until readings
    return, and the message says so (it used to claim "safe setpoint 0 W")."""
    feat = EssControl(EssControlConfig(enabled=True))
    async with running(bus_address, [("ess_control", feat)], **EV_DAY) as site:
        ess = site.gx.site.ess
        await site.until(lambda: ess.overrides.setpoint_w == 25.0, 5)
        assert site.status("/Outputs/ess_grid_setpoint/Owner") == "ess_control"
        site.gx.site.set_meter_connected(False)
        await site.until(lambda: ess.overrides.setpoint_w is None, 5)
        assert site.status("/Outputs/ess_grid_setpoint/Owner") in (None, "")
        assert site.status("/Features/ess_control/Decision") == "setpoint released"
        message = site.status("/Features/ess_control/Message")
        assert "inputs missing or stale (no grid reading): safe state: setpoint released" in message
        await site.run(5)
        assert ess.overrides.setpoint_w is None  # released once, not claimed again meanwhile
        site.gx.site.set_meter_connected(True)
        await site.until(lambda: controlling(ess.overrides.setpoint_w), 10)
        assert site.status("/Outputs/ess_grid_setpoint/Owner") == "ess_control"


async def test_frozen_meter_goes_to_the_safe_setpoint_after_stale_input_s(bus_address):
    meter = Service(
        "com.victronenergy.grid.frozen",
        identity=Identity("test meter"),
        device_instance=10,
        address=bus_address,
    )
    for p in (1, 2, 3):
        meter.add_path(f"/Ac/L{p}/Power", None, PathSpec("d"))
    feat = EssControl(config(stale_input_s=5.0))
    async with (
        meter,
        running(bus_address, [("ess_control", feat)], external_meter=True, **EV_DAY) as site,
    ):
        ess = site.gx.site.ess

        async def follow(seconds: int) -> None:
            for _ in range(seconds):
                meter.update(
                    {f"/Ac/L{p}/Power": site.gx.site.meter.true_w[p - 1] for p in (1, 2, 3)}
                )
                await site.bus.settle()  # the GX has the reading before its next step
                await site.run(1)

        await follow(10)
        assert controlling(ess.overrides.setpoint_w)
        frozen_at = site.gx.site.time  # the meter keeps its last values: systemcalc too
        took = await site.until(lambda: ess.overrides.setpoint_w == SAFE, 15)
        assert 4 <= site.gx.site.time - frozen_at <= 8, took
        assert "grid reading stale" in site.status("/Features/ess_control/Reasons")
        await follow(5)
        assert controlling(ess.overrides.setpoint_w)


class Crashing(EssControl):
    """Raises once, after a few decisions: a bug inside the feature."""

    def __init__(self, cfg: EssControlConfig) -> None:
        super().__init__(cfg)
        self.steps = 0

    def step(self, ctx, act, tracker) -> None:
        self.steps += 1
        if self.steps == 6:
            raise RuntimeError("simulated bug")
        super().step(ctx, act, tracker)


async def test_crash_releases_the_output_to_its_safe_value_until_restarted(bus_address):
    async with running(bus_address, [("ess_control", Crashing(config()))], **EV_DAY) as site:
        ess = site.gx.site.ess
        await site.until(lambda: ess.overrides.setpoint_w == 25.0, 5)
        await site.until(lambda: ess.overrides.setpoint_w == SAFE, 10)  # crashed: safe at once
        assert site.status("/Features/ess_control/State") == "backing_off"
        await site.until(lambda: controlling(ess.overrides.setpoint_w), 10)  # restarted
        assert site.status("/Features/ess_control/Restarts") == 1


class LostWriter(PhaseSetpointWriter):
    """Mode-3 setpoint writes that stop reaching the Multi once ``lost`` is set."""

    lost = False

    async def write(self, value) -> None:
        if not self.lost:
            await super().write(value)


class LosingWrites(EssControl):
    """Its mode-3 actuator writes through a :class:`LostWriter`."""

    writer: LostWriter | None = None

    def actuator(self, ctx):
        self.writer = LostWriter(ctx.monitor)
        return ctx.actuators.ensure(
            "ess.phase_setpoints",
            lambda: Actuator(
                "ess.phase_setpoints",
                self.writer,
                safe_value=(0.0,) * self.phases,
                clock=ctx.clock,
                refresh_s=5.0,
            ),
        )


async def test_a_multi_that_falls_back_to_passthrough_is_detected(bus_address):
    feat = LosingWrites(config(method="mode3", allow_mode3=True))
    settings = {"/Settings/CGwacs/Hub4Mode": 3}
    async with running(bus_address, [("ess_control", feat)], settings=settings, **EV_DAY) as site:
        await site.run(20)
        assert not any(site.gx.site.ess.passthrough)
        assert "passthrough" not in site.status("/Features/ess_control/Reasons")
        assert feat.writer is not None
        feat.writer.lost = True  # the refresh no longer reaches the Multi
        took = await site.until(lambda: any(site.gx.site.ess.passthrough), 70)
        assert took > 50  # the simulated Multi gives up 60 s after the last setpoint
        detected = await site.until(
            lambda: "passthrough" in (site.status("/Features/ess_control/Reasons") or ""), 10
        )
        assert detected <= 10  # three readings once the command had time to act
        assert "fell back to passthrough" in site.status("/Features/ess_control/Message")
        feat.writer.lost = False  # refreshes arrive again: the Multi follows, the report clears
        await site.until(lambda: not any(site.gx.site.ess.passthrough), 10)
        await site.until(
            lambda: "passthrough" not in site.status("/Features/ess_control/Reasons"), 10
        )
