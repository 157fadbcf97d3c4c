"""Supervisor: restart with capped exponential backoff, isolation, safe outputs on a crash."""

from __future__ import annotations

import sys

import anyio
import pytest

from venus_ems.clock import SteppedClock
from venus_ems.errors import ConfigError, DeviceAuthError
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
        sup = Supervisor(clock=clock, actuators=reg)
        ctx_bad = FeatureContext("bad", clock, None, reg, sink=sink)  # type: ignore[arg-type]
        ctx_done = FeatureContext("done", clock, None, reg, sink=sink)  # type: ignore[arg-type]
        await tg.start(sup.run, [(bad, ctx_bad), (Done(), ctx_done)])
        for _ in range(10):
            await clock.advance(1.0)
            await settle()
        tg.cancel_scope.cancel()
    assert len(bad.starts) == 1
    assert ctx_bad.status.state is FeatureState.FAILED
    assert ctx_done.status.state is FeatureState.STOPPED
    assert out.values == [500, 0]


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
