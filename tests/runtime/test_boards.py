"""The consumer board and grid-target requests: the contracts features rely on."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from venus_ems.runtime.consumers import ConsumerBoard, ConsumerSpec
from venus_ems.runtime.grid_requests import MAX_SHIFT_W, GridRequests

HEATER = ConsumerSpec("heater", levels_w=(0.0, 500.0, 1000.0))


def test_a_grant_is_followed_only_while_the_distributor_is_active_and_fresh():
    board = ConsumerBoard()
    seat = board.join(HEATER)
    assert seat.allowance(0.0, max_age_s=10) is None  # nobody distributes: standalone
    board.activate("surplus")
    board.grant("heater", 500.0, 1.0, "surplus 700 W")
    grant = seat.allowance(5.0, max_age_s=10)
    assert grant is not None
    assert grant.power_w == 500.0
    assert grant.reason == "surplus 700 W"
    assert seat.allowance(11.5, max_age_s=10) is None  # stale grant: decide alone
    board.deactivate("surplus")
    assert seat.grant is None
    assert seat.allowance(1.0, max_age_s=10) is None


def test_a_grant_lasts_as_long_as_the_distributor_vouches_for_it():
    # a 60 s distribution interval: a 15 s consumer (water heater) keeps following its grant
    board = ConsumerBoard()
    seat = board.join(HEATER)
    board.activate("surplus")
    board.grant("heater", 500.0, 0.0, valid_s=185.0)
    g = seat.allowance(100.0, max_age_s=15)
    assert g is not None
    assert g.power_w == 500.0
    assert seat.allowance(186.0, max_age_s=15) is None  # the distributor hung: standalone
    board.grant("heater", 500.0, 200.0, valid_s=5.0)
    assert seat.allowance(214.0, max_age_s=15) is not None  # the consumer's own age is longer
    for bad in (math.nan, -1.0, math.inf):
        with pytest.raises(ValueError, match="validity"):
            board.grant("heater", 500.0, 0.0, valid_s=bad)


def test_listeners_hear_grants_reports_and_stand_down():
    board = ConsumerBoard()
    seat = board.join(HEATER)
    heard: list[str] = []
    seat.on_grant(lambda: heard.append("grant"))
    board.on_change(lambda: heard.append("board"))
    board.activate("surplus")
    board.grant("heater", 1000.0, 0.0)
    seat.report(980.0, 0.5)
    board.deactivate("surplus")
    assert heard == ["grant", "board", "grant"]
    assert seat.draw_w == 980.0
    assert seat.reported_at == 0.5


def test_bad_seats_and_grants_are_refused():
    board = ConsumerBoard()
    board.join(HEATER)
    with pytest.raises(ValueError, match="already on the board"):
        board.join(HEATER)
    with pytest.raises(KeyError):
        board.grant("nobody", 100.0, 0.0)
    for bad in (math.nan, -1.0, math.inf):
        with pytest.raises(ValueError, match="finite power"):
            board.grant("heater", bad, 0.0)
    board.activate("surplus")
    with pytest.raises(ValueError, match="already distributes"):
        board.activate("other")
    for spec in (
        {"levels_w": (100.0, 200.0)},
        {"levels_w": (0.0, 200.0, 200.0)},
        {"levels_w": (0.0, math.inf)},
        {"min_w": 500.0, "max_w": 100.0},
        {"min_w": 0.0, "max_w": 100.0, "min_on_s": -1.0},
    ):
        with pytest.raises(ValueError):
            ConsumerSpec("x", **spec)


def test_a_non_finite_draw_is_unknown_and_leaving_frees_the_name():
    board = ConsumerBoard()
    seat = board.join(HEATER)
    seat.report(math.nan, 0.0)
    assert seat.draw_w is None
    seat.leave()
    assert board.consumers() == []
    assert board.join(HEATER).spec.top_w == 1000.0


def test_requests_expire_add_up_and_release_at_once():
    req = GridRequests()
    changes: list[int] = []
    req.on_change(lambda: changes.append(1))
    req.request("no_battery_to_ev", 3600.0, until=10.0, reason="car charging")
    req.request("other", -200.0, until=5.0)
    req.request("no_battery_to_ev", 3600.0, until=12.0)  # renewal of the same value is quiet
    assert req.shift_w(4.0) == 3400.0
    assert req.shift_w(5.0) == 3600.0  # the other one expired
    req.release("no_battery_to_ev")
    assert req.shift_w(6.0) == 0.0
    assert req.live(6.0) == []
    assert len(changes) == 3


@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**9), 10**9)))
def test_any_request_is_either_bounded_or_refused(shift):
    req = GridRequests()
    try:
        req.request("x", float(shift), until=1.0)
    except ValueError:
        assert req.live(0.0) == []
    else:
        assert abs(req.shift_w(0.0)) <= MAX_SHIFT_W
