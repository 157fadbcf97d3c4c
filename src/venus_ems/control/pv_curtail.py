"""Curtailment of AC-coupled PV when the battery and the Multi cannot absorb it.

Beside either ESS method, a second loop on the PV inverters' ``/Ac/PowerLimit`` (W, the sum
over the inverters; ``None`` = released, the inverters at MaxPower). Each new grid reading,
once the last limit change can show (``effect_delay_s``):

* ``room`` = AC power the Multi could still take to charge (CCL x V minus what the battery
  already gets, over the efficiency, within the charger rating); ``None`` when not known.
* ``delta = (grid - aim) + room``: the PV power that could be added (> 0) or must go (< 0)
  for the grid to reach the aim once the Multi takes all it can.
* Released: limit only when ``delta < -band_w`` (export the Multi cannot take).
* Limited: move the limit by ``delta`` from what the inverters make when it leaves the band;
  release once the limit would reach MaxPower, or when the grid imports beyond the band while
  the inverters make ``band_w`` less than the limit (it does not bind: clouds).

Safe state: released. Missing or stale readings release the limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .commands import check_finite

__all__ = [
    "CurtailDecision",
    "CurtailInputs",
    "CurtailSettings",
    "CurtailState",
    "charge_room_w",
    "decide",
]


@dataclass(frozen=True, slots=True)
class CurtailSettings:
    """Grid aim (W, + = import), dead band (W > 0) and command-to-reading delay (s)."""

    aim_w: float = 25.0
    band_w: float = 50.0
    effect_delay_s: float = 4.0
    stale_after_s: float = 10.0

    def __post_init__(self) -> None:
        """Validate (ValueError naming the field)."""
        for name in ("aim_w", "band_w", "effect_delay_s", "stale_after_s"):
            check_finite(name, getattr(self, name))
        if self.band_w <= 0:
            raise ValueError(f"band_w = {self.band_w}: expected > 0")
        if self.effect_delay_s < 0 or self.stale_after_s <= 0:
            raise ValueError("effect_delay_s must be >= 0 and stale_after_s > 0")


@dataclass(frozen=True, slots=True)
class CurtailInputs:
    """Grid total W and its time (s), AC PV W now, the inverters' MaxPower W, charge room W."""

    grid_w: float | None
    grid_at: float | None
    pv_w: float | None
    max_w: float | None
    room_w: float | None


@dataclass(frozen=True, slots=True)
class CurtailState:
    """The limit in force (W, None = released), when it was sent, the last reading acted on."""

    limit_w: float | None = None
    sent_at: float | None = None
    used_at: float | None = None


@dataclass(frozen=True, slots=True)
class CurtailDecision:
    """The limit to hold (None = released), the next state and why."""

    limit_w: float | None
    next_state: CurtailState
    reason: str


def charge_room_w(
    charge_limit_w: float | None,
    battery_w: float | None,
    conversion_w: float | None,
    charger_max_w: float,
    efficiency: float,
) -> float | None:
    """AC power W the Multi could still take to charge (>= 0); None if a reading is missing.

    ``charge_limit_w`` is CCL x V (0 when charging is not allowed), ``battery_w`` the battery
    power (+ = charging, DC PV included: DVCC serves the solar chargers first),
    ``conversion_w`` the Multi's AC-in minus AC-out (+ = charging).
    """
    if charge_limit_w is None or battery_w is None:
        return None
    dc = max(charge_limit_w - battery_w, 0.0)
    ac = dc / efficiency
    if conversion_w is not None:
        ac = min(ac, max(charger_max_w - conversion_w, 0.0))
    return ac


def _released(state: CurtailState, now: float, why: str, used: float | None) -> CurtailDecision:
    if state.limit_w is None:
        return CurtailDecision(None, CurtailState(None, state.sent_at, used), why)
    return CurtailDecision(None, CurtailState(None, now, used), why)


def decide(
    inputs: CurtailInputs, state: CurtailState, settings: CurtailSettings, now: float
) -> CurtailDecision:
    """One curtailment decision at ``now`` (s); ValueError on a non-finite ``now``."""
    check_finite("now", now)
    s, x = settings, inputs
    if x.grid_w is None or x.grid_at is None or x.pv_w is None or x.max_w is None:
        return _released(state, now, "PV limit released: readings missing", state.used_at)
    if now - x.grid_at > s.stale_after_s:
        return _released(state, now, "PV limit released: grid reading stale", state.used_at)
    if not all(math.isfinite(v) for v in (x.grid_w, x.pv_w, x.max_w)):
        return _released(state, now, "PV limit released: readings not finite", state.used_at)
    held = CurtailDecision(state.limit_w, state, "")
    if state.used_at is not None and x.grid_at <= state.used_at:
        return held
    if state.sent_at is not None and x.grid_at < state.sent_at + s.effect_delay_s:
        return held
    room = max(x.room_w or 0.0, 0.0)
    delta = (x.grid_w - s.aim_w) + room
    pv = max(x.pv_w, 0.0)
    if state.limit_w is None:
        if delta >= -s.band_w:
            return CurtailDecision(None, CurtailState(None, state.sent_at, x.grid_at), "")
        limit = max(pv + delta, 0.0)
        if limit >= x.max_w:  # what the readings say exceeds MaxPower: nothing to limit
            return CurtailDecision(None, CurtailState(None, state.sent_at, x.grid_at), "")
        why = f"PV limited to {limit:.0f} W: {-delta:.0f} W the battery cannot take"
        return CurtailDecision(limit, CurtailState(limit, now, x.grid_at), why)
    if abs(delta) <= s.band_w:
        kept = CurtailState(state.limit_w, state.sent_at, x.grid_at)
        return CurtailDecision(state.limit_w, kept, "")
    if x.grid_w - s.aim_w > s.band_w and pv < state.limit_w - s.band_w:
        return _released(state, now, "PV limit released: it no longer binds", x.grid_at)
    limit = max(min(state.limit_w, pv) + delta, 0.0)
    if limit >= x.max_w:
        return _released(state, now, "PV limit released: the battery takes it all", x.grid_at)
    why = f"PV limited to {limit:.0f} W"
    return CurtailDecision(limit, CurtailState(limit, now, x.grid_at), why)
