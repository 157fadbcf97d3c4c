"""Solar surplus distributor: who may draw how much of the surplus (pure; W, s, + = drawn).

One call of :func:`decide` is one distribution (the ``[surplus]`` feature calls it every
``interval`` and when a consumer reports); types are in :mod:`venus_ems.control.surplus_model`.

**Surplus** ``O = -grid + battery_charge + sum(counted draw)``: what is exported, what the
battery absorbs and what the consumers we drive already draw (so they keep it), capped by PV
when PV is known (grid charging is not surplus). A consumer is *counted* when it is ready and
its report is fresh; its draw is its measured draw, except while it *settles* (below).

**Reservation** ``R`` from the SoC curve: consumers that do not ignore the reservation only
get what leaves ``R`` W for the battery; ``ignore_reservation`` consumers may use all of ``O``.

**Allocation** (es-ESS's, with its bugs fixed): consumers are sorted by effective priority
(``priority + shift x grants so far``; ties: for shifting consumers fewer grants first, then
input order); the first one that can take its next step (stepped: the next level; continuous:
``min_w`` first, then ``step_w`` up to ``max_w``, or any whole number of W when ``step_w`` is
0) gets exactly that step, and the walk starts again, until nobody can take anything. Exact
fits are used and nobody overshoots its maximum.

**Time rules** (state in :class:`LoadMemory`):

* min on: a consumer switched on less than ``min_on_s`` ago keeps at least its first step;
* min off: a consumer switched off less than ``min_off_s`` ago stays off;
* hysteresis: steps up to a consumer's present grant need ``step - hysteresis_w`` of room,
  steps above it the full step, so a constant surplus never makes anything flap;
* feed-forward / settle: for ``settle_s`` after its grant changed a consumer is held at the
  new grant (counted first) and counted in ``O`` with ``min(draw before, new grant)``: the
  grant is at once taken from what others can get, whether or not the meters show it yet, so
  two consumers never share the same watts while the meters catch up.

**Safe state**: no or stale grid reading → every consumer 0 (also those held by min on);
not ready or expired request → that consumer 0 and not counted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from .surplus_model import (
    Allocation,
    Distribution,
    Load,
    LoadMemory,
    ReservationCurve,
    Site,
    SurplusSettings,
)

__all__ = [
    "Allocation",
    "Distribution",
    "Load",
    "LoadMemory",
    "ReservationCurve",
    "Site",
    "SurplusSettings",
    "decide",
    "surplus_of",
]

EPS = 1e-6


@dataclass(slots=True)
class _Seat:
    """One eligible consumer during a decision."""

    load: Load
    index: int
    current_w: float
    d: float = 0.0
    grants: int = 0
    held: bool = False
    floor_w: float = 0.0
    may_borrow: bool = False
    borrowed: bool = False


def _round(w: float) -> float:
    return round(w, 3) + 0.0


def _next_step(seat: _Seat, room: float, keep_room: float) -> float | None:
    """The next grant this seat could take (W), or None when it is full or cannot start."""
    ld, d = seat.load, seat.d
    if ld.levels_w is not None:
        lv = ld.levels_w
        i = next((k for k, w in enumerate(lv) if abs(w - d) <= EPS), None)
        if i is None:  # a floor between levels: go to the next level above
            above = [w for w in lv if w > d + EPS]
            return above[0] - d if above else None
        return lv[i + 1] - d if i + 1 < len(lv) else None
    top = ld.max_w
    if d >= top - EPS:
        return None
    if ld.step_w > 0:
        if d <= EPS and ld.min_w > 0:
            return ld.min_w
        return min(ld.step_w, top - d)
    # any amount: as much as fits, the kept part with hysteresis
    take = math.floor(min(top - d, max(room, min(seat.current_w - d, keep_room))) + EPS)
    if d <= EPS:
        return take if take >= max(ld.min_w, 1.0) else (ld.min_w if ld.min_w > 0 else None)
    return take if take >= 1.0 else None


def _fits(seat: _Seat, step: float, room: float, hysteresis_w: float, avail: float) -> bool:
    if seat.d + step <= seat.current_w + EPS:
        if step <= room + hysteresis_w + EPS:
            return True
        # battery as a buffer: a kept level may come out of the reservation, never the grid
        if seat.may_borrow and step <= avail + EPS:
            seat.borrowed = True
            return True
        return False
    return step <= room + EPS


def surplus_of(site: Site, counted_w: float) -> float:
    """``-grid + battery + counted`` capped by PV, W (ValueError without a grid reading)."""
    if site.grid_w is None:
        raise ValueError("no grid reading")
    o = -site.grid_w + (site.battery_w or 0.0) + counted_w
    if site.pv_w is not None and math.isfinite(site.pv_w):
        o = min(o, max(0.0, site.pv_w))
    return o


def _why_not_eligible(ld: Load, mem: LoadMemory, now: float, s: SurplusSettings) -> str | None:
    if not ld.ready:
        return "not ready"
    if ld.reported_at is None or now - ld.reported_at > s.request_max_age_s:
        return "request expired"
    if ld.top_w <= 0:
        return "asks for nothing"
    if mem.granted_w <= EPS and mem.off_at is not None and now - mem.off_at < ld.min_off_s:
        return f"min off ({ld.min_off_s - (now - mem.off_at):.0f} s left)"
    return None


def _remember(mem: LoadMemory, new_w: float, counted_w: float, now: float) -> LoadMemory:
    old = mem.granted_w
    if abs(new_w - old) <= EPS:
        return mem
    on_at = now if old <= EPS < new_w else mem.on_at
    off_at = now if new_w <= EPS < old else mem.off_at
    return LoadMemory(new_w, now, on_at, off_at, min(counted_w, new_w))


def _site_problem(site: Site, now: float, s: SurplusSettings) -> str | None:
    if site.grid_w is None or not math.isfinite(site.grid_w):
        return "no grid reading"
    age = now - site.taken_at
    if age > s.input_max_age_s:
        return f"grid reading stale ({age:.0f} s old)"
    return None


def decide(
    site: Site,
    loads: Sequence[Load],
    memory: dict[str, LoadMemory] | None,
    settings: SurplusSettings,
    now: float,
) -> Distribution:
    """One distribution at ``now`` (monotonic s): allowances, figures and the next memory.

    ``memory`` is the previous :attr:`Distribution.memory` (None or {} at start). Names must
    be unique (ValueError).
    """
    if len({ld.name for ld in loads}) != len(loads):
        raise ValueError("consumer names must be unique")
    memory = memory or {}
    mems = {ld.name: memory.get(ld.name, LoadMemory()) for ld in loads}
    reservation = settings.reservation.at(site.soc)
    problem = _site_problem(site, now, settings)
    if problem is not None:
        off = {ld.name: Allocation(0.0, problem) for ld in loads}
        forget = {ld.name: _remember(mems[ld.name], 0.0, 0.0, now) for ld in loads}
        return Distribution(off, None, reservation, 0.0, 0.0, forget, problem)

    reasons: dict[str, str] = {}
    seats: list[_Seat] = []
    counted: dict[str, float] = {}
    for i, ld in enumerate(loads):
        mem = mems[ld.name]
        why = _why_not_eligible(ld, mem, now, settings)
        if why is not None:
            reasons[ld.name] = why
            continue
        settling = mem.changed_at is not None and now - mem.changed_at < settings.settle_s
        draw = ld.draw_w if ld.draw_w is not None and math.isfinite(ld.draw_w) else 0.0
        counted[ld.name] = mem.settle_w if settling else max(0.0, draw)
        seat = _Seat(ld, i, mem.granted_w)
        seat.may_borrow = not ld.ignore_reservation and (
            settings.borrow_s > 0
            and (mem.borrowing_since is None or now - mem.borrowing_since < settings.borrow_s)
        )
        if settling:
            seat.held, seat.floor_w = True, mem.granted_w
        elif mem.granted_w > EPS and mem.on_at is not None and now - mem.on_at < ld.min_on_s:
            seat.floor_w = min(ld.first_w, mem.granted_w)
        seats.append(seat)

    o = max(0.0, surplus_of(site, sum(counted.values())))
    # while a change settles the meters may or may not show it: a running consumer may keep
    # its level within that uncertainty as well (it never gets more for it)
    unsure = sum(max(0.0, s.current_w - mems[s.load.name].settle_w) for s in seats if s.held)
    _share(seats, o, reservation, settings.hysteresis_w + unsure)
    for seat in seats:
        if seat.floor_w > EPS and seat.d <= seat.floor_w + EPS:
            reasons[seat.load.name] = "settling" if seat.held else "min on"

    allocs: dict[str, Allocation] = {}
    new_mem: dict[str, LoadMemory] = {}
    by_name = {s.load.name: s for s in seats}
    for ld in loads:
        got = by_name.get(ld.name)
        w = _round(got.d) if got is not None else 0.0
        why = reasons.get(ld.name)
        if why is None or (why == "min on" and got is not None and got.d > got.floor_w + EPS):
            why = "surplus" if w > 0 else _short_reason(ld, reservation)
        if got is not None and got.borrowed and w > EPS and why == "surplus":
            why = "kept from the battery reservation"
        allocs[ld.name] = Allocation(w, why)
        nm = _remember(mems[ld.name], w, counted.get(ld.name, 0.0), now)
        since = (mems[ld.name].borrowing_since or now) if got and got.borrowed and w else None
        new_mem[ld.name] = nm if nm.borrowing_since == since else replace(nm, borrowing_since=since)
    assigned = _round(sum(a.power_w for a in allocs.values()))
    return Distribution(allocs, _round(o), reservation, assigned, _round(o - assigned), new_mem)


def _short_reason(ld: Load, reservation: float) -> str:
    if ld.ignore_reservation or reservation <= 0:
        return "not enough surplus"
    return "not enough surplus above the battery reservation"


def _rank(s: _Seat) -> tuple[float, int, int]:
    """Sort key: effective priority, then (for shifting consumers) fewer grants, then order."""
    shift = s.load.priority_shift
    return (s.load.priority + shift * s.grants, s.grants if shift > 0 else 0, s.index)


def _share(seats: list[_Seat], o: float, reservation: float, keep_slack_w: float) -> None:
    """Allocate ``o`` W; held seats first, min-on floors only when they would be missed."""
    held = [s for s in seats if s.held]
    free = [s for s in seats if not s.held]
    avail = o
    for seat in held:
        seat.d = seat.floor_w
        avail -= seat.floor_w
    _allocate(free, avail, reservation, keep_slack_w)
    if all(s.d >= s.floor_w - EPS for s in free):
        return
    # a consumer in its min on time would go below its first step: seat the floors first
    for seat in free:
        seat.d, seat.grants, seat.borrowed = seat.floor_w, 0, False
        avail -= seat.floor_w
    _allocate(free, avail, reservation, keep_slack_w)


def _allocate(seats: list[_Seat], avail: float, reservation: float, hysteresis_w: float) -> None:
    """Hand out steps one at a time in effective-priority order (mutates the seats)."""
    while True:
        order = sorted(seats, key=_rank)
        for seat in order:
            room = avail if seat.load.ignore_reservation else avail - reservation
            keep_room = max(room + hysteresis_w, avail if seat.may_borrow else -math.inf)
            step = _next_step(seat, room, keep_room)
            if step is None or step <= EPS or not _fits(seat, step, room, hysteresis_w, avail):
                continue
            seat.d += step
            seat.grants += 1
            avail -= step
            break
        else:
            return
