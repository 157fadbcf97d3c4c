"""The crash-only policy on the daemon, with real parts (dbus-daemon, localsettings, mosquitto).

A feature that raises (itself or in a callback it registered) has its outputs put in their
safe state and is restarted while the others keep running; a bug that repeats ends the daemon
(the CLI then exits 1; see tests/test_cli.py for the process), safe state first.
"""

from __future__ import annotations

import itertools
import sys

import anyio
import pytest
from mqtt_helpers import send

from venus_ems.daemon import run_daemon
from venus_ems.errors import CrashLoopError, DeviceConnectionError
from venus_ems.runtime.config import parse_config
from venus_ems.runtime.outputs import grid_setpoint_actuator
from venus_ems.runtime.supervisor import MAX_RESTARTS
from venus_ems.sim.venus import LocalSettings
from venus_ems.venus import Identity, PathSpec, Service, Setting, open_monitor
from waiting import until

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup

pytestmark = pytest.mark.anyio
STATUS = "com.victronenergy.venusems"
TUNABLE = "/Settings/VenusEms/Test/Value"


def config(extra: str = "", *, backoff_max_s: float = 1.0):
    cfg, _ = parse_config(
        "schema_version = 1\n[general]\nrestart_backoff_initial_s = 0.1\n"
        f"restart_backoff_max_s = {backoff_max_s}\nlog_console = false\n" + extra
    )
    return cfg


def hub4_service(address: str, written: list) -> Service:
    svc = Service(
        "com.victronenergy.hub4", identity=Identity("hub4"), device_instance=0, address=address
    )

    def record(_path, value):
        written.append(value)
        return True

    svc.add_path("/Overrides/Setpoint", None, PathSpec("d", writable=True), on_write=record)
    return svc


class Holder:
    """Holds the grid setpoint; ``crash`` decides (per run) whether and how it fails."""

    name = "holder"

    def __init__(self, value: float, crash=None, on_run=None):
        self.value = value
        self.crash = crash
        self.on_run = on_run
        self.runs = 0

    async def run(self, ctx, *, task_status):
        self.runs += 1
        if self.on_run is not None:
            self.on_run()
        act = ctx.actuators.ensure(
            "ess.grid_setpoint", lambda: grid_setpoint_actuator(ctx.monitor, ctx.clock)
        )
        act.claim(ctx.name, self.value)
        task_status.started()
        if self.crash is not None:
            await until(lambda: act.value == self.value)  # it really drove the output
            await self.crash(ctx, self.runs)
        await anyio.sleep_forever()


class Ticker:
    """Another feature: counts, to show it keeps running."""

    name = "ticker"

    def __init__(self):
        self.ticks = 0
        self.runs = 0

    async def run(self, ctx, *, task_status):
        self.runs += 1
        task_status.started()
        while True:
            await anyio.sleep(0.01)
            self.ticks += 1


async def bug(ctx, runs):
    raise RuntimeError(f"bug in run {runs}")


async def test_a_bug_that_repeats_ends_the_daemon_with_every_output_safe(bus_address):
    written: list = []
    ticker = Ticker()
    ticks_at_restart: list[int] = []
    holder = Holder(-250.0, crash=bug, on_run=lambda: ticks_at_restart.append(ticker.ticks))
    async with hub4_service(bus_address, written) as hub4, open_monitor(bus_address) as mon:
        others_while_backing_off: list[object] = []

        async def watch_others():
            # a monitor may miss a 0.1 s backoff on a loaded machine: one observation is enough
            await until(lambda: mon.get(STATUS, "/Features/holder/State") == "backing_off")
            others_while_backing_off.append(mon.get(STATUS, "/Features/ticker/State"))

        async def daemon():
            async with anyio.create_task_group() as tg:
                tg.start_soon(watch_others)
                features = [("holder", holder), ("ticker", ticker)]
                await run_daemon(config(), bus_address=bus_address, features=features)

        with anyio.fail_after(30), pytest.raises(ExceptionGroup) as caught:
            await daemon()
        assert caught.group_contains(CrashLoopError, depth=None)
        assert holder.runs == MAX_RESTARTS + 1
        assert ticker.runs == 1  # never restarted, never disturbed
        assert others_while_backing_off == ["running"]
        # the other feature kept ticking through every backoff (0.1 s and more each)
        assert len(ticks_at_restart) == MAX_RESTARTS + 1
        assert all(b > a for a, b in itertools.pairwise(ticks_at_restart))
        # each crash released the output (None: hub4 follows the user's setting), each
        # restart drove it again; it is safe when the daemon is gone (the last release may be
        # written twice: once on release, again on the way out if that write was interrupted)
        changes = [v for i, v in enumerate(written) if i == 0 or written[i - 1] != v]
        assert changes == [-250.0, None] * (MAX_RESTARTS + 1), written
        assert hub4["/Overrides/Setpoint"] is None


