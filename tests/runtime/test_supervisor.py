"""Supervisor: restart with capped exponential backoff, isolation, safe outputs on a crash."""

from __future__ import annotations

import itertools
import sys

import anyio
import pytest

from venus_ems.callbacks import Callbacks
from venus_ems.clock import SteppedClock
from venus_ems.errors import ConfigError, CrashLoopError, DeviceAuthError, DeviceConnectionError
from venus_ems.runtime.actuator import Actuator, ActuatorRegistry
from venus_ems.runtime.feature import FeatureContext, FeatureState
from venus_ems.runtime.supervisor import Supervisor, first_error

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup

pytestmark = pytest.mark.anyio


class Sink:
    def __init__(self):
        self.states: dict[str, list[str]] = {}
        self.messages: list[tuple[str, str, str]] = []

    def feature_changed(self, status):
        self.states.setdefault(status.name, []).append(status.state.value)

    def output_changed(self, actuator):
        pass

    def service_message(self, feature, level, text):
        self.messages.append((feature, level, text))


class Out:
    target = "out"

    def __init__(self):
        self.values = []

    async def write(self, value):
        self.values.append(value)


class Crasher:
    """Claims the output, then crashes after ``crash_after`` clock seconds, ``times`` times."""

    def __init__(self, name, act, clock, times, crash_after=1.0, exc=RuntimeError):
        self.name = name
        self.act = act
        self.clock = clock
        self.times = times
        self.crash_after = crash_after
        self.exc = exc
        self.starts: list[float] = []

    async def run(self, ctx, *, task_status):
        self.starts.append(self.clock.monotonic())
        self.act.claim(ctx.name, 500)
        task_status.started()
        ctx.report("holding 500 W", ["test"])
        await self.clock.sleep(self.crash_after)
        if len(self.starts) <= self.times:
            raise self.exc("boom")
        await anyio.sleep_forever()


class Steady:
    name = "steady"

    def __init__(self, clock):
        self.clock = clock
        self.ticks = 0

    async def run(self, ctx, *, task_status):
        task_status.started()
        while True:
            await self.clock.sleep(1.0)
            self.ticks += 1


async def settle():
    for _ in range(30):
        await anyio.lowlevel.checkpoint()


async def test_crash_restart_backoff_isolation_and_safe_output():
    clock = SteppedClock()
    sink = Sink()
    out = Out()
    async with anyio.create_task_group() as tg:
        reg = ActuatorRegistry(tg)
        act = reg.add(Actuator("out", out, safe_value=0, clock=clock))
        crasher = Crasher("crasher", act, clock, times=3)
        steady = Steady(clock)
        sup = Supervisor(clock=clock, actuators=reg, backoff_initial_s=2.0, backoff_max_s=5.0)
        features = [
            (crasher, FeatureContext("crasher", clock, None, reg, sink=sink)),  # type: ignore[arg-type]
            (steady, FeatureContext("steady", clock, None, reg, sink=sink)),  # type: ignore[arg-type]
        ]
        await tg.start(sup.run, features)
        for _ in range(40):
            await clock.advance(0.5)
            await settle()
        status = features[0][1].status
        tg.cancel_scope.cancel()
    # runs 1 s, crashes, waits 2, 4, then 5 (capped) s: starts at 0, 3, 8, 14
    assert crasher.starts == [0.0, 3.0, 8.0, 14.0]
    assert status.restarts == 3
    assert status.state is FeatureState.RUNNING
    assert "RuntimeError: boom" in status.last_error
    states = [
        s
        for i, s in enumerate(sink.states["crasher"])
        if i == 0 or sink.states["crasher"][i - 1] != s
    ]
    assert states[:5] == ["starting", "running", "backing_off", "starting", "running"]
    assert steady.ticks >= 19  # never disturbed
    # every crash released the claim: the output went to its safe value before the restart
    assert out.values[:4] == [500, 0, 500, 0]
    assert any("restarting in 2 s" in m[2] for m in sink.messages)


@pytest.mark.parametrize("exc", [ConfigError, DeviceAuthError])
async def test_config_error_is_not_retried_and_clean_return_stops(exc):
    clock = SteppedClock()
    sink = Sink()
    out = Out()

    class Done:
        name = "done"

        async def run(self, ctx, *, task_status):
            task_status.started()

    async with anyio.create_task_group() as tg:
        reg = ActuatorRegistry(tg)
        act = reg.add(Actuator("out", out, safe_value=0, clock=clock))
        bad = Crasher("bad", act, clock, times=99, crash_after=0.5, exc=exc)
        steady = Steady(clock)
        sup = Supervisor(clock=clock, actuators=reg)
        ctx_bad = FeatureContext("bad", clock, None, reg, sink=sink)  # type: ignore[arg-type]
        ctx_done = FeatureContext("done", clock, None, reg, sink=sink)  # type: ignore[arg-type]
        ctx_steady = FeatureContext("steady", clock, None, reg, sink=sink)  # type: ignore[arg-type]
        await tg.start(sup.run, [(bad, ctx_bad), (Done(), ctx_done), (steady, ctx_steady)])
        for _ in range(10):
            await clock.advance(1.0)
            await settle()
        tg.cancel_scope.cancel()
    assert len(bad.starts) == 1
    assert ctx_bad.status.state is FeatureState.FAILED
    assert ctx_done.status.state is FeatureState.STOPPED
    assert ctx_steady.status.state is FeatureState.RUNNING  # the others keep running
    assert steady.ticks >= 9
    assert out.values == [500, 0]


