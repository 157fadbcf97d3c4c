"""Actuators: arbitration, skip unchanged, rate limit, refresh, timeouts, dry run, safe state."""

from __future__ import annotations

import sys

import anyio
import pytest
from dbus_fast import Message

from venus_ems.clock import SteppedClock
from venus_ems.errors import DeviceConnectionError
from venus_ems.runtime.actuator import Actuator, ActuatorRegistry
from venus_ems.runtime.outputs import grid_setpoint_actuator, phase_setpoints_actuator
from venus_ems.venus import Identity, PathSpec, Service, open_monitor
from venus_ems.venus.codec import unwrap

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup

pytestmark = pytest.mark.anyio


class Recording:
    """An output that records what reaches it, at which clock time; can fail or hang on demand."""

    target = "test output"

    def __init__(self, clock):
        self.clock = clock
        self.writes: list[tuple[float, object]] = []
        self.fail = False
        self.hang = False

    async def write(self, value):
        if self.hang:
            await anyio.sleep_forever()
        if self.fail:
            raise DeviceConnectionError("device unreachable")
        self.writes.append((self.clock.monotonic(), value))


async def settle():
    for _ in range(20):
        await anyio.lowlevel.checkpoint()


@pytest.fixture
def clock():
    return SteppedClock()


async def start(act):
    tg = await anyio.create_task_group().__aenter__()
    await tg.start(act.run)
    return tg


async def test_arbitration_skip_unchanged_and_safe_state_on_release(clock):
    out = Recording(clock)
    act = Actuator("t", out, safe_value=0, clock=clock)
    async with anyio.create_task_group() as tg:
        await tg.start(act.run)
        await settle()
        assert out.writes == []  # never claimed: the output is left alone
        act.claim("low", 100, priority=1)
        await settle()
        act.claim("high", 200, priority=5)
        await settle()
        act.claim("low", 150, priority=1)  # outranked: no write
        act.claim("high", 200, priority=5)  # unchanged: no write
        await settle()
        assert act.owner == "high"
        act.release("high")
        await settle()
        act.release("low")
        await settle()
        tg.cancel_scope.cancel()
    assert [v for _, v in out.writes] == [100, 200, 150, 0]
    assert act.owner is None


async def test_equal_priority_goes_to_the_first_claim(clock):
    out = Recording(clock)
    act = Actuator("t", out, safe_value=0, clock=clock)
    async with anyio.create_task_group() as tg:
        await tg.start(act.run)
        act.claim("a", 1)
        act.claim("b", 2)
        await settle()
        assert act.owner == "a"
        act.claim("a", 3)  # renewing keeps the place in line
        await settle()
        assert act.owner == "a"
        tg.cancel_scope.cancel()
    assert [v for _, v in out.writes] == [1, 3, 0]


async def test_rate_limit_and_refresh(clock):
    out = Recording(clock)
    act = Actuator("t", out, safe_value=0, clock=clock, min_interval_s=2.0, refresh_s=5.0)
    async with anyio.create_task_group() as tg:
        await tg.start(act.run)
        act.claim("f", 10)
        await settle()
        act.claim("f", 20)
        await settle()
        await clock.advance(1.0)
        act.claim("f", 30)  # the latest value within the interval wins
        await clock.advance(1.0)
        await settle()
        await clock.advance(10.0)
        await settle()
        tg.cancel_scope.cancel()
    # t=0 first write, t=2 rate-limited write of the latest value, then refreshes every 5 s
    assert out.writes[:4] == [(0.0, 10), (2.0, 30), (7.0, 30), (12.0, 30)]
    assert out.writes[-1][1] == 0  # safe state on exit


async def test_failed_writes_are_retried_not_hammered(clock):
    out = Recording(clock)
    act = Actuator("t", out, safe_value=0, clock=clock, retry_s=3.0)
    async with anyio.create_task_group() as tg:
        await tg.start(act.run)
        out.fail = True
        act.claim("f", 5)
        await settle()
        assert act.last_error == "device unreachable"
        await clock.advance(2.0)
        await settle()
        out.fail = False
        await clock.advance(1.5)
        await settle()
        assert out.writes == [(3.0, 5)]
        assert act.last_error is None
        tg.cancel_scope.cancel()


async def test_a_hanging_write_times_out():
    """Real time here: the write timeout is anyio's, independent of the feature clock."""
    clock = SteppedClock()
    out = Recording(clock)
    act = Actuator("t", out, safe_value=0, clock=clock, write_timeout_s=0.05)
    out.hang = True
    async with anyio.create_task_group() as tg:
        await tg.start(act.run)
        act.claim("f", 5)
        with anyio.fail_after(2):
            while act.last_error is None:
                await anyio.sleep(0.01)
        assert "no answer" in act.last_error
        out.hang = False
        tg.cancel_scope.cancel()


async def test_stale_claims_expire_to_the_safe_value(clock):
    out = Recording(clock)
    act = Actuator("t", out, safe_value=-1, clock=clock, claim_ttl_s=10.0)
    async with anyio.create_task_group() as tg:
        await tg.start(act.run)
        act.claim("f", 7)
        await settle()
        await clock.advance(5.0)
        act.claim("f", 7)  # renewed while inputs are fresh
        await clock.advance(8.0)
        await settle()
        assert act.owner == "f"
        await clock.advance(3.0)  # no renewal for > 10 s: the feature's inputs went stale
        await settle()
        assert act.owner is None
        tg.cancel_scope.cancel()
    assert [v for _, v in out.writes] == [7, -1]


