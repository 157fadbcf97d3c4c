"""Per-phase split: the total is kept, no phase charges while another inverts, limits hold."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from venus_ems.control.phases import split_same_sign

power = st.floats(-6000, 6000, allow_nan=False)
limit = st.floats(100, 5000, allow_nan=False)


def test_examples() -> None:
    # Mixed preferences: the minority sign is zeroed, the total is kept.
    assert split_same_sign(140.0, (50.0, -10.0, 100.0), (-1e4,) * 3, (1e4,) * 3) == pytest.approx(
        (45.0, 0.0, 95.0)
    )
    # A phase at its limit passes the rest to the others (least squares: equal shift).
    assert split_same_sign(140.0, (50.0, -10.0, 100.0), (-75.0,) * 3, (75.0,) * 3) == pytest.approx(
        (62.5, 2.5, 75.0)
    )
    # Inverting: everything on the negative side.
    assert split_same_sign(
        -300.0, (-200.0, 50.0, -150.0), (-1e4,) * 3, (1e4,) * 3
    ) == pytest.approx((-175.0, 0.0, -125.0))
    # Infeasible totals saturate on the total's side.
    assert split_same_sign(9000.0, (0.0, 0.0), (-100.0, -100.0), (1000.0, 2000.0)) == (
        1000.0,
        2000.0,
    )
    assert split_same_sign(-9000.0, (0.0,), (-100.0,), (1000.0,)) == (-100.0,)


def test_rejects_bad_bounds() -> None:
    with pytest.raises(ValueError, match="same non-zero length"):
        split_same_sign(0.0, (1.0, 2.0), (0.0,), (1.0, 1.0))
    with pytest.raises(ValueError, match=r"phase 2: bounds 10\.0\.\.20\.0 must straddle 0"):
        split_same_sign(0.0, (1.0, 2.0), (-1.0, 10.0), (1.0, 20.0))


@given(
    total=power,
    pref=st.lists(power, min_size=1, max_size=3),
    inv=limit,
    chg=limit,
)
def test_properties(total: float, pref: list[float], inv: float, chg: float) -> None:
    n = len(pref)
    values = split_same_sign(total, pref, [-inv] * n, [chg] * n)
    assert len(values) == n
    # never one phase charging while another inverts
    assert all(v >= -1e-6 for v in values) or all(v <= 1e-6 for v in values)
    assert all(-inv - 1e-6 <= v <= chg + 1e-6 for v in values)
    if -n * inv <= total <= n * chg:
        assert sum(values) == pytest.approx(total, abs=1e-6)
    # on the total's side of zero
    if total > 0:
        assert min(values) >= -1e-6
    if total < 0:
        assert max(values) <= 1e-6


@given(pref=st.lists(st.floats(0, 3000), min_size=1, max_size=3))
def test_feasible_preference_is_kept(pref: list[float]) -> None:
    n = len(pref)
    values = split_same_sign(sum(pref), pref, [-5000.0] * n, [5000.0] * n)
    assert values == pytest.approx(tuple(pref), abs=1e-6)