async def test_when_every_feature_has_ended_and_one_failed_the_supervisor_raises_it():
    """Nothing left running: the daemon exits (ConfigError -> exit 2) instead of idling."""
    clock = SteppedClock()
    out = Out()

    class Done:
        name = "done"

        async def run(self, ctx, *, task_status):
            task_status.started()

    async def supervise():
        async with anyio.create_task_group() as tg:
            reg = ActuatorRegistry(tg)
            act = reg.add(Actuator("out", out, safe_value=0, clock=clock))
            bad = Crasher("bad", act, clock, times=99, crash_after=0.5, exc=ConfigError)
            sup = Supervisor(clock=clock, actuators=reg)
            ctx_bad = FeatureContext("bad", clock, None, reg)  # type: ignore[arg-type]
            ctx_done = FeatureContext("done", clock, None, reg)  # type: ignore[arg-type]
            await tg.start(sup.run, [(bad, ctx_bad), (Done(), ctx_done)])
            for _ in range(10):
                await clock.advance(1.0)
                await settle()

    with pytest.raises(ExceptionGroup) as caught:
        await supervise()
    assert caught.group_contains(ConfigError, match="boom")
    assert out.values == [500, 0]


async def test_all_features_done_without_error_is_not_a_failure():
    clock = SteppedClock()

    class Done:
        name = "done"

        async def run(self, ctx, *, task_status):
            task_status.started()

    async with anyio.create_task_group() as tg:
        reg = ActuatorRegistry(tg)
        sup = Supervisor(clock=clock, actuators=reg)
        ctx = FeatureContext("done", clock, None, reg)  # type: ignore[arg-type]
        await tg.start(sup.run, [(Done(), ctx)])
        await settle()
    assert ctx.status.state is FeatureState.STOPPED


async def test_a_bug_restarts_a_bounded_number_of_times_then_ends_the_supervisor(caplog):
    """Safe output at each crash, tracebacks logged, the others untouched, then CrashLoopError."""
    clock = SteppedClock()
    sink = Sink()
    out = Out()
    steady = Steady(clock)
    ctx = None
    crasher = None

    async def supervise():
        nonlocal ctx, crasher
        async with anyio.create_task_group() as tg:
            reg = ActuatorRegistry(tg)
            act = reg.add(Actuator("out", out, safe_value=0, clock=clock))
            crasher = Crasher("crasher", act, clock, times=99)
            sup = Supervisor(
                clock=clock, actuators=reg, backoff_initial_s=1.0, backoff_max_s=4.0,
                max_restarts=3, restart_window_s=100.0,
            )  # fmt: skip
            ctx = FeatureContext("crasher", clock, None, reg, sink=sink)  # type: ignore[arg-type]
            features = [(crasher, ctx), (steady, FeatureContext("steady", clock, None, reg))]
            await tg.start(sup.run, features)
            for _ in range(60):
                await clock.advance(0.5)
                await settle()

    with pytest.raises(ExceptionGroup) as caught:
        await supervise()
    assert caught.group_contains(CrashLoopError, match="crasher crashed 4 times within 100 s")
    crash = first_error(caught.value)
    assert isinstance(crash.__cause__, RuntimeError)  # the bug itself
    # runs of 1 s, restarts after 1, 2 and 4 s; the 4th crash (at 11 s) ends it
    assert crasher.starts == [0.0, 2.0, 5.0, 10.0]
    assert ctx.status.state is FeatureState.FAILED
    assert ctx.status.restarts == 3
    assert steady.ticks >= 10  # the other feature ran until the end
    assert out.values == [500, 0, 500, 0, 500, 0, 500, 0]  # safe after every crash
    bugs = [r for r in caplog.records if "crashed (a bug)" in r.getMessage()]
    assert len(bugs) == 4
    assert all(r.exc_info is not None and r.levelname == "ERROR" for r in bugs)
    assert any("exiting so that the service supervisor" in m[2] for m in sink.messages)


async def test_bugs_further_apart_than_the_window_never_end_the_supervisor():
    clock = SteppedClock()
    out = Out()
    async with anyio.create_task_group() as tg:
        reg = ActuatorRegistry(tg)
        act = reg.add(Actuator("out", out, safe_value=0, clock=clock))
        crasher = Crasher("crasher", act, clock, times=99, crash_after=70.0)
        sup = Supervisor(clock=clock, actuators=reg, max_restarts=1, restart_window_s=60.0)
        ctx = FeatureContext("crasher", clock, None, reg)  # type: ignore[arg-type]
        await tg.start(sup.run, [(crasher, ctx)])
        for _ in range(720):
            await clock.advance(1.0)
        tg.cancel_scope.cancel()
    # a crash every 71 s (70 s run + 1 s backoff, reset because each run was stable)
    assert crasher.starts[:4] == [0.0, 71.0, 142.0, 213.0]
    assert ctx.status.restarts == 10
    assert ctx.status.state is FeatureState.RUNNING


