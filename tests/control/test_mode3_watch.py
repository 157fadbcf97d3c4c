"""Mode-3 watch: passthrough detection as a time series, write health, and its properties."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from venus_ems.control import MultiSample
from venus_ems.control.mode3_watch import (
    Mode3WatchInputs,
    Mode3WatchSettings,
    PassthroughState,
    decide,
    observe,
)

SETTINGS = Mode3WatchSettings(refresh_s=5.0, effect_delay_s=3.0)
OUT = (200.0, 200.0, 200.0)
IDLE = (220.0, 220.0, 220.0)  # AC-in = AC-out + idle loss: nothing converted
CHARGE = (500.0, 500.0, 500.0)  # asks each phase to charge 300 W
LOW = (210.0, 210.0, 210.0)  # asks 10 W only: never judged (low-power inaccuracy)
INVERT = (-300.0, -300.0, -300.0)  # asks each phase to invert 500 W


@dataclass(frozen=True)
class Row:
    t: float
    ac_in: tuple[float, ...]
    setpoints: tuple[float, ...]
    active: bool


ROWS = [
    Row(10.0, IDLE, CHARGE, False),  # asked to charge from here on
    Row(11.0, IDLE, CHARGE, False),
    Row(12.0, IDLE, CHARGE, False),  # within the effect delay: not judged
    Row(13.0, IDLE, CHARGE, False),  # 1st
    Row(13.0, IDLE, CHARGE, False),  # the same reading again: not counted
    Row(14.0, IDLE, (480.0, 520.0, 500.0), False),  # 2nd: a new setpoint, same direction
    Row(15.0, IDLE, CHARGE, True),  # 3rd reading not following: passthrough
    Row(16.0, (500.0, 505.0, 498.0), CHARGE, False),  # the Multi follows again
    *(Row(t, IDLE, LOW, False) for t in (20.0, 21.0, 22.0, 23.0, 24.0)),
    *(Row(t, IDLE, INVERT, False) for t in (30.0, 31.0, 32.0, 33.0, 34.0)),  # new direction
    Row(35.0, IDLE, INVERT, True),
]


def test_passthrough_needs_three_readings_after_the_effect_delay() -> None:
    state = PassthroughState()
    for row in ROWS:
        state = observe(state, MultiSample(row.t, row.ac_in, OUT), row.setpoints, SETTINGS)
        assert state.active is row.active, row


def test_write_problems_and_passthrough_are_reasons() -> None:
    state = PassthroughState(count=2, last_at=14.0, asked=(1, 1, 1), asked_since=(10.0,) * 3)
    inputs = Mode3WatchInputs(MultiSample(15.0, IDLE, OUT), CHARGE, "no answer", 0.0)
    d = decide(inputs, state, SETTINGS, 16.0)
    assert d.commands == ()
    assert [r.code.value for r in d.reasons] == ["write_failing", "not_renewed", "passthrough"]
    assert d.reasons[1].text.startswith("mode-3 setpoints not renewed for 16 s")
    assert d.reasons[1].value == 16.0
    assert state.count == 2  # the state passed in is unchanged
    # renewed within 3 refresh periods, writes fine, the Multi follows: nothing to report
    ok = Mode3WatchInputs(MultiSample(16.0, CHARGE, OUT), CHARGE, None, 5.0)
    assert decide(ok, d.next_state, SETTINGS, 20.0).reasons == ()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"refresh_s": 0.0}, "refresh_s"),
        ({"effect_delay_s": -1.0}, "effect_delay_s"),
        ({"idle_w": 300.0}, "idle_w"),
        ({"readings": 0}, "readings"),
        ({"readings": True}, "readings"),
        ({"asked_w": float("nan")}, "asked_w"),
    ],
)
def test_settings_are_validated(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"refresh_s": 5.0, "effect_delay_s": 3.0, **kwargs}
    with pytest.raises(ValueError, match=message):
        Mode3WatchSettings(**args)  # type: ignore[arg-type]


phase_w = st.floats(-3000, 3000, allow_nan=False)
reading = st.tuples(phase_w, phase_w, phase_w, phase_w, phase_w, phase_w)


@st.composite
def series(draw: st.DrawFn) -> list[tuple[float, tuple[float, ...], tuple[float, ...]]]:
    """Readings at rising (sometimes repeated) times with AC-in, AC-out and setpoints."""
    t, out = 0.0, []
    for _ in range(draw(st.integers(1, 25))):
        t += draw(st.sampled_from([0.0, 0.5, 1.0, 2.0, 5.0]))
        ac_in = draw(st.tuples(phase_w, phase_w))
        ac_out = draw(st.tuples(phase_w, phase_w))
        sp = draw(st.tuples(phase_w, phase_w))
        out.append((t, ac_in + ac_out, sp))
    return out


@given(series())
def test_small_setpoints_are_never_judged(rows) -> None:
    """A Multi only asked for less than ``asked_w`` is never reported in passthrough."""
    state = PassthroughState()
    for t, readings, _ in rows:
        ac_in, ac_out = readings[:2], readings[2:]
        small = tuple(o + 199.0 for o in ac_out)
        state = observe(state, MultiSample(t, ac_in, ac_out), small, SETTINGS)
        assert not state.active
        assert state.count == 0


@given(series())
def test_a_following_multi_is_never_in_passthrough(rows) -> None:
    """When every phase converts more than its idle loss, no reading counts."""
    state = PassthroughState()
    for t, readings, sp in rows:
        ac_out = readings[2:]
        ac_in = tuple(o + (70.0 if i % 2 else -70.0) for i, o in enumerate(ac_out))
        state = observe(state, MultiSample(t, ac_in, ac_out), sp, SETTINGS)
        assert state.count == 0
        assert not state.active


@given(series())
def test_active_only_after_enough_readings_and_repeats_change_nothing(rows) -> None:
    state = PassthroughState()
    distinct: list[float] = []
    for t, readings, sp in rows:
        before = state
        state = observe(state, MultiSample(t, readings[:2], readings[2:]), sp, SETTINGS)
        if distinct and t == distinct[-1]:
            assert state == before  # the same reading again
            continue
        distinct.append(t)
        assert state.count <= len(distinct)
        assert state.active == (state.count >= SETTINGS.readings)
        if state.active:  # judged phases had their direction for the effect delay
            judged = [p for p, a in enumerate(state.asked) if a]
            assert judged
            assert any(t - state.asked_since[p] >= SETTINGS.effect_delay_s for p in judged)
