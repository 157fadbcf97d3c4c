"""Commands to claims: the last command is claimed (and renewed), a valueless one releases."""

from __future__ import annotations

import anyio
import pytest

from venus_ems.clock import SteppedClock
from venus_ems.control import (
    ReleaseSetpoint,
    SetGridSetpoint,
    SetMaxDischargePower,
    SetOutputLimit,
    SetPhaseSetpoints,
)
from venus_ems.features.claims import CommandHolder, claim_value
from venus_ems.runtime.actuator import Actuator


class Recording:
    target = "test output"

    def __init__(self) -> None:
        self.writes: list[object] = []

    async def write(self, value: object) -> None:
        self.writes.append(value)


def output(clock: SteppedClock) -> Actuator[object]:
    return Actuator("out", Recording(), safe_value=None, clock=clock, claim_ttl_s=10.0)


def test_claim_values() -> None:
    assert claim_value(SetGridSetpoint(-250.0)) == -250.0
    assert claim_value(SetPhaseSetpoints.of((1.0, 2.0, 3.0))) == (1.0, 2.0, 3.0)
    assert claim_value(SetMaxDischargePower(3000.0)) == 3000.0
    assert claim_value(SetMaxDischargePower(None)) is None  # no limit from us: released
    assert claim_value(ReleaseSetpoint()) is None
    with pytest.raises(TypeError, match="not a command for an output"):
        claim_value(SetOutputLimit(3000.0))


async def settle() -> None:
    for _ in range(20):
        await anyio.lowlevel.checkpoint()


@pytest.mark.anyio
async def test_the_last_command_is_claimed_renewed_and_released() -> None:
    clock = SteppedClock()
    act = output(clock)
    holder = CommandHolder("ess", priority=3)
    async with anyio.create_task_group() as tg:
        tg.start_soon(act.run)
        holder.apply(act, ())
        assert act.owner is None  # nothing sent yet: nothing claimed
        holder.apply(act, (SetGridSetpoint(100.0), SetGridSetpoint(120.0)))
        assert (act.owner, act.desired, holder.value) == ("ess", 120.0, 120.0)
        for _ in range(3):  # holds: the claim in force is renewed, so it never expires
            await clock.advance(8.0)
            await settle()
            holder.apply(act, ())
        assert act.owner == "ess"
        assert act.writer.writes == [120.0]  # type: ignore[attr-defined]
        holder.apply(act, (ReleaseSetpoint(),))
        await settle()
        assert act.owner is None
        assert act.writer.writes == [120.0, None]  # type: ignore[attr-defined]  # safe value
        holder.apply(act, ())
        assert act.owner is None  # released stays released
        with pytest.raises(TypeError):
            holder.apply(act, (SetOutputLimit(1.0),))
        assert holder.command == ReleaseSetpoint()  # a bad command changes nothing
        holder.reset()
        assert holder.value is None
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_a_holder_that_stops_applying_lets_its_claim_expire() -> None:
    clock = SteppedClock()
    act = output(clock)
    holder = CommandHolder("ess")
    async with anyio.create_task_group() as tg:
        tg.start_soon(act.run)
        holder.apply(act, (SetGridSetpoint(50.0),))
        await clock.advance(11.0)  # past the claim's time to live without a renewal
        await settle()
        assert act.owner is None
        tg.cancel_scope.cancel()


def test_a_holder_takes_only_the_commands_of_its_output() -> None:
    clock = SteppedClock()
    setpoint, limit = output(clock), output(clock)
    grid = CommandHolder("ess", kinds=(SetGridSetpoint, ReleaseSetpoint))
    mdp = CommandHolder("ess", kinds=(SetMaxDischargePower,))
    decision = (SetGridSetpoint(10.0), SetMaxDischargePower(2000.0))
    grid.apply(setpoint, decision)
    mdp.apply(limit, decision)
    assert (setpoint.desired, limit.desired) == (10.0, 2000.0)
    mdp.apply(limit, (SetGridSetpoint(20.0),))  # not this output's: the claim in force stays
    assert (mdp.value, limit.desired) == (2000.0, 2000.0)