async def test_retryable_errors_restart_for_ever_with_capped_backoff(caplog):
    """A device that keeps failing is not a bug: no traceback, no exit, however often."""
    clock = SteppedClock()
    out = Out()
    async with anyio.create_task_group() as tg:
        reg = ActuatorRegistry(tg)
        act = reg.add(Actuator("out", out, safe_value=0, clock=clock))
        flaky = Crasher("flaky", act, clock, times=10_000, exc=DeviceConnectionError)
        sup = Supervisor(
            clock=clock, actuators=reg, backoff_initial_s=1.0, backoff_max_s=8.0,
            max_restarts=3, restart_window_s=1000.0,
        )  # fmt: skip
        ctx = FeatureContext("flaky", clock, None, reg)  # type: ignore[arg-type]
        await tg.start(sup.run, [(flaky, ctx)])
        for _ in range(200):
            await clock.advance(1.0)
        tg.cancel_scope.cancel()
    gaps = [b - a for a, b in itertools.pairwise(flaky.starts)]
    assert gaps[:5] == [2.0, 3.0, 5.0, 9.0, 9.0]  # 1 s run + 1, 2, 4, 8, 8 ... s backoff
    assert len(flaky.starts) > 20  # far beyond the bound for bugs (3)
    assert ctx.status.restarts in (len(flaky.starts) - 1, len(flaky.starts))
    assert ctx.status.state in (FeatureState.BACKING_OFF, FeatureState.RUNNING)
    assert out.values[-2:] == [500, 0]
    failures = [r for r in caplog.records if "flaky failed" in r.getMessage()]
    assert failures
    assert all(r.levelname == "WARNING" and r.exc_info is None for r in failures)
    assert not [r for r in caplog.records if "crashed" in r.getMessage()]


async def test_a_callback_bug_fails_the_feature_that_registered_it():
    """A component calls back into a feature: the bug surfaces in that feature's supervision."""
    clock = SteppedClock()
    out = Out()
    events: Callbacks[[int]] = Callbacks()  # what the monitor and the MQTT link use

    class Listener:
        name = "listener"

        def __init__(self):
            self.runs = 0
            self.got: list[int] = []

        async def run(self, ctx, *, task_status):
            self.runs += 1
            act.claim(ctx.name, 500)
            events.add(self.on_event)
            task_status.started()
            await anyio.sleep_forever()

        def on_event(self, value):
            self.got.append(value)
            if value < 0:
                raise ValueError(f"cannot handle {value}")

    steady = Steady(clock)
    async with anyio.create_task_group() as tg:
        reg = ActuatorRegistry(tg)
        act = reg.add(Actuator("out", out, safe_value=0, clock=clock))
        listener = Listener()
        sup = Supervisor(clock=clock, actuators=reg, backoff_initial_s=1.0)
        ctx = FeatureContext("listener", clock, None, reg)  # type: ignore[arg-type]
        await tg.start(sup.run, [(listener, ctx), (steady, FeatureContext("s", clock, None, reg))])
        events.call(1)
        events.call(-1)  # the bug: raised into the listener's run, not here
        await settle()
        assert ctx.status.state is FeatureState.BACKING_OFF
        assert "ValueError: cannot handle -1" in ctx.status.last_error
        events.call(2)  # nobody listens while it backs off
        await clock.advance(1.0)
        await settle()
        events.call(3)
        tg.cancel_scope.cancel()
    assert listener.runs == 2
    assert listener.got == [1, -1, 3]  # once per event: the first run's callback was dropped
    assert len(events) == 1
    assert out.values[:3] == [500, 0, 500]


async def test_a_feature_failing_before_started_does_not_block_the_others():
    clock = SteppedClock()

    class Broken:
        name = "broken"

        async def run(self, ctx, *, task_status):
            raise OSError("cannot open device")

    steady = Steady(clock)
    async with anyio.create_task_group() as tg:
        reg = ActuatorRegistry(tg)
        sup = Supervisor(clock=clock, actuators=reg)
        ctx = FeatureContext("broken", clock, None, reg)  # type: ignore[arg-type]
        await tg.start(
            sup.run, [(Broken(), ctx), (steady, FeatureContext("steady", clock, None, reg))]
        )  # type: ignore[arg-type]
        await clock.advance(3.0)
        await settle()
        tg.cancel_scope.cancel()
    assert ctx.status.state is FeatureState.BACKING_OFF
    assert ctx.status.restarts >= 1
    assert steady.ticks >= 2


def test_first_error_unwraps_groups():
    inner = ValueError("x")
    assert first_error(ExceptionGroup("g", [ExceptionGroup("h", [inner])])) is inner
    assert first_error(inner) is inner
