"""The output limiter's cap as an output command: MaxDischargePower or the grid setpoint.

Time-series tables for both methods (engage, hold, missing readings, release) and properties
of the maths: the setpoint only ever adds import and keeps the output at the cap, the loss
ratio stays within its bounds, a command goes out only when the command in force changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from venus_ems.control import (
    LimiterSettings,
    MultiSample,
    ReleaseSetpoint,
    SetGridSetpoint,
    SetMaxDischargePower,
)
from venus_ems.control.limiter_output import (
    CapInputs,
    CapMethod,
    CapSettings,
    CapState,
    cap_setpoint_w,
    decide,
    inverter_output_w,
    loss_ratio,
    max_discharge_power_w,
)

LIMIT = LimiterSettings(limit_w=5000.0, dead_time_s=5.0, meter_interval_s=1.0)
MDP = CapSettings(LIMIT, CapMethod.MAX_DISCHARGE_POWER)
SETPOINT = CapSettings(LIMIT, "setpoint")  # type: ignore[arg-type]  # text is converted


@dataclass(frozen=True)
class Row:
    t: float
    output: float | None  # inverter output (W, + = DC to AC), None = no reading
    expect: object  # the command, or None = hold
    dc: float | None = None  # Multi DC power (+ = charging)
    grid: float | None = 50.0
    others: float | None = None
    ess: float | None = 50.0


def run(settings: CapSettings, rows: list[Row]) -> CapState:
    state = CapState()
    for row in rows:
        sample = None if row.output is None else MultiSample(row.t, None, (row.output,))
        grid = None if row.grid is None else (row.grid,)
        inputs = CapInputs(sample, row.dc, grid, row.others, row.ess)
        d = decide(inputs, state, settings, row.t)
        assert d.commands == (() if row.expect is None else (row.expect,)), row
        state = d.next_state
    return state


def test_max_discharge_power_scaled_by_the_conversion_loss() -> None:
    state = run(
        MDP,
        [
            Row(0, 4000.0, None, dc=-4400.0),  # below the limit: nothing claimed
            Row(1, 7000.0, SetMaxDischargePower(5500.0), dc=-7700.0),  # cap 5000 x 1.1
            Row(2, 6000.0, None, dc=-6600.0),  # dead time: hold
            Row(8, 5010.0, None, dc=-5511.0),  # within the dead band of the limit: hold
            Row(9, 5100.0, SetMaxDischargePower(5390.0), dc=-5610.0),  # cap 4900 x 1.1
            Row(10, None, None),  # no reading: the cap (and the command) stays
        ],
    )
    assert state.limiter.cap_w == (4900.0,)
    assert state.command == SetMaxDischargePower(5390.0)


def test_max_discharge_power_is_released_once_after_the_quiet_time() -> None:
    rows = [Row(0, 7000.0, SetMaxDischargePower(5000.0))]  # no DC reading: ratio 1
    rows += [Row(t, 4000.0, None) for t in range(6, 66)]
    rows += [Row(66, 4000.0, SetMaxDischargePower(None))]  # 60 s quiet: given back
    rows += [Row(t, 4000.0, None) for t in range(67, 70)]  # released: nothing more
    state = run(MDP, rows)
    assert state == CapState(state.limiter)
    assert state.limiter.cap_w is None


def test_setpoint_adds_only_the_import_the_cap_needs() -> None:
    state = run(
        SETPOINT,
        [
            Row(0, 4000.0, None),
            Row(1, 7000.0, SetGridSetpoint(2050.0)),  # 50 + 7000 - 5000
            Row(2, 6500.0, None, grid=550.0),  # same net load 7050 W: hold
            Row(3, 5000.0, None, grid=None),  # no grid reading: the setpoint in force stays
            Row(4, 4000.0, SetGridSetpoint(50.0), grid=1000.0),  # load fell: ESS setting
            Row(5, 4000.0, SetGridSetpoint(300.0), grid=1000.0, others=300.0),  # ESS control's aim
            Row(6, 4000.0, SetGridSetpoint(700.0), grid=1700.0, others=300.0),  # 1700 + 4000 - 5000
            Row(7, 4000.0, None, grid=1703.0, others=300.0),  # rounded to 10 W: unchanged
        ],
    )
    assert state.command == SetGridSetpoint(700.0)
    assert state.cap_total_w == 5000.0


def test_setpoint_reason_says_the_grid_reading_is_missing() -> None:
    s = CapState()
    d = decide(CapInputs(MultiSample(1.0, None, (7000.0,)), grid_w=None), s, SETPOINT, 1.0)
    assert d.commands == ()  # engaged, but nothing to claim without a grid reading
    assert d.next_state.limiter.cap_w == (5000.0,)
    assert "missing" in d.codes()


def test_setpoint_release_gives_the_grid_setpoint_back() -> None:
    rows = [Row(0, 7000.0, SetGridSetpoint(2050.0))]
    rows += [Row(t, 4000.0, SetGridSetpoint(50.0) if t == 6 else None) for t in range(6, 66)]
    rows += [Row(66, 4000.0, ReleaseSetpoint()), Row(67, 4000.0, None)]
    run(SETPOINT, rows)


def test_bad_method_is_refused() -> None:
    with pytest.raises(ValueError, match="max_discharge_power, setpoint"):
        CapSettings(LIMIT, "grid")  # type: ignore[arg-type]


# ------------------------------------------------------------------ properties of the maths

watts = st.floats(-20_000, 20_000, allow_nan=False)
cap = st.floats(0, 20_000, allow_nan=False)
phases = st.integers(1, 3)


@given(cap, st.lists(watts, min_size=1, max_size=3), st.lists(watts, min_size=1, max_size=3),
       st.none() | watts)  # fmt: skip
def test_setpoint_keeps_the_output_at_the_cap_and_never_undercuts_the_others(
    cap_w: float, out: list[float], grid: list[float], others: float | None
) -> None:
    sp = cap_setpoint_w(cap_w, out, grid, others)
    assert sp % 10 == 0
    net_load = sum(grid) + sum(out)
    assert net_load - sp <= cap_w + 5.0  # hub4control at the setpoint: output within the cap
    if others is not None:
        assert sp >= others - 5.0  # it only ever adds import
        if net_load - cap_w <= others:  # the cap needs nothing more: the others' setpoint
            assert abs(sp - others) <= 5.0


@given(st.none() | watts, st.lists(watts, min_size=1, max_size=3))
def test_loss_ratio_bounds(dc: float | None, out: list[float]) -> None:
    ratio = loss_ratio(dc, out)
    assert 1.0 <= ratio <= 1.3
    if dc is None or dc >= 0 or sum(out) < 500.0:
        assert ratio == 1.0


@given(cap, st.none() | watts, st.lists(watts, min_size=1, max_size=3))
def test_max_discharge_power_between_the_cap_and_the_worst_loss(
    cap_w: float, dc: float | None, out: list[float]
) -> None:
    limit = max_discharge_power_w(cap_w, out, dc)
    assert limit == int(limit)  # whole watts: a write per noise step is not worth it
    exact = cap_w * loss_ratio(dc, out)
    assert exact - 1.0 < limit <= exact  # rounded down: the rounding never lifts the cap
    assert cap_w - 1.0 < limit <= 1.3 * cap_w


@given(st.lists(st.tuples(st.none() | watts, st.none() | watts), min_size=1, max_size=3))
def test_inverter_output_needs_every_ac_out(pairs: list[tuple[float | None, float | None]]) -> None:
    outs = [o for o, _ in pairs]
    ins = [i for _, i in pairs]
    got = inverter_output_w(outs, ins)
    if any(o is None for o in outs):
        assert got is None
    else:
        assert got == tuple(o - (i or 0.0) for o, i in pairs)  # type: ignore[operator]


def test_inverter_output_refuses_mismatched_phases() -> None:
    with pytest.raises(ValueError, match="phases"):
        inverter_output_w([1.0, 2.0], [1.0])


@st.composite
def inputs_series(draw: st.DrawFn) -> list[tuple[float, CapInputs]]:
    t, rows = 0.0, []
    for _ in range(draw(st.integers(1, 60))):
        t += draw(st.sampled_from([0.5, 1.0, 3.0, 10.0]))
        out = draw(st.none() | st.floats(0, 9000))
        sample = None if out is None else MultiSample(t, None, (out,))
        grid = draw(st.none() | st.floats(-3000, 9000).map(lambda g: (g,)))
        dc = draw(st.none() | st.floats(-12000, 3000))
        others = draw(st.none() | st.floats(-1000, 1000))
        rows.append((t, CapInputs(sample, dc, grid, others, 50.0)))
    return rows


@given(inputs_series(), st.sampled_from([MDP, SETPOINT]))
def test_a_command_only_when_the_command_in_force_changes(rows, settings: CapSettings) -> None:
    state = CapState()
    claimed: object = None  # what a feature applying the commands would hold
    for t, inputs in rows:
        d = decide(inputs, state, settings, t)
        assert len(d.commands) <= 1
        if d.commands:
            cmd = d.commands[0]
            assert cmd != claimed
            if isinstance(cmd, (ReleaseSetpoint, SetMaxDischargePower)) and (
                isinstance(cmd, ReleaseSetpoint) or cmd.w is None
            ):
                assert claimed is not None  # only what was claimed is released
                assert d.next_state.limiter.cap_w is None
                claimed = None
            else:
                assert d.next_state.limiter.cap_w is not None
                claimed = cmd
            if settings.method is CapMethod.SETPOINT:
                assert isinstance(cmd, (SetGridSetpoint, ReleaseSetpoint))
            else:
                assert isinstance(cmd, SetMaxDischargePower)
        assert d.next_state.command == claimed
        state = d.next_state
