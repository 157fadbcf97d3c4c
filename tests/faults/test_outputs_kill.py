"""SIGKILL mid-command, then restart: what the killed daemon left is cleared at the next start,
and in ESS mode 3 the Multi's own 60 s timeout covers the gap in between.

The simulated GX runs on real time; ``venus-ems run`` is a child process killed with SIGKILL.
hub4's overrides have no timeout in the simulator (hub4control's is undocumented): nothing but
the restarted daemon clears them. The mode-3 timeout is shortened from 60 s to
``VENUS_EMS_FAULT_MODE3_TIMEOUT_S`` (default 15 s) to keep the suite fast; run with 60 to
measure the real figure (docs/reliability.md).
"""

from __future__ import annotations

import os
import signal
import time

import anyio
import pytest
from outputs_harness import EV_DAY, STATUS, Daemon, report, simulated_gx, wait_for, write_config

from venus_ems.venus import open_monitor

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
SETTINGS = "com.victronenergy.settings"
MODE3_TIMEOUT_S = float(os.environ.get("VENUS_EMS_FAULT_MODE3_TIMEOUT_S", "15"))
REFRESH_S = 5.0

CAPPING = """
[ess_control]
enabled = true
[output_limiter]
enabled = true
limit_w = 8000.0
"""
NOT_CAPPING = """
[output_limiter]
enabled = true
limit_w = 20000.0
"""
MODE3 = f"""
[ess_control]
enabled = true
method = "mode3"
allow_mode3 = true
mode3_refresh_s = {REFRESH_S}
"""


async def test_hub4_leftovers_stay_after_sigkill_and_go_at_the_next_start(bus_address, tmp_path):
    async with (
        simulated_gx(bus_address, **EV_DAY) as gx,
        open_monitor(bus_address) as mon,
    ):
        o = gx.site.ess.overrides
        first = Daemon(write_config(tmp_path, CAPPING), bus_address, tmp_path / "first.log")
        async with first:
            await wait_for(
                lambda: o.setpoint_w is not None and o.max_discharge_power_w != -1.0,
                30,
                "the daemon drives the setpoint and caps MaxDischargePower",
                daemon=first,
            )
            first.signal(signal.SIGKILL)
            assert await first.wait() == -signal.SIGKILL
        left = (o.setpoint_w, o.max_discharge_power_w)
        assert (tmp_path / "state" / "outputs" / "ess.max_discharge_power.json").exists()
        await anyio.sleep(3.0)  # nothing in Victron's hub4 takes them back
        assert (o.setpoint_w, o.max_discharge_power_w) == left

        # the user raises the limit meanwhile (a stored tunable wins over the TOML, D12)
        assert await mon.set_value(SETTINGS, "/Settings/VenusEms/OutputLimiter/LimitW", 2e4) == 0
        config = write_config(tmp_path, NOT_CAPPING, name="second.toml")
        second = Daemon(config, bus_address, tmp_path / "second.log")
        async with second:
            cleared = await wait_for(
                lambda: o.setpoint_w is None and o.max_discharge_power_w == -1.0,
                20,
                lambda: f"the leftovers are put back to their safe values: {o}",
                daemon=second,
            )
            await wait_for(
                lambda: mon.get(STATUS, "/Features/output_limiter/Decision") == "no cap",
                20,
                lambda: f"the limiter runs: {mon.get(STATUS, '/Features/output_limiter/Decision')}",
                daemon=second,
            )
            # the status is true: no cap reported, none in force
            await wait_for(
                lambda: mon.get(STATUS, "/Outputs/ess_max_discharge_power/Value") == -1.0,
                5,
                "the status shows the value in force",
                daemon=second,
            )
            assert gx.site.ess.overrides.max_discharge_power_w == -1.0
            assert "the last run left" in second.text()
            second.signal(signal.SIGTERM)
            assert await second.wait() == 0, second.text()
        assert list((tmp_path / "state" / "outputs").iterdir()) == []
        report("sigkill hub4: restart -> leftovers cleared (s, incl. start-up)", cleared=cleared)


async def test_mode3_setpoints_fall_back_by_themselves_after_sigkill(bus_address, tmp_path):
    """No restart: the Multi drops the setpoints it is no longer given, without a meter."""
    settings = {"/Settings/CGwacs/Hub4Mode": 3}
    async with simulated_gx(
        bus_address, **EV_DAY, settings=settings, mode3_timeout_s=MODE3_TIMEOUT_S
    ) as gx:
        ess = gx.site.ess
        daemon = Daemon(write_config(tmp_path, MODE3), bus_address, tmp_path / "d.log")
        async with daemon:
            await wait_for(
                lambda: all(at > 0 for at in ess.vebus.written_at) and not any(ess.passthrough),
                30,
                "the daemon drives the mode-3 setpoints",
                daemon=daemon,
            )
            await anyio.sleep(REFRESH_S + 1)  # a refresh or two
            killed = daemon.signal(signal.SIGKILL)
            await daemon.wait()
        sim_killed = gx.site.time
        last_write = max(ess.vebus.written_at)
        took = await wait_for(lambda: all(ess.passthrough), MODE3_TIMEOUT_S + 5, "fallback")
        fallback = time.monotonic() - killed
        # the last refresh came at most REFRESH_S before the kill; the GX steps once a second
        assert MODE3_TIMEOUT_S - REFRESH_S - 1.5 <= fallback <= MODE3_TIMEOUT_S + 1.5, fallback
        # simulated time: the step after the timeout shows it (1 s steps, polled meanwhile)
        assert MODE3_TIMEOUT_S <= gx.site.time - last_write <= MODE3_TIMEOUT_S + 2.5
        report(
            f"sigkill mode3 (timeout {MODE3_TIMEOUT_S:g} s): kill -> passthrough",
            seconds=fallback,
            since_last_refresh=gx.site.time - last_write,
            after_kill_sim=gx.site.time - sim_killed,
            polled=took,
        )


async def test_mode3_setpoints_left_by_a_killed_run_are_cleared_at_start(bus_address, tmp_path):
    settings = {"/Settings/CGwacs/Hub4Mode": 3}
    async with simulated_gx(
        bus_address, **EV_DAY, settings=settings, mode3_timeout_s=MODE3_TIMEOUT_S
    ) as gx:
        vebus = gx.site.ess.vebus
        first = Daemon(write_config(tmp_path, MODE3), bus_address, tmp_path / "first.log")
        async with first:
            await wait_for(
                lambda: (
                    all(at > 0 for at in vebus.written_at)
                    and any(abs(w) > 100 for w in vebus.setpoints_w)
                ),
                30,
                "the daemon drives the mode-3 setpoints",
                daemon=first,
            )
            first.signal(signal.SIGKILL)
            await first.wait()
        left = list(vebus.setpoints_w)
        second = Daemon(write_config(tmp_path, "", name="second.toml"), bus_address,
                        tmp_path / "second.log")  # fmt: skip
        async with second:
            cleared = await wait_for(
                lambda: vebus.setpoints_w == [0.0, 0.0, 0.0], 20, "safe setpoints", daemon=second
            )
            assert "the last run left a value we cannot read back" in second.text()
        assert left != [0.0, 0.0, 0.0]
        report("sigkill mode3: restart -> setpoints cleared (s, incl. start-up)", cleared=cleared)