async def test_a_device_error_is_retried_for_ever_and_not_counted_as_a_bug(bus_address):
    async def unreachable(ctx, runs):
        raise DeviceConnectionError(f"meter unreachable (run {runs})")

    written: list = []
    holder = Holder(-100.0, crash=unreachable)
    async with hub4_service(bus_address, written), open_monitor(bus_address) as mon:
        async with anyio.create_task_group() as tg:
            await tg.start(
                lambda task_status: run_daemon(
                    config(),
                    bus_address=bus_address,
                    features=[("holder", holder)],
                    task_status=task_status,
                )
            )
            await until(lambda: holder.runs > MAX_RESTARTS + 1, timeout=20)  # beyond the bug bound
            assert mon.get(STATUS, "/Features/holder/LastError").startswith(
                "DeviceConnectionError: meter unreachable"
            )
            tg.cancel_scope.cancel()
    assert written[:4] == [-100.0, None, -100.0, None]


async def test_a_settings_callback_bug_surfaces_in_its_feature_only(bus_address):
    """localsettings calls back into a feature with a bug: that feature restarts, nothing else."""
    seen_by_other: list = []

    class Tunable:
        name = "tunable"
        runs = 0

        async def run(self, ctx, *, task_status):
            self.runs += 1
            await ctx.settings.add([Setting(TUNABLE, 0, 0, 100)])
            ctx.settings.on_change(self.changed)
            task_status.started()
            await anyio.sleep_forever()

        def changed(self, path, value):
            if value == 13:
                raise KeyError("unlucky value")

    class Other:
        name = "other"

        async def run(self, ctx, *, task_status):
            ctx.settings.on_change(lambda path, value: seen_by_other.append(value))
            task_status.started()
            await anyio.sleep_forever()

    tunable = Tunable()
    async with LocalSettings(address=bus_address) as ls, open_monitor(bus_address) as mon:
        async with anyio.create_task_group() as tg:
            await tg.start(
                lambda task_status: run_daemon(
                    config(),
                    bus_address=bus_address,
                    features=[("tunable", tunable), ("other", Other())],
                    task_status=task_status,
                )
            )
            ls.set(TUNABLE, 5)
            await until(lambda: seen_by_other == [5])
            ls.set(TUNABLE, 13)
            await until(lambda: mon.get(STATUS, "/Features/tunable/Restarts") == 1)
            assert mon.get(STATUS, "/Features/tunable/LastError") == "KeyError: 'unlucky value'"
            await until(lambda: mon.get(STATUS, "/Features/tunable/State") == "running")
            ls.set(TUNABLE, 7)
            await until(lambda: seen_by_other == [5, 13, 7])
            assert mon.get(STATUS, "/Features/other/State") == "running"
            assert mon.get(STATUS, "/Features/other/Restarts") == 0
            tg.cancel_scope.cancel()
    assert tunable.runs == 2


async def test_an_mqtt_handler_bug_surfaces_in_its_feature_only(bus_address, mosquitto):
    got: list[bytes] = []

    class Listener:
        name = "listener"
        runs = 0

        async def run(self, ctx, *, task_status):
            self.runs += 1
            await ctx.mqtt.subscribe("in/#", self.handle)
            task_status.started()
            await anyio.sleep_forever()

        async def handle(self, msg):
            got.append(msg.payload)
            if msg.payload == b"bad":
                raise ZeroDivisionError("handler bug")

    listener = Listener()
    cfg = config(
        f'[mqtt]\nenabled = true\nhost = "127.0.0.1"\nport = {mosquitto.port}\n'
        "reconnect_initial_s = 0.05\nreconnect_max_s = 0.2\n"
    )
    async with open_monitor(bus_address) as mon, anyio.create_task_group() as tg:
        await tg.start(
            lambda task_status: run_daemon(
                cfg,
                bus_address=bus_address,
                features=[("listener", listener), ("ticker", Ticker())],
                task_status=task_status,
            )
        )
        await until(lambda: mon.get(STATUS, "/Features/listener/State") == "running")
        await send(mosquitto.port, "in/x", b"bad")
        await until(lambda: mon.get(STATUS, "/Features/listener/Restarts") == 1)
        assert "ZeroDivisionError: handler bug" in mon.get(STATUS, "/Features/listener/LastError")
        await until(lambda: listener.runs == 2)
        await until(lambda: mon.get(STATUS, "/Features/listener/State") == "running")
        await send(mosquitto.port, "in/y", b"good")
        await until(lambda: got == [b"bad", b"good"])  # once: the old run's handler is gone
        assert mon.get(STATUS, "/Features/ticker/Restarts") == 0
        tg.cancel_scope.cancel()
