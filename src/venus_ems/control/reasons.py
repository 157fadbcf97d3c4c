"""Why a control core decided what it did: machine-readable codes plus human text.

Every :class:`~venus_ems.control.commands.Decision` carries a tuple of :class:`Reason` so the
features can publish "capped by DCL 120 A" or "waiting 1.8 s for dead time" next to the value.
The factory functions below are the only place the texts are written, so they stay uniform.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = [
    "Reason",
    "ReasonCode",
    "at_bound",
    "dead_time",
    "fmt_w",
    "missing",
    "stale",
]


class ReasonCode(str, Enum):
    """Short stable codes; the value is what goes on D-Bus/MQTT."""

    # waiting / holding
    IN_BAND = "in_band"
    DEAD_TIME = "dead_time"
    NO_NEW_READING = "no_new_reading"
    SMALL_CHANGE = "small_change"
    MISSING = "missing"
    STALE = "stale"
    SAFE_SETPOINT = "safe_setpoint"
    # acting
    REGULATING = "regulating"
    FAST_EXPORT = "fast_export"
    STEP_LIMIT = "step_limit"
    TRACKING = "tracking"
    PHASE_SPLIT = "phase_split"
    # grid limits
    ZERO_EXPORT = "zero_export"
    EXPORT_CAP = "export_cap"
    IMPORT_CAP = "import_cap"
    MAX_FEED_IN = "max_feed_in"
    # battery and Multi limits
    CCL = "ccl"
    DCL = "dcl"
    CHARGE_NOT_ALLOWED = "charge_not_allowed"
    DISCHARGE_NOT_ALLOWED = "discharge_not_allowed"
    SOC_FLOOR = "soc_floor"
    INVERTER_LIMIT = "inverter_limit"
    CHARGER_LIMIT = "charger_limit"
    # modes
    MODE_CHANGED = "mode_changed"
    MODE_PENDING = "mode_pending"
    INVERTER_POWER = "inverter_power"
    BATTERY_CURRENT = "battery_current"
    SOC_TARGET = "soc_target"
    # output limiter
    OUTPUT_ABOVE_LIMIT = "output_above_limit"
    OUTPUT_BELOW_LIMIT = "output_below_limit"
    OUTPUT_CAPPED = "output_capped"
    OUTPUT_FLOOR = "output_floor"
    OUTPUT_RECOVERING = "output_recovering"
    RELEASE_PENDING = "release_pending"
    RELEASED = "released"
    # baseline
    PERIOD = "period"


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason: ``code`` for machines, ``text`` for people, ``value`` (W, A, %, s) if any."""

    code: ReasonCode
    text: str
    value: float | None = None

    def __str__(self) -> str:
        """The human text."""
        return self.text


def fmt_w(watts: float) -> str:
    """Format watts as a whole number with unit, e.g. ``"-600 W"``."""
    return f"{round(watts):d} W"


def dead_time(wait_s: float) -> Reason:
    """Waiting ``wait_s`` seconds (>= 0) for the last command to show in the readings."""
    if wait_s > 0:
        return Reason(ReasonCode.DEAD_TIME, f"waiting {wait_s:.1f} s for dead time", wait_s)
    return Reason(
        ReasonCode.DEAD_TIME, "waiting for a reading taken after the last command took effect", 0.0
    )


def missing(what: str) -> Reason:
    """A needed reading is absent (never treated as 0)."""
    return Reason(ReasonCode.MISSING, f"no {what} reading")


def stale(what: str, age_s: float) -> Reason:
    """A needed reading is older than the staleness limit."""
    return Reason(ReasonCode.STALE, f"{what} reading stale ({age_s:.1f} s old)", age_s)


def at_bound(code: ReasonCode, text: str, value: float | None = None) -> Reason:
    """A limit that bound the command (e.g. ``capped by DCL 120 A``)."""
    return Reason(code, text, value)
