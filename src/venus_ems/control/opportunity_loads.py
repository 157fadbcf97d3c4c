"""When our surplus distributor must stand down for Victron's Opportunity Loads (OL).

OL (Venus OS 3.80) runs as ``com.victronenergy.opportunityloads``, started by venus-platform
only while it is enabled; ``/OperationalState`` is 0 Disabled, 1 Active, 2 SleepMode,
3 OffGridPaused, 4 IncompatibleSystem, 5 AbnormalCondition (venus-platform.md §1.6). Two
controllers must never drive loads at once, so we stand down whenever OL is present and not
known to be out of play (Disabled or IncompatibleSystem); an unreadable state counts as running.
"""

from __future__ import annotations

__all__ = ["OL_STATES", "STANDING_DOWN", "opportunity_loads_hold"]

OL_STATES = {
    0: "disabled",
    1: "active",
    2: "sleep mode",
    3: "off-grid pause",
    4: "incompatible system",
    5: "abnormal condition",
}
STANDING_DOWN = "Victron Opportunity Loads active"
_OUT_OF_PLAY = (0, 4)


def opportunity_loads_hold(present: bool, state: object) -> str | None:
    """The reason to stand down, or None: ``present`` = OL's service is on the bus."""
    if not present:
        return None
    if isinstance(state, bool) or not isinstance(state, int) or state not in OL_STATES:
        return f"{STANDING_DOWN} (state unknown)"
    if state in _OUT_OF_PLAY:
        return None
    return STANDING_DOWN if state == 1 else f"{STANDING_DOWN} ({OL_STATES[state]})"
