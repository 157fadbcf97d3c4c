"""The meter fault row on the running daemon and the simulated GX: hold, then invalid, never 0 W.

``venus-ems run`` (its own process) publishes an emulated Shelly Pro 3EM as the grid meter
``com.victronenergy.grid.venusems_house`` beside the simulated GX. Every fault the emulator can
be told to produce is injected in turn into the running daemon; each must hold the last
values, then make them invalid (``/Connected`` = 0), never publish 0 W or anything else, keep
the daemon alive and its memory bounded, and recover by itself once the meter answers again.
The peak resident set during each fault is printed (``pytest -s``) for docs/reliability.md.
"""

from __future__ import annotations

import time

import pytest
from inputs_helpers import Daemon, daemon_config, wait_alive

from venus_ems.clock import RealClock
from venus_ems.sim.devices import PhaseReading, StaticMeter, pro_3em
from venus_ems.sim.run import running_site
from venus_ems.venus import open_monitor

pytestmark = pytest.mark.anyio
OURS = "com.victronenergy.grid.venusems_house"
POLL_S, HOLD_S, TIMEOUT_S = 0.25, 1.0, 0.5
MODES = [
    "offline",
    "slow",
    "garbage",
    "truncated",
    "http500",
    "auth",
    "oversized",
    "chunked_flood",
    "gzip_bomb",
    "deep_json",
    "huge_numbers",
    "trickle",
]
TOTAL_W, L1_W = 420.0, 700.0
PEAK_ALLOWANCE_MB = 25.0
"""How far a fault may raise the daemon's peak resident set above its own steady state."""


def meter_config(host: str) -> str:
    return f"""
[[grid_meter]]
name = "house"
enabled = true
host = "{host}"
generation = 2
poll_interval_s = {POLL_S}
hold_s = {HOLD_S}
timeout_s = {TIMEOUT_S}
"""


async def test_every_meter_fault_holds_then_invalidates_and_memory_stays_bounded(
    bus_address, tmp_path, capsys
):
    clock = RealClock()
    source = StaticMeter(
        [PhaseReading.of(p, energy_forward_wh=100.0) for p in (L1_W, -300.0, 20.0)], clock=clock
    )
    seen: list[tuple[float, str, object]] = []

    def record(changes) -> None:
        now = time.monotonic()
        for (name, path), value in changes.items():
            if name == OURS and path in ("/Ac/Power", "/Ac/L1/Power", "/Connected"):
                seen.append((now, path, value))

    async with (
        running_site("summer-sunny", address=bus_address, clock=clock, start_s=11 * 3600),
        pro_3em(source, clock=clock) as emu,
        open_monitor(bus_address) as mon,
    ):
        emu.faults.configure(slow_s=5.0, trickle_s=0.1)
        mon.on_change(record)
        host = emu.url.removeprefix("http://")
        with Daemon(tmp_path, bus_address, daemon_config(tmp_path, meter_config(host))) as d:

            def connected() -> bool:
                return mon.get(OURS, "/Connected") == 1 and mon.get(OURS, "/Ac/Power") == TOTAL_W

            await wait_alive(d, connected, 30)
            steady = d.rss_mb()
            rows = []
            for mode in MODES:
                d.reset_peak()
                seen.clear()
                start = time.monotonic()
                await emu.set_fault(mode)
                await wait_alive(d, lambda: mon.get(OURS, "/Connected") == 0, HOLD_S + 10)
                invalid_after = time.monotonic() - start
                await emu.set_fault("ok")
                back = time.monotonic()
                await wait_alive(d, connected, 10)
                recovered_after = time.monotonic() - back
                peak = d.peak_mb()
                rows.append((mode, invalid_after, recovered_after, peak))

                powers = [(t - start, v) for t, p, v in seen if p == "/Ac/Power"]
                # held (no change at all), then invalid; never 0 W, never anything else
                assert all(v in (TOTAL_W, None) for _, v in powers), (mode, powers)
                assert all(v in (L1_W, None) for t, p, v in seen if p == "/Ac/L1/Power"), mode
                first_invalid = next(t for t, v in powers if v is None)
                assert first_invalid >= HOLD_S - POLL_S - 0.05, (mode, first_invalid)
                assert first_invalid <= HOLD_S + POLL_S + TIMEOUT_S + 1.5, (mode, first_invalid)
                assert recovered_after < 5.0, mode
                assert peak < steady + PEAK_ALLOWANCE_MB, (mode, peak, steady)
            final = d.rss_mb()
            log = d.log_text()
        assert "Traceback" not in log
        assert "holding the last values" in log
    with capsys.disabled():
        print(f"\ndaemon steady RSS {steady:.1f} MB, after all faults {final:.1f} MB")
        print("fault            invalid after  recovered after  peak RSS")
        for mode, invalid, recovered, peak in rows:
            print(f"{mode:16s} {invalid:9.2f} s {recovered:12.2f} s {peak:9.1f} MB")
    assert final < steady + PEAK_ALLOWANCE_MB
