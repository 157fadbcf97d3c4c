"""Multi output limiter: closed loop against a tiny plant, tables, stale readings, per phase."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from venus_ems.control import LimiterSettings, LimiterState, MultiSample, SetOutputLimit
from venus_ems.control.output_limiter import decide


@dataclass
class MultiOutput:
    """The Multi's AC output: min(demand, cap + offset), cap after a dead time, first-order lag."""

    demand: Callable[[float], tuple[float, ...]]
    phases: int = 1
    dead_time_s: float = 2.0
    tau_s: float = 0.3
    noise_w: float = 0.0
    offset_w: float = 0.0
    seed: int = 3
    t: float = 0.0
    caps: tuple[float, ...] | None = None
    y: list[float] = field(default_factory=list)
    queue: list[tuple[float, tuple[float, ...] | None]] = field(default_factory=list)
    log: list[tuple[float, tuple[float, ...]]] = field(default_factory=list)
    sent: list[tuple[float, SetOutputLimit]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.y = list(self.demand(0.0))

    def command(self, cmd: SetOutputLimit) -> None:
        self.sent.append((self.t, cmd))
        if cmd.total_w is None:
            caps = None
        elif cmd.per_phase_w is not None:
            caps = cmd.per_phase_w
        else:
            caps = (cmd.total_w,)
        self.queue.append((self.t + self.dead_time_s, caps))

    def step(self, dt: float) -> None:
        self.t += dt
        while self.queue and self.queue[0][0] <= self.t + 1e-9:
            self.caps = self.queue.pop(0)[1]
        alpha = 1.0 - math.exp(-dt / self.tau_s)
        want = list(self.demand(self.t))
        if self.caps is not None:
            if len(self.caps) == 1 and self.phases > 1:  # a total cap: shared evenly
                want = [min(w, self.caps[0] / self.phases + self.offset_w) for w in want]
            else:
                want = [min(w, c + self.offset_w) for w, c in zip(want, self.caps, strict=True)]
        self.y = [y + alpha * (w - y) for y, w in zip(self.y, want, strict=True)]
        self.log.append((self.t, tuple(self.y)))

    def sample(self) -> MultiSample:
        noisy = tuple(y + self.rng.uniform(-self.noise_w, self.noise_w) for y in self.y)
        return MultiSample(self.t, None, noisy)


def drive(
    plant: MultiOutput, s: LimiterSettings, seconds: float, dt: float = 0.5, meter_s: float = 1.0
) -> LimiterState:
    state = LimiterState()
    sample = plant.sample()
    next_sample = 0.0
    for _ in range(round(seconds / dt)):
        plant.step(dt)
        if plant.t + 1e-9 >= next_sample:
            sample = plant.sample()
            next_sample = plant.t + meter_s
        d = decide(sample, state, s, plant.t)
        for cmd in d.commands:
            assert isinstance(cmd, SetOutputLimit)
            plant.command(cmd)
        state = d.next_state
    return state


def excursions(log: list[tuple[float, tuple[float, ...]]], above: float) -> list[float]:
    """Durations (s) of the stretches where any phase's output is above ``above``."""
    out: list[float] = []
    start: float | None = None
    for t, ys in log:
        if max(ys) > above and start is None:
            start = t
        elif max(ys) <= above and start is not None:
            out.append(t - start)
            start = None
    if start is not None:
        out.append(log[-1][0] - start)
    return out


def steps(demand: list[tuple[float, float]]) -> Callable[[float], tuple[float, ...]]:
    """Piecewise-constant demand from (start time, W) pairs."""

    def at(t: float) -> tuple[float, ...]:
        value = demand[0][1]
        for start, w in demand:
            if t >= start:
                value = w
        return (value,)

    return at


LIMIT = LimiterSettings(
    limit_w=5000.0,
    floor_w=1000.0,
    max_step_w=500.0,
    dead_band_w=25.0,
    release_hysteresis_w=300.0,
    release_after_s=30.0,
    dead_time_s=3.0,  # plant dead time 2 s + lag
    meter_interval_s=1.0,
)


@pytest.mark.parametrize("noise_w", [0.0, 20.0])
def test_closed_loop_caps_fast_and_releases_after_hysteresis(noise_w: float) -> None:
    demand = steps([(0, 3000), (20, 8000), (80, 5200), (100, 2000), (200, 9000)])
    plant = MultiOutput(demand, noise_w=noise_w)
    drive(plant, LIMIT, 260.0)
    # never more than one step above the limit for longer than the expected effect time
    worst = max(excursions(plant.log, LIMIT.limit_w + LIMIT.max_step_w), default=0.0)
    assert worst <= LIMIT.effect_delay_s + 1.0, worst
    # steady state under the cap: at the limit (within noise and lag)
    capped = [ys[0] for t, ys in plant.log if 30 <= t <= 80]
    assert max(capped) <= LIMIT.limit_w + 1e-6
    assert min(capped) >= LIMIT.limit_w - 60
    caps = [c for _, c in plant.sent]
    assert caps[0].total_w == LIMIT.limit_w  # engaged straight at the limit
    assert caps[0].excess_w > 0
    releases = [t for t, c in plant.sent if c.released]
    # demand fell to 2000 W at 100 s: released only after 30 s below limit - hysteresis
    assert len(releases) == 1
    assert 130.0 <= releases[0] <= 134.0
    # re-engaged when demand jumps again at 200 s
    assert any(t >= 200 and not c.released for t, c in plant.sent)
    assert len(plant.sent) <= 4


def test_offset_plant_steps_down_gradually_and_never_below_floor() -> None:
    # the Multi delivers 800 W more than its cap (e.g. PV on AC-out): the loop must learn it
    plant = MultiOutput(steps([(0, 9000)]), offset_w=800.0)
    drive(plant, LIMIT, 60.0)
    caps = [c.total_w for _, c in plant.sent]
    assert caps[0] == LIMIT.limit_w
    assert all(c is not None and c >= LIMIT.floor_w for c in caps)
    moves = [abs(b - a) for a, b in pairwise(caps) if a and b]
    assert moves
    assert max(moves) <= LIMIT.max_step_w
    final = plant.log[-1][1][0]
    assert final <= LIMIT.limit_w + LIMIT.dead_band_w
    # each decision removes one step of the unknown offset: one extra dead time per step
    extra_steps = math.ceil((800.0 - LIMIT.max_step_w) / LIMIT.max_step_w)
    longest = max(excursions(plant.log, LIMIT.limit_w + LIMIT.max_step_w))
    assert longest <= (1 + extra_steps) * LIMIT.effect_delay_s + 1.0


def test_floor_bounds_the_cap() -> None:
    plant = MultiOutput(steps([(0, 9000)]), offset_w=6000.0)
    drive(plant, LIMIT, 120.0)
    caps = [c.total_w for _, c in plant.sent]
    assert min(c for c in caps if c is not None) == LIMIT.floor_w
    d = decide(
        MultiSample(121.0, None, (7000.0,)),
        LimiterState((LIMIT.floor_w,), 100.0, 100.0),
        LIMIT,
        121.0,
    )
    assert d.held
    assert "output_floor" in d.codes()


def test_per_phase_caps_only_the_hot_phase() -> None:
    s = LimiterSettings(
        limit_w=2000.0,
        phases=3,
        per_phase=True,
        floor_w=200.0,
        max_step_w=300.0,
        dead_time_s=3.0,
        release_after_s=20.0,
    )
    plant = MultiOutput(lambda t: (3000.0, 1000.0, 500.0), phases=3)
    drive(plant, s, 40.0)
    first = plant.sent[0][1]
    assert first.per_phase_w == (2000.0, 2000.0, 2000.0)
    assert first.total_w == 6000.0  # phases x the smallest phase cap
    assert first.excess_w == pytest.approx(1000.0, abs=1.0)
    late = [ys for t, ys in plant.log if t > 10]
    assert max(ys[0] for ys in late) <= 2000.0 + 1e-6
    assert min(ys[1] for ys in late) == pytest.approx(1000.0)


@dataclass(frozen=True)
class Row:
    t: float
    out_w: float | None
    expect: float | str | None  # cap total, "release", or None (hold)
    codes: frozenset[str]
    measured_at: float | None = None


def test_table() -> None:
    s = LimiterSettings(
        limit_w=3000.0,
        floor_w=500.0,
        max_step_w=400.0,
        release_hysteresis_w=200.0,
        release_after_s=10.0,
        dead_time_s=2.0,
        meter_interval_s=1.0,
    )
    rows = [
        Row(0, 2500, None, frozenset({"output_below_limit"})),
        Row(1, 3020, None, frozenset({"output_below_limit"})),  # inside the dead band
        Row(2, 4000, 3000.0, frozenset({"output_above_limit"})),
        Row(3, 3900, None, frozenset({"dead_time"})),
        Row(5, 3300, 2700.0, frozenset({"output_above_limit"})),  # offset: step down
        Row(8, 3000, None, frozenset({"output_capped"})),
        Row(9, None, None, frozenset({"missing"})),
        Row(10, 3000, None, frozenset({"stale"}), measured_at=-5),
        Row(11, 2500, 3000.0, frozenset({"output_recovering"})),
        Row(14, 2700, None, frozenset({"release_pending"})),
        Row(20, 2810, None, frozenset({"output_capped"})),  # inside the hysteresis: timer reset
        Row(21, 2700, None, frozenset({"release_pending"})),
        Row(30, 2700, None, frozenset({"release_pending"})),
        Row(31, 2700, "release", frozenset({"released"})),
        Row(32, 2700, None, frozenset({"output_below_limit"})),
    ]
    state = LimiterState()
    for row in rows:
        sample = None
        if row.out_w is not None:
            at = row.measured_at if row.measured_at is not None else row.t
            sample = MultiSample(at, None, (row.out_w,))
        d = decide(sample, state, s, row.t)
        if row.expect is None:
            assert d.held, (row.t, d.commands, d.text)
        else:
            (cmd,) = d.commands
            assert isinstance(cmd, SetOutputLimit)
            got = "release" if cmd.released else cmd.total_w
            assert got == row.expect, (row.t, d.text)
        assert row.codes <= d.codes(), (row.t, d.codes(), d.text)
        state = d.next_state


def test_bad_readings_are_refused_and_change_nothing() -> None:
    state = LimiterState((3000.0,), 0.0, 0.0)
    with pytest.raises(ValueError, match="ac_out_w has 3 phases; expected 1"):
        decide(MultiSample(1.0, None, (1.0, 2.0, 3.0)), state, LIMIT, 5.0)
    with pytest.raises(ValueError, match="after now"):
        decide(MultiSample(9.0, None, (1.0,)), state, LIMIT, 5.0)
    assert state == LimiterState((3000.0,), 0.0, 0.0)
    assert decide(MultiSample(5.0, None, (6000.0,)), state, LIMIT, 5.0).commands


@st.composite
def demand_profiles(draw: st.DrawFn) -> list[tuple[float, float]]:
    t, out = 0.0, []
    for _ in range(draw(st.integers(2, 6))):
        out.append((t, draw(st.floats(0, 2.2 * LIMIT.limit_w))))
        t += draw(st.floats(5, 60))
    return out


@settings(max_examples=40, deadline=None)
@given(demand_profiles(), st.floats(0, LIMIT.dead_band_w / 2), st.floats(0.05, 0.6))
def test_closed_loop_properties(
    profile: list[tuple[float, float]], noise_w: float, tau_s: float
) -> None:
    plant = MultiOutput(steps(profile), noise_w=noise_w, tau_s=tau_s)
    drive(plant, LIMIT, profile[-1][0] + 60.0)
    # never above limit + one step for longer than the expected effect time (+ one tick)
    longest = max(excursions(plant.log, LIMIT.limit_w + LIMIT.max_step_w), default=0.0)
    assert longest <= LIMIT.effect_delay_s + 1.0
    caps = [c for _, c in plant.sent]
    for before, after in pairwise(caps):
        if before.total_w is not None and after.total_w is not None:
            assert abs(after.total_w - before.total_w) <= LIMIT.max_step_w
        if after.total_w is not None:
            assert LIMIT.floor_w <= after.total_w <= LIMIT.limit_w
    # a release only after the output stayed below limit - hysteresis for release_after_s
    quiet_below = LIMIT.limit_w - LIMIT.release_hysteresis_w + noise_w
    for t_release, cmd in plant.sent:
        if cmd.released:
            window = [
                ys[0] for t, ys in plant.log if t_release - LIMIT.release_after_s <= t <= t_release
            ]
            assert max(window) <= quiet_below, (t_release, max(window))
