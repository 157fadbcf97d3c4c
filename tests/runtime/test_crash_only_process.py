"""``venus-ems run`` as a process: a feature that keeps crashing with a bug makes it exit 1
with every output in its safe state, after a bounded number of restarts during which the
other features keep running. The simulated GX runs here on real time."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest
from dbus_fast import MessageType

from venus_ems.clock import RealClock
from venus_ems.runtime.supervisor import MAX_RESTARTS
from venus_ems.sim.devices import MemorySwitch, ShellyGen1Emulator
from venus_ems.sim.venus.gx import SimulatedGx
from venus_ems.venus import open_monitor
from venus_ems.venus.codec import unwrap
from waiting import bus_watch, until

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).parents[2]
CHILD = Path(__file__).parent / "crash_child.py"
STATUS = "com.victronenergy.venusems"
SAFE = 150.0


async def test_a_crash_looping_feature_ends_the_process_with_exit_1_and_outputs_safe(
    bus_address, tmp_path
):
    config = tmp_path / "venus-ems.toml"
    config.write_text(
        "schema_version = 1\n"
        f"[general]\nlog_console = true\nstate_dir = '{tmp_path / 'state'}'\n"
        "restart_backoff_initial_s = 0.1\nrestart_backoff_max_s = 1.0\n"
        f"[ess_control]\nenabled = true\nsafe_setpoint_w = {SAFE}\n"
        "[settings_guard]\nenabled = true\n"
    )
    gx = SimulatedGx("ev-charging", address=bus_address, clock=RealClock(), start_s=10.5 * 3600)
    others: list[str] = []  # the state of the other feature at each crash

    def setpoint() -> float | None:
        return gx.site.ess.overrides.setpoint_w

    async with anyio.create_task_group() as tg, bus_watch(bus_address) as bus:
        writes = bus.record(
            lambda m: m.member == "SetValue" and m.path == "/Overrides/Setpoint"
            and m.message_type is MessageType.METHOD_CALL
        )  # fmt: skip
        await tg.start(gx.run)
        async with open_monitor(bus_address) as mon:

            async def watch() -> None:
                while True:
                    state = mon.get(STATUS, "/Features/ess_control/State")
                    if state == "backing_off" and (not others or others[-1] != "seen"):
                        others.append(mon.get(STATUS, "/Features/settings_guard/State"))
                        others.append("seen")
                    elif state == "running" and others and others[-1] == "seen":
                        others.append("next")
                    await anyio.sleep(0.005)

            tg.start_soon(watch)
            cmd = [sys.executable, str(CHILD), "ess_control", "10", "run", "--config",
                   str(config), "--bus", bus_address]  # fmt: skip
            async with await anyio.open_process(cmd, cwd=ROOT) as proc:
                with anyio.fail_after(60):
                    code = await proc.wait()
                stderr = (await read_all(proc.stderr)).decode(errors="replace")
            await until(lambda: mon.service(STATUS) is None)
        tg.cancel_scope.cancel()
    assert code == 1, stderr
    # every crash logged with its traceback, then the crash loop ends the process
    assert stderr.count("Traceback (most recent call last)") >= MAX_RESTARTS + 1, stderr
    assert stderr.count("RuntimeError: injected bug (run") >= MAX_RESTARTS + 1, stderr
    assert f"ess_control crashed {MAX_RESTARTS + 1} times within 600 s" in stderr, stderr
    # every run drove the override and every crash put it back to the safe value
    values = [unwrap(m.body[0]) for m in writes]
    changes = [v for i, v in enumerate(values) if i == 0 or values[i - 1] != v]
    assert len(changes) == 2 * (MAX_RESTARTS + 1), values  # (the last safe write may repeat)
    assert changes[1::2] == [SAFE] * (MAX_RESTARTS + 1), values
    assert SAFE not in changes[::2], values
    assert setpoint() == SAFE
    # the other feature kept running through every restart of the crashing one
    states = [s for s in others if s not in ("seen", "next")]
    assert len(states) >= MAX_RESTARTS, others
    assert set(states) == {"running"}, others


async def read_all(stream) -> bytes:
    chunks = []
    try:
        while stream is not None:
            chunks.append(await stream.receive())
    except anyio.EndOfStream:
        pass
    return b"".join(chunks)


async def run_until_exit(config: Path, bus_address: str, *, then=None) -> tuple[int, str]:
    """``venus-ems run``; once it is up, ``then()`` (if given); returns (exit code, stderr)."""
    cmd = [sys.executable, "-m", "venus_ems.cli", "run", "--config", str(config),
           "--bus", bus_address]  # fmt: skip
    async with await anyio.open_process(cmd, cwd=ROOT) as proc:
        if then is not None:
            async with open_monitor(bus_address) as mon:
                await until(lambda: mon.service(STATUS) is not None, timeout=20)
            then()
        with anyio.fail_after(30):
            code = await proc.wait()
        return code, (await read_all(proc.stderr)).decode(errors="replace")


async def test_every_feature_stopped_on_a_configuration_error_exits_2(bus_address, tmp_path):
    """The configured device is not an energy meter: nothing is left running, exit 2."""
    plug = ShellyGen1Emulator("SHPLG-S", switch=MemorySwitch(), clock=RealClock())
    config = tmp_path / "venus-ems.toml"
    async with plug:
        config.write_text(
            "schema_version = 1\n"
            f"[general]\nlog_console = true\nstate_dir = '{tmp_path / 'state'}'\n"
            f'[[grid_meter]]\nname = "house"\nenabled = true\nhost = "{plug.url[7:]}"\n'
        )
        code, stderr = await run_until_exit(config, bus_address)
    assert code == 2, stderr
    assert "not an energy meter" in stderr
    assert "every feature has ended and 1 failed: exiting" in stderr


async def test_losing_the_bus_exits_1(private_bus, tmp_path):
    config = tmp_path / "venus-ems.toml"
    config.write_text(
        "schema_version = 1\n"
        f"[general]\nlog_console = true\nstate_dir = '{tmp_path / 'state'}'\n"
        "[settings_guard]\nenabled = true\n"
    )
    code, stderr = await run_until_exit(config, private_bus.address, then=private_bus.stop)
    assert code == 1, stderr
    assert "venus-ems: monitor lost the bus" in stderr
