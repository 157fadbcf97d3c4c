"""SIGTERM mid-command: every output goes to its safe value and the process exits 0; a safe write
that does not complete within ``shutdown_timeout_s`` is logged (and put back at the next start).

The simulated GX runs on real time, ``venus-ems run`` as a child process.
"""

from __future__ import annotations

import signal
import time

import pytest
from outputs_harness import EV_DAY, Daemon, report, simulated_gx, wait_for, write_config

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
BODY = """
[ess_control]
enabled = true
[output_limiter]
enabled = true
limit_w = 8000.0
"""


def driving(gx) -> bool:
    o = gx.site.ess.overrides
    return o.setpoint_w is not None and o.max_discharge_power_w != -1.0


async def test_sigterm_puts_every_output_back_and_exits_0(bus_address, tmp_path):
    async with simulated_gx(bus_address, **EV_DAY) as gx:
        daemon = Daemon(write_config(tmp_path, BODY), bus_address, tmp_path / "d.log")
        async with daemon:
            await wait_for(lambda: driving(gx), 30, "driving both overrides", daemon=daemon)
            sent = daemon.signal(signal.SIGTERM)
            assert await daemon.wait() == 0, daemon.text()
            took = time.monotonic() - sent
        o = gx.site.ess.overrides
        assert (o.setpoint_w, o.max_discharge_power_w) == (None, -1.0)
        assert "not confirmed" not in daemon.text()
        assert list((tmp_path / "state" / "outputs").iterdir()) == []  # nothing left to clear
        report("sigterm: signal -> exit 0 with both overrides safe", seconds=took)


async def test_a_safe_write_that_times_out_is_logged_and_cleared_at_the_next_start(
    bus_address, tmp_path
):
    config = write_config(tmp_path, BODY, shutdown_timeout_s=1.0)
    async with simulated_gx(bus_address, **EV_DAY) as gx:
        daemon = Daemon(config, bus_address, tmp_path / "first.log")
        async with daemon:
            await wait_for(lambda: driving(gx), 30, "driving both overrides", daemon=daemon)
            gx.services.unanswered.add("hub4")  # hub4control hangs: SetValue gets no reply
            sent = daemon.signal(signal.SIGTERM)
            assert await daemon.wait(timeout=10) == 0, daemon.text()
            took = time.monotonic() - sent
        log = daemon.text()
        # one error line per output whose safe value was not confirmed, naming target and time
        for target in ("/Overrides/Setpoint", "/Overrides/MaxDischargePower"):
            line = next((x for x in log.splitlines() if "not confirmed" in x and target in x), None)
            assert line is not None, log
            assert "ERROR" in line
            assert "no answer within 1 s" in line
            assert "the next start puts it back" in line
        assert took < 1.0 + 3.0  # bounded by shutdown_timeout_s (plus start-up of the exit)
        assert driving(gx)  # hub4 still holds our values

        gx.services.unanswered.clear()  # hub4 answers again; the daemon starts once more
        config = write_config(tmp_path, "", name="second.toml")
        second = Daemon(config, bus_address, tmp_path / "second.log")
        async with second:
            cleared = await wait_for(
                lambda: (
                    gx.site.ess.overrides.setpoint_w is None
                    and gx.site.ess.overrides.max_discharge_power_w == -1.0
                ),
                20,
                "put back at start",
                daemon=second,
            )
        report(
            "sigterm with hub4 hung (shutdown_timeout_s 1): signal -> exit 0",
            seconds=took,
            next_start_cleared=cleared,
        )
