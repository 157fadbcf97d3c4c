"""Without a safe setpoint the ESS core gives its output back, as a command, exactly once.

``release_when_safe``: missing or stale readings emit :class:`ReleaseSetpoint` (no command is
in force afterwards), later decisions hold while the readings stay gone, and the first
decision on fresh readings commands a setpoint again. The stable message for that state comes
from the reasons' structured fields (``subject``), not from their text.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_grid_target_tables import MODE3, OVERRIDE, Row, inputs_for

from venus_ems.control import (
    ActuationState,
    ActuatorSettings,
    EssInputs,
    ReleaseSetpoint,
    SetGridSetpoint,
    SetPhaseSetpoints,
)
from venus_ems.control.grid_target import decide
from venus_ems.control.reasons import ReasonCode, missing, safe_note, stable_text, stale


def releasing(settings):
    return replace(settings, actuator=replace(settings.actuator, release_when_safe=True))


@pytest.mark.parametrize("settings", [MODE3, OVERRIDE], ids=["mode3", "override"])
def test_release_once_then_hold_then_control_again(settings) -> None:
    s = releasing(settings)
    state = ActuationState()
    d = decide(inputs_for(Row(0, 500, None)), state, s, 0.0)
    assert len(d.commands) == 1
    assert isinstance(d.commands[0], (SetGridSetpoint, SetPhaseSetpoints))
    state = d.next_state
    gone = inputs_for(Row(20, 500, None, grid_at=5))  # the grid reading is 15 s old
    d = decide(gone, state, s, 20.0)
    assert d.commands == (ReleaseSetpoint(),)
    assert {"stale", "safe_setpoint"} <= d.codes()
    assert d.next_state.command_w is None
    assert d.next_state.released
    assert safe_note(d.reasons) == (
        "inputs missing or stale (grid reading stale): safe state: setpoint released"
    )
    state = d.next_state
    no_grid = replace(inputs_for(Row(21, 500, None)), grid=None)
    d = decide(no_grid, state, s, 21.0)
    assert d.commands == ()  # released already: nothing more to send
    assert safe_note(d.reasons) == (
        "inputs missing or stale (no grid reading): safe state: setpoint released"
    )
    state = d.next_state
    d = decide(inputs_for(Row(30, 500, None, acin=0.0)), state, s, 30.0)
    assert len(d.commands) == 1  # fresh readings: a setpoint again, from the core's own aim
    assert not isinstance(d.commands[0], ReleaseSetpoint)
    assert not d.next_state.released
    assert safe_note(d.reasons) is None


def test_release_and_a_safe_setpoint_exclude_each_other() -> None:
    with pytest.raises(ValueError, match="exclude each other"):
        ActuatorSettings(safe_setpoint_w=0.0, release_when_safe=True)
    with pytest.raises(ValueError, match="release_when_safe"):
        ActuatorSettings(release_when_safe=1)  # type: ignore[arg-type]


def test_stable_text_leaves_the_age_out_and_keys_on_the_subject() -> None:
    old = stale("grid", 12.34)
    assert old.subject == "grid"
    assert old.text == "grid reading stale (12.3 s old)"
    assert stable_text(old) == "grid reading stale"
    assert stable_text(stale("grid", 99.0)) == stable_text(old)
    assert missing("Multi AC-in").subject == "Multi AC-in"
    assert stable_text(missing("Multi AC-in")) == "no Multi AC-in reading"


@st.composite
def series(draw: st.DrawFn) -> list[tuple[float, EssInputs]]:
    """Readings every second; the grid reading is sometimes missing or stops updating."""
    out, grid_at = [], 0.0
    for t in range(draw(st.integers(1, 40))):
        fate = draw(st.sampled_from(["fresh", "fresh", "frozen", "gone"]))
        if fate == "fresh":
            grid_at = float(t)
        grid = draw(st.floats(-3000, 3000))
        acin = draw(st.floats(-3000, 3000))
        inputs = inputs_for(Row(float(t), grid, None, acin=acin, grid_at=grid_at))
        out.append((float(t), replace(inputs, grid=None) if fate == "gone" else inputs))
    return out


@given(series(), st.sampled_from([MODE3, OVERRIDE]))
def test_a_release_is_sent_once_per_loss_and_only_on_safe_decisions(rows, settings) -> None:
    s = releasing(settings)
    state = ActuationState()
    released = False
    for t, inputs in rows:
        d = decide(inputs, state, s, t)
        safe = ReasonCode.SAFE_SETPOINT in {r.code for r in d.reasons}
        assert len(d.commands) <= 1
        if d.commands == (ReleaseSetpoint(),):
            assert safe
            assert not released  # never twice without a command in between
            released = True
        elif d.commands:
            assert not safe
            released = False
        assert d.next_state.released == released
        assert (d.next_state.command_w is None) or not released
        assert (safe_note(d.reasons) is not None) == safe
        state = d.next_state
