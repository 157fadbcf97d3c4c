"""When ESS lets a feature act: every ESS mode and Dynamic ESS mode, both methods."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from venus_ems.control import EssMethod
from venus_ems.control.guards import ess_guard, limiter_guard

modes = st.none() | st.integers(-2, 6)
OVERRIDE, MODE3 = EssMethod.HUB4_OVERRIDE, EssMethod.MODE3


@given(modes, modes, st.sampled_from(list(EssMethod)))
def test_acts_only_in_the_ess_mode_of_its_method_and_never_beside_dynamic_ess(
    hub4: int | None, dess: int | None, method: EssMethod
) -> None:
    guard = ess_guard(hub4, dess, method)
    fits = hub4 == 3 if method is MODE3 else hub4 in (1, 2)
    dess_on = dess is not None and dess > 0
    assert (guard.hold is None) == (fits and not dess_on)
    assert guard.abandon == dess_on  # Dynamic ESS owns the output: nothing is written
    assert (guard.hub4_mode, guard.dess_mode) == (hub4, dess)


@given(modes, modes)
def test_the_limiter_acts_where_the_hub4_override_does(hub4: int | None, dess: int | None) -> None:
    lim, ess = limiter_guard(hub4, dess), ess_guard(hub4, dess, OVERRIDE)
    assert (lim.hold is None) == (ess.hold is None)
    assert lim.abandon == ess.abandon


@pytest.mark.parametrize(
    ("hub4", "dess", "method", "text"),
    [
        (1, 1, OVERRIDE, "Dynamic ESS is active (mode 1)"),
        (None, None, OVERRIDE, "ESS mode unknown"),
        (1, None, MODE3, "method mode3 needs ESS mode 'External control' (Hub4Mode 3)"),
        (3, 0, OVERRIDE, "the hub4 override has no effect; use method mode3"),
    ],
)
def test_hold_texts(hub4: int | None, dess: int | None, method: EssMethod, text: str) -> None:
    hold = ess_guard(hub4, dess, method).hold
    assert hold is not None
    assert text in hold


def test_limiter_in_mode_3_says_why() -> None:
    hold = limiter_guard(3, None).hold
    assert hold is not None
    assert "the Multi ignores MaxDischargePower" in hold
    assert limiter_guard(3, 2).abandon  # Dynamic ESS still wins: step aside


def test_a_negative_dynamic_ess_mode_is_off() -> None:
    """Regression: any non-zero mode used to count as Dynamic ESS owning the output, so the
    feature abandoned it (no safe write) although Dynamic ESS was not running."""
    guard = ess_guard(None, -1, OVERRIDE)
    assert guard.hold is not None
    assert "ESS mode unknown" in guard.hold
    assert not guard.abandon  # released: the actuator writes the safe value
