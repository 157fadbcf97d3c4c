"""A target service restarts under a new owner (hub4control, mk2-dbus): the daemon writes its
outputs again, or the safe value it had released to, and its status says what is in force.

The simulated GX runs on real time, ``venus-ems run`` as a child process. A restarted hub4 starts
from the default overrides (they live in hub4control's process); a restarted vebus service
leaves the Multi on its setpoints until they time out.
"""

from __future__ import annotations

import signal
import time

import anyio
import pytest
from outputs_harness import EV_DAY, STATUS, Daemon, report, simulated_gx, wait_for, write_config

from venus_ems.venus import open_monitor

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
HUB4 = "com.victronenergy.hub4"
VEBUS = "com.victronenergy.vebus.ttyS4"
SETTINGS = "com.victronenergy.settings"
SETPOINT = "/Outputs/ess_grid_setpoint/Value"
CAP = "/Outputs/ess_max_discharge_power/Value"


async def test_a_restarted_hub4_gets_our_overrides_again(bus_address, tmp_path):
    body = (
        "[ess_control]\nenabled = true\n"
        "[output_limiter]\nenabled = true\nlimit_w = 8000.0\n"
    )  # fmt: skip
    async with simulated_gx(bus_address, **EV_DAY) as gx, open_monitor(bus_address) as mon:

        def overrides():
            return gx.site.ess.overrides  # a restarted hub4 has new ones

        def status_true() -> bool:
            o = overrides()
            return mon.get(STATUS, SETPOINT) == o.setpoint_w and mon.get(STATUS, CAP) == (
                o.max_discharge_power_w
            )

        daemon = Daemon(write_config(tmp_path, body), bus_address, tmp_path / "d.log")
        async with daemon:
            await wait_for(
                lambda: (
                    overrides().setpoint_w is not None and overrides().max_discharge_power_w != -1.0
                ),
                30,
                "the daemon drives the setpoint and caps MaxDischargePower",
                daemon=daemon,
            )
            await wait_for(status_true, 5, "status and hub4 agree", daemon=daemon)
            cap = overrides().max_discharge_power_w
            owner = mon.service(HUB4).owner
            await gx.restart_service("hub4", down_s=0.5)
            back_at = time.monotonic()
            assert overrides().setpoint_w is None  # the new hub4 starts from the defaults
            reasserted = await wait_for(
                lambda: (
                    overrides().setpoint_w is not None and overrides().max_discharge_power_w == cap
                ),
                5,
                lambda: f"our overrides again: {overrides()}",
                daemon=daemon,
            )
            assert mon.service(HUB4).owner != owner
            # the status tells what hub4 holds: sample both for 5 s
            samples, mismatched = 0, 0
            while time.monotonic() - back_at < 5.0:
                samples += 1
                mismatched += not status_true()
                await anyio.sleep(0.05)
            assert mismatched <= samples // 20, (mismatched, samples)
            assert "restarted (new owner" in daemon.text()
            daemon.signal(signal.SIGTERM)
            assert await daemon.wait() == 0
        o = overrides()
        assert (o.setpoint_w, o.max_discharge_power_w) == (None, -1.0)
        report(
            "hub4 restart: re-register -> both overrides re-asserted",
            seconds=reasserted,
            status_mismatched=mismatched,
            status_samples=samples,
        )


async def test_a_released_override_is_released_again_on_a_new_hub4(bus_address, tmp_path):
    """With a safe setpoint configured, 'released' means that value: a new hub4 gets it too."""
    body = "[ess_control]\nenabled = true\nsafe_setpoint_w = 150.0\n"
    async with simulated_gx(bus_address, **EV_DAY) as gx, open_monitor(bus_address) as mon:
        daemon = Daemon(write_config(tmp_path, body), bus_address, tmp_path / "d.log")
        async with daemon:
            await wait_for(
                lambda: gx.site.ess.overrides.setpoint_w not in (None, 150.0),
                30,
                "the daemon drives the setpoint",
                daemon=daemon,
            )
            # the user switches ESS to external control: the feature holds off, the output goes
            # to its safe value
            assert await mon.set_value(SETTINGS, "/Settings/CGwacs/Hub4Mode", 3) == 0
            await wait_for(lambda: gx.site.ess.overrides.setpoint_w == 150.0, 10, "released")
            await gx.restart_service("hub4", down_s=0.2)
            took = await wait_for(
                lambda: gx.site.ess.overrides.setpoint_w == 150.0, 5, "released again"
            )
            await wait_for(lambda: mon.get(STATUS, SETPOINT) == 150.0, 2, "status")
            assert mon.get(STATUS, "/Outputs/ess_grid_setpoint/Owner") == ""
        report("hub4 restart while released: re-register -> safe value again", seconds=took)


async def test_a_restarted_vebus_gets_the_mode3_setpoints_at_once(bus_address, tmp_path):
    body = '[ess_control]\nenabled = true\nmethod = "mode3"\nallow_mode3 = true\n'
    settings = {"/Settings/CGwacs/Hub4Mode": 3}
    async with (
        simulated_gx(bus_address, **EV_DAY, settings=settings) as gx,
        open_monitor(bus_address) as mon,
    ):
        writes: list[float] = []  # when a mode-3 setpoint reached the Multi (real time)
        apply = gx.site.set_vebus_setpoint

        def counting(phase: int, watts: float) -> None:
            writes.append(time.monotonic())
            apply(phase, watts)

        gx.site.set_vebus_setpoint = counting  # type: ignore[method-assign]
        daemon = Daemon(write_config(tmp_path, body), bus_address, tmp_path / "d.log")
        async with daemon:
            await wait_for(lambda: len(writes) >= 3, 30, "mode-3 setpoints", daemon=daemon)
            n = len(writes)
            await wait_for(lambda: len(writes) > n, 7, "a refresh")
            await anyio.sleep(0.2)  # all three phases; the next refresh is due ~5 s from now
            n = len(writes)
            owner = mon.service(VEBUS).owner
            await gx.restart_service("vebus")
            back_at = time.monotonic()
            await wait_for(lambda: len(writes) > n, 5, "written again", daemon=daemon)
            took = writes[n] - back_at
            assert took < 1.0  # well before the refresh was due
            await wait_for(lambda: mon.service(VEBUS) is not None, 2, "vebus back")
            assert mon.service(VEBUS).owner != owner
            assert not any(gx.site.ess.passthrough)
            assert mon.get(STATUS, "/Outputs/ess_phase_setpoints/Value") is not None
        report("vebus restart: re-register -> mode-3 setpoints re-asserted", seconds=took)
