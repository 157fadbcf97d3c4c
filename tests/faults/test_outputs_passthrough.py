"""Mode-3 refreshes stop reaching the Multi (a broken VE.Bus link: every write answered 0, none
applied): the simulated Multi falls back to passthrough after its timeout, and ESS control
notices from the measurements and reports it; when the writes get through again it clears.

Real time, ``venus-ems run`` as a child process; the timeout is shortened as in
``test_outputs_kill.py`` (``VENUS_EMS_FAULT_MODE3_TIMEOUT_S``, default 15 s).
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from outputs_harness import EV_DAY, STATUS, Daemon, report, simulated_gx, wait_for, write_config

from venus_ems.venus import open_monitor

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
MODE3_TIMEOUT_S = float(os.environ.get("VENUS_EMS_FAULT_MODE3_TIMEOUT_S", "15"))
BODY = '[ess_control]\nenabled = true\nmethod = "mode3"\nallow_mode3 = true\n'
REASONS = "/Features/ess_control/Reasons"


async def test_lost_refreshes_fall_back_to_passthrough_and_are_reported(bus_address, tmp_path):
    settings = {"/Settings/CGwacs/Hub4Mode": 3}
    async with (
        simulated_gx(
            bus_address, **EV_DAY, settings=settings, mode3_timeout_s=MODE3_TIMEOUT_S
        ) as gx,
        open_monitor(bus_address) as mon,
    ):
        ess = gx.site.ess

        def reasons() -> str:
            return mon.get(STATUS, REASONS) or ""

        daemon = Daemon(write_config(tmp_path, BODY), bus_address, tmp_path / "d.log")
        async with daemon:
            await wait_for(
                lambda: all(at > 0 for at in ess.vebus.written_at), 30, "mode-3 setpoints",
                daemon=daemon,
            )  # fmt: skip
            await wait_for(lambda: not any(ess.passthrough), 5, "the Multi follows")
            await wait_for(lambda: reasons() != "", 10, "a decision", daemon=daemon)
            assert "passthrough" not in reasons()
            gx.services.lost_mode3_writes = True
            stopped = time.monotonic()
            last_write = max(ess.vebus.written_at)
            fell = await wait_for(
                lambda: all(ess.passthrough), MODE3_TIMEOUT_S + 5, "fallback", daemon=daemon
            )
            assert MODE3_TIMEOUT_S <= gx.site.time - last_write <= MODE3_TIMEOUT_S + 2.5
            detected = await wait_for(
                lambda: "fell back to passthrough" in reasons(),
                15,
                lambda: f"ESS control reports passthrough: {reasons()!r}",
                daemon=daemon,
            )
            message = mon.get(STATUS, "/Features/ess_control/Message") or ""
            assert "fell back to passthrough" in message
            assert "fell back to passthrough" in daemon.text()  # a warning in the log too
            gx.services.lost_mode3_writes = False  # the link works again
            await wait_for(lambda: not any(ess.passthrough), 10, "following again")
            await wait_for(
                lambda: "passthrough" not in reasons(), 15, "report cleared", daemon=daemon
            )
            daemon.signal(signal.SIGTERM)
            assert await daemon.wait() == 0
        report(
            f"mode3 refreshes lost (timeout {MODE3_TIMEOUT_S:g} s)",
            writes_lost_to_passthrough=fell,
            passthrough_to_reported=detected,
            total=time.monotonic() - stopped,
        )