async def test_dry_run_logs_instead_of_writing(clock, caplog):
    out = Recording(clock)
    act = Actuator("t", out, safe_value=0, clock=clock, dry_run=True)
    caplog.set_level("INFO")
    async with anyio.create_task_group() as tg:
        await tg.start(act.run)
        act.claim("f", 42)
        await settle()
        tg.cancel_scope.cancel()
    assert out.writes == []
    assert "dry run: t would write 42 to test output" in caplog.text


async def test_registry_releases_a_features_claims_everywhere(clock):
    a, b = Recording(clock), Recording(clock)
    async with anyio.create_task_group() as tg:
        reg = ActuatorRegistry(tg)
        act_a = reg.add(Actuator("a", a, safe_value=0, clock=clock))
        act_b = reg.add(Actuator("b", b, safe_value=False, clock=clock))
        with pytest.raises(ValueError, match="exists"):
            reg.add(Actuator("a", a, safe_value=0, clock=clock))
        await settle()
        act_a.claim("f", 3)
        act_b.claim("f", True)
        await settle()
        reg.release_all("f")
        await settle()
        assert reg.get("a") is act_a
        tg.cancel_scope.cancel()
    assert [v for _, v in a.writes] == [3, 0]
    assert [v for _, v in b.writes] == [True, False]


async def test_grid_setpoint_and_phase_setpoints_on_dbus(bus_address):
    """Real D-Bus outputs: hub4 override and vebus mode-3 setpoints, safe state on cancel."""
    hub4 = Service(
        "com.victronenergy.hub4", identity=Identity("hub4"), device_instance=0, address=bus_address
    )
    hub4.add_path("/Overrides/Setpoint", None, PathSpec("d", writable=True))
    vebus = Service(
        "com.victronenergy.vebus.ttyS4",
        identity=Identity("Multi"),
        device_instance=276,
        address=bus_address,
    )
    writes: list[tuple[str, object]] = []
    for n in (1, 2, 3):
        vebus.add_path(f"/Hub4/L{n}/AcPowerSetpoint", 0.0, PathSpec("d", writable=True))

    def count_setvalue(msg: Message) -> Message | None:
        # like mk2-dbus, every write counts (also an unchanged one: it refreshes the timeout)
        if msg.member == "SetValue" and "AcPowerSetpoint" in (msg.path or ""):
            writes.append((msg.path, unwrap(msg.body[0])))
        return None

    vebus.add_handler(count_setvalue)
    clock = SteppedClock()
    async with hub4, vebus, open_monitor(bus_address) as mon:
        grid = grid_setpoint_actuator(mon, clock)
        phases = phase_setpoints_actuator(mon, clock, phases=3, refresh_s=5.0)
        async with anyio.create_task_group() as tg:
            await tg.start(grid.run)
            await tg.start(phases.run)
            grid.claim("ess", -300.0)
            phases.claim("ess", (100.0, -50.0, 0.0))
            with anyio.fail_after(3):
                while hub4["/Overrides/Setpoint"] != -300.0 or len(writes) < 3:
                    await anyio.sleep(0.01)
            n = len(writes)
            await clock.advance(5.0)  # refresh although nothing changed
            with anyio.fail_after(3):
                while len(writes) < n + 3:
                    await anyio.sleep(0.01)
            tg.cancel_scope.cancel()
        assert hub4["/Overrides/Setpoint"] is None  # released: hub4 uses AcPowerSetPoint again
        assert [vebus[f"/Hub4/L{n}/AcPowerSetpoint"] for n in (1, 2, 3)] == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="10 s"):
        phase_setpoints_actuator(mon, clock, phases=3, refresh_s=30)


async def test_abandon_leaves_the_output_to_its_new_owner(clock):
    """Dynamic ESS took over: no safe write now, none at shutdown either."""
    out = Recording(clock)
    act = Actuator("t", out, safe_value=None, clock=clock)
    async with anyio.create_task_group() as tg:
        await tg.start(act.run)
        act.claim("ess", -300.0)
        await settle()
        act.abandon("ess")
        await settle()
        assert act.value is None
        assert act.owner is None
        tg.cancel_scope.cancel()
    assert [v for _, v in out.writes] == [-300.0]


async def test_the_safe_state_on_stop_is_bounded_in_time(clock):
    """A device that hangs cannot hold up shutdown for longer than shutdown_timeout_s."""
    out = Recording(clock)
    act = Actuator("t", out, safe_value=0, clock=clock, shutdown_timeout_s=0.1)
    with anyio.fail_after(2):
        async with anyio.create_task_group() as tg:
            await tg.start(act.run)
            act.claim("f", 5)
            await settle()
            out.hang = True
            tg.cancel_scope.cancel()
    assert [v for _, v in out.writes] == [5]


class Buggy(Recording):
    """A writer with a bug for one value: it raises TypeError instead of an EmsError."""

    def __init__(self, clock, bad):
        super().__init__(clock)
        self.bad = bad

    async def write(self, value):
        if value == self.bad:
            raise TypeError(f"cannot encode {value!r}")
        await super().write(value)


async def test_a_bug_in_a_writer_is_not_a_failed_write(clock):
    """Only an EmsError or a timeout is retried; a bug ends run(), with the safe state written."""
    out = Buggy(clock, bad=7)
    act = Actuator("t", out, safe_value=0, clock=clock, retry_s=1.0)

    async def drive():
        async with anyio.create_task_group() as tg:
            await tg.start(act.run)
            act.claim("f", 5)
            await settle()
            act.claim("f", 7)  # the writer cannot write this one
            await settle()
            await clock.advance(5.0)  # a failed write would be retried here; a bug is not
            await settle()

    with pytest.raises(ExceptionGroup) as caught:
        await drive()
    assert caught.group_contains(TypeError, match="cannot encode 7")
    assert act.last_error is None  # not reported as a device failure
    assert [v for _, v in out.writes] == [5, 0]  # safe state on the way out, no retries
