"""The daemon in-process: features supervised, states and outputs on D-Bus, safe outputs on stop."""

from __future__ import annotations

import anyio
import pytest

from venus_ems.daemon import run_daemon
from venus_ems.runtime.config import parse_config
from venus_ems.runtime.outputs import grid_setpoint_actuator
from venus_ems.runtime.statusline import format_status
from venus_ems.venus import Identity, PathSpec, Service, open_monitor
from waiting import until

pytestmark = pytest.mark.anyio
STATUS = "com.victronenergy.venusems"


class Holder:
    """Holds the grid setpoint at ``value``; crashes once after ``crash_after`` s if asked."""

    name = "holder"

    def __init__(self, value: float, crash_after: float | None = None):
        self.value = value
        self.crash_after = crash_after
        self.runs = 0

    async def run(self, ctx, *, task_status):
        self.runs += 1
        act = ctx.actuators.ensure(
            "ess.grid_setpoint", lambda: grid_setpoint_actuator(ctx.monitor, ctx.clock)
        )
        act.claim(ctx.name, self.value)
        ctx.report(f"holding {self.value:.0f} W", ["export cap 300 W"])
        task_status.started()
        if self.crash_after is not None and self.runs == 1:
            await anyio.sleep(self.crash_after)
            raise RuntimeError("simulated bug")
        await anyio.sleep_forever()


def hub4_service(address: str, written: list | None = None) -> Service:
    """hub4 with a writable override; ``written`` records every accepted change."""
    svc = Service(
        "com.victronenergy.hub4", identity=Identity("hub4"), device_instance=0, address=address
    )

    def record(_path, value):
        if written is not None:
            written.append(value)
        return True

    svc.add_path("/Overrides/Setpoint", None, PathSpec("d", writable=True), on_write=record)
    return svc


def daemon_config(tmp_path):
    config, _ = parse_config(
        "schema_version = 1\n[general]\nrestart_backoff_initial_s = 0.3\n"
        f"restart_backoff_max_s = 1.0\nlog_console = false\nstate_dir = '{tmp_path}'\n"
    )
    return config


async def test_states_outputs_restart_and_safe_stop(bus_address, tmp_path):
    written: list = []
    hub4 = hub4_service(bus_address, written)
    holder = Holder(-250.0, crash_after=0.3)
    async with hub4, open_monitor(bus_address) as mon:
        async with anyio.create_task_group() as tg:
            await tg.start(
                lambda task_status: run_daemon(
                    daemon_config(tmp_path),
                    bus_address=bus_address,
                    features=[("holder", holder)],
                    task_status=task_status,
                )
            )
            await until(lambda: hub4["/Overrides/Setpoint"] == -250.0)
            await until(lambda: mon.get(STATUS, "/Outputs/ess_grid_setpoint/Value") == -250.0)
            assert mon.get(STATUS, "/Outputs/ess_grid_setpoint/Owner") == "holder"
            assert mon.get(STATUS, "/Features/holder/State") == "running"
            assert mon.get(STATUS, "/Features/holder/Decision") == "holding -250 W"
            assert mon.get(STATUS, "/Features/holder/Reasons") == "export cap 300 W"
            # the crash releases the claim (override back to None), then the restart holds it again
            await until(lambda: written == [-250.0, None, -250.0])
            await until(lambda: mon.get(STATUS, "/Features/holder/Restarts") == 1)
            assert mon.get(STATUS, "/Features/holder/LastError") == "RuntimeError: simulated bug"
            await until(lambda: mon.get(STATUS, "/Features/holder/State") == "running")
            await until(lambda: mon.get(STATUS, "/Outputs/ess_grid_setpoint/Value") == -250.0)
            line = format_status(mon)
            assert "holder: holding -250 W" in line
            assert "Set -250W" in line
            tg.cancel_scope.cancel()
        assert hub4["/Overrides/Setpoint"] is None  # safe state written before the bus closed
        await until(lambda: mon.service(STATUS) is None)


async def test_dry_run_writes_nothing(bus_address, tmp_path):
    hub4 = hub4_service(bus_address)
    async with hub4, open_monitor(bus_address) as mon:
        async with anyio.create_task_group() as tg:
            await tg.start(
                lambda task_status: run_daemon(
                    daemon_config(tmp_path),
                    bus_address=bus_address,
                    dry_run=True,
                    features=[("holder", Holder(-100.0))],
                    task_status=task_status,
                )
            )
            await until(lambda: mon.get(STATUS, "/Outputs/ess_grid_setpoint/Written") == -100.0)
            assert mon.get(STATUS, "/DryRun") == 1
            assert hub4["/Overrides/Setpoint"] is None
            # the status tells what is really in force: nothing was written
            assert mon.get(STATUS, "/Outputs/ess_grid_setpoint/Value") is None
            tg.cancel_scope.cancel()
        assert hub4["/Overrides/Setpoint"] is None


async def test_states_are_mirrored_on_mqtt(bus_address, mosquitto, tmp_path):
    """Feature states, outputs and service messages appear retained under the topic prefix."""
    import json  # noqa: PLC0415

    hub4 = hub4_service(bus_address)
    config, _ = parse_config(
        f"schema_version = 1\n[general]\nlog_console = false\nstate_dir = '{tmp_path}'\n"
        f'[mqtt]\nenabled = true\nhost = "127.0.0.1"\nport = {mosquitto.port}\n'
        "reconnect_initial_s = 0.05\nreconnect_max_s = 0.2\n"
    )
    async with hub4, anyio.create_task_group() as tg:
        await tg.start(
            lambda task_status: run_daemon(
                config,
                bus_address=bus_address,
                features=[("holder", Holder(-100.0))],
                task_status=task_status,
            )
        )
        await until(lambda: hub4["/Overrides/Setpoint"] == -100.0)
        wanted = {"venus-ems/features/holder", "venus-ems/outputs/ess_grid_setpoint",
                  "venus-ems/$SYS/Status"}  # fmt: skip
        with anyio.fail_after(10):
            while True:  # what a client connecting now finds, retained, under the prefix
                res = await anyio.run_process(
                    ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(mosquitto.port), "-t",
                     "venus-ems/#", "-v", "--retained-only", "-W", "1"],
                    check=False,
                )  # fmt: skip
                seen = dict(line.split(" ", 1) for line in res.stdout.decode().splitlines())
                output = seen.get("venus-ems/outputs/ess_grid_setpoint", "")
                if wanted <= set(seen) and "holder" in output and '"value": -100.0' in output:
                    break
        tg.cancel_scope.cancel()
    feature = json.loads(seen["venus-ems/features/holder"])
    assert feature["state"] == "running"
    assert feature["decision"] == "holding -100 W"
    assert feature["reasons"] == ["export cap 300 W"]
    output = json.loads(seen["venus-ems/outputs/ess_grid_setpoint"])
    assert output["owner"] == "holder"
    assert output["value"] == -100.0  # read back from hub4
    assert output["written"] == -100.0
    assert seen["venus-ems/$SYS/Status"] == "Online"
