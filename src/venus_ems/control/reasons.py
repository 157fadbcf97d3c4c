"""Why a control core decided what it did: machine-readable codes plus human text.

Every :class:`~venus_ems.control.commands.Decision` carries a tuple of :class:`Reason` so the
features can publish "capped by DCL 120 A" or "waiting 1.8 s for dead time" next to the value.
The factory functions below are the only place the texts are written, so they stay uniform.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

__all__ = [
    "Reason",
    "ReasonCode",
    "at_bound",
    "dead_time",
    "fmt_w",
    "missing",
    "not_renewed",
    "passthrough",
    "safe_note",
    "stable_text",
    "stale",
    "write_failing",
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
    # mode-3 health
    WRITE_FAILING = "write_failing"
    NOT_RENEWED = "not_renewed"
    PASSTHROUGH = "passthrough"
    # micro-inverters
    BOOTSTRAP = "bootstrap"
    UNREACHABLE = "unreachable"
    LIMIT_LOST = "limit_lost"
    RESTART = "restart"
    SATURATED = "saturated"
    BATTERY_STOP = "battery_stop"
    BATTERY_FULL = "battery_full"
    TOTAL_CAP = "total_cap"
    HOLD_OFF = "hold_off"


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason: ``code`` for machines, ``text`` for people, ``value`` (W, A, %, s) if any.

    ``subject`` names the reading a ``missing``/``stale`` reason is about (``"grid"``,
    ``"battery"``, ``"Multi"``...), so nobody has to parse ``text``.
    """

    code: ReasonCode
    text: str
    value: float | None = None
    subject: str | None = None

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
    return Reason(ReasonCode.MISSING, f"no {what} reading", subject=what)


def stale(what: str, age_s: float) -> Reason:
    """A needed reading is older than the staleness limit (``age_s`` s)."""
    return Reason(ReasonCode.STALE, f"{what} reading stale ({age_s:.1f} s old)", age_s, what)


def write_failing(error: str) -> Reason:
    """Writes of the mode-3 setpoints fail (``error`` as the actuator reports it)."""
    return Reason(ReasonCode.WRITE_FAILING, f"mode-3 setpoint writes failing: {error}")


def not_renewed(age_s: float) -> Reason:
    """The mode-3 setpoints were last written ``age_s`` s ago: the Multi will drop them."""
    return Reason(
        ReasonCode.NOT_RENEWED,
        f"mode-3 setpoints not renewed for {age_s:.0f} s (the Multi falls back to passthrough)",
        age_s,
    )


def passthrough() -> Reason:
    """The Multi converts nothing although its mode-3 setpoints ask it to."""
    return Reason(
        ReasonCode.PASSTHROUGH,
        "Multi not following its mode-3 setpoints: fell back to passthrough",
    )


def stable_text(reason: Reason) -> str:
    """``reason``'s text without the numbers that change every reading (ages, durations).

    For messages that are sent when they appear or change, not once per decision.
    """
    if reason.code is ReasonCode.STALE and reason.subject is not None:
        return f"{reason.subject} reading stale"
    if reason.code is ReasonCode.NOT_RENEWED:
        return "mode-3 setpoints not renewed"
    return reason.text


def safe_note(reasons: Iterable[Reason]) -> str | None:
    """A stable message while a decision holds the safe state, naming what is gone; else None."""
    reasons = tuple(reasons)
    safe = next((r for r in reasons if r.code is ReasonCode.SAFE_SETPOINT), None)
    if safe is None:
        return None
    gone = sorted(
        {stable_text(r) for r in reasons if r.code in (ReasonCode.MISSING, ReasonCode.STALE)}
    )
    return f"inputs missing or stale ({', '.join(gone)}): {safe.text}"


def at_bound(code: ReasonCode, text: str, value: float | None = None) -> Reason:
    """A limit that bound the command (e.g. ``capped by DCL 120 A``)."""
    return Reason(code, text, value)
