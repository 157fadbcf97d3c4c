"""Stand-down check for the ``[surplus]`` distributor: Victron's Opportunity Loads runs.

:func:`opportunity_loads_check` reads ``com.victronenergy.opportunityloads/OperationalState``
from the shared monitor and returns the reason to stand down (see
:mod:`venus_ems.control.opportunity_loads`); the distributor appends it to its ``hold_checks``.
"""

from __future__ import annotations

from ..control.opportunity_loads import opportunity_loads_hold
from ..runtime.feature import FeatureContext
from ..venus import Monitor
from ..venus.s2 import OPPORTUNITY_LOADS

__all__ = ["OPPORTUNITY_LOADS", "opportunity_loads_check", "opportunity_loads_reason"]


def opportunity_loads_reason(monitor: Monitor) -> str | None:
    """Why our distributor must not run now (OL present and in play), or None."""
    state = monitor.service(OPPORTUNITY_LOADS)
    if state is None or not state.ready:
        return None
    return opportunity_loads_hold(True, monitor.get(OPPORTUNITY_LOADS, "/OperationalState"))


def opportunity_loads_check(ctx: FeatureContext) -> str | None:
    """A ``hold_checks`` entry of the ``[surplus]`` feature."""
    return opportunity_loads_reason(ctx.monitor)
