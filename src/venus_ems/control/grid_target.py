"""Grid-target core: hold grid power at a target, never beyond an export or import cap.

Kinds (``GridTargetSettings.kind``), grid power + = import:

* ``zero_export`` — never export: regulate to ``target_w`` (>= 0), moved up to at least the
  dead band so the band never reaches into export.
* ``export_cap`` — export at most ``cap_w``: regulate to ``target_w`` (default 0, self-
  consumption), kept at least ``dead_band_w`` above ``-cap_w``.
* ``import_cap`` — import at most ``cap_w``: regulate to ``target_w``, kept ``dead_band_w``
  below the cap.
* ``fixed`` — regulate to ``target_w`` (any sign).

ESS ``MaxFeedInPower`` is a further export cap on every kind.

Mode 3 (we close the loop on the Multi's AC-input setpoints):

1. Act only on readings taken after the last command is expected to show (dead time + meter
   interval); otherwise hold with a reason. One exception, ``fast_export``: a new reading that
   shows export below the band may be acted on at once. It adds the rise already commanded
   but not yet visible and ignores commanded falls, so it can only under-correct; the grid
   limit mapped through the same readings then brings it exactly to the floor.
2. Inside ``target ± dead_band`` hold.
3. Export side (grid below the band): correct fully in one step. Import side: lower ``u`` by at
   most ``max_increase_w`` per decision (more discharge is added slowly; load peaks are often
   short) unless the import cap is exceeded.
4. Integral action on the command in force; when the measured Multi AC-in is further than
   ``tracking_tolerance_w`` from the command (saturated, inaccurate at low power) re-base on
   the measurement instead — this is the anti-windup.
5. Limits via :func:`~venus_ems.control.actuation.actuate`: battery, Multi, then grid.

The dead band and the aim follow the Multi's low-power error (:func:`noise_band`, D46): at
least ``noise_sigmas`` errors wide, the aim ``noise_aim_sigmas`` errors off its limit, and an
error the noise could explain is acted on after ``noise_confirm_s`` only. In mode 3 a change
of known AC-in producers is fed forward at once (``EssInputs.acin_producers_w``).

hub4 override (hub4control closes the fast loop on our grid setpoint): the core writes the
aim, leaves hub4control alone while it settles or is saturated, and trims a steady offset
(confirmed over the dead time, at most ``tracking_tolerance_w``).

With perfect information (``dead_time_s = meter_interval_s = 0`` and noiseless readings)
the core reaches the target in one step, which is what an oracle bound needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import Enum

from .actuation import Goal, actuate, missing_essentials, safe_decision, used_times
from .commands import Decision, check_finite
from .ess import ActuationState, ActuatorSettings, EssMethod, Gate, View, make_gate, make_view
from .inputs import EssInputs
from .limits import Interval
from .noise import NoiseBand, noise_band
from .reasons import Reason, ReasonCode, at_bound, fmt_w

__all__ = [
    "GridBand",
    "GridControlSettings",
    "GridTargetKind",
    "GridTargetSettings",
    "decide",
    "grid_goal",
    "target_band",
]


class GridTargetKind(str, Enum):
    """What the grid target means."""

    ZERO_EXPORT = "zero_export"
    EXPORT_CAP = "export_cap"
    IMPORT_CAP = "import_cap"
    FIXED = "fixed"


@dataclass(frozen=True, slots=True)
class GridTargetSettings:
    """Target kind and tuning (W); ``max_increase_w`` ``None`` = uncapped discharge increase."""

    kind: GridTargetKind = GridTargetKind.ZERO_EXPORT
    target_w: float = 0.0
    cap_w: float | None = None
    dead_band_w: float = 25.0
    max_increase_w: float | None = 1000.0

    def __post_init__(self) -> None:
        """Validate the kind and its fields (ValueError naming the field)."""
        try:
            object.__setattr__(self, "kind", GridTargetKind(self.kind))
        except ValueError:
            choices = ", ".join(k.value for k in GridTargetKind)
            raise ValueError(f"kind = {self.kind!r}: expected one of {choices}") from None
        check_finite("target_w", self.target_w)
        check_finite("dead_band_w", self.dead_band_w)
        if self.dead_band_w < 0:
            raise ValueError(f"dead_band_w = {self.dead_band_w}: expected >= 0")
        if self.max_increase_w is not None:
            check_finite("max_increase_w", self.max_increase_w)
            if self.max_increase_w <= 0:
                raise ValueError(f"max_increase_w = {self.max_increase_w}: expected > 0 or None")
        capped = self.kind in (GridTargetKind.EXPORT_CAP, GridTargetKind.IMPORT_CAP)
        if capped:
            if self.cap_w is None:
                raise ValueError(f"kind = {self.kind.value} needs cap_w (W >= 0)")
            check_finite("cap_w", self.cap_w)
            if self.cap_w < 0:
                raise ValueError(f"cap_w = {self.cap_w}: expected >= 0")
        elif self.cap_w is not None:
            raise ValueError(
                f"cap_w is only used with export_cap or import_cap, not {self.kind.value}"
            )
        if self.kind is GridTargetKind.ZERO_EXPORT and self.target_w < 0:
            raise ValueError(f"target_w = {self.target_w}: zero_export needs a target >= 0 W")
        if (
            self.kind is GridTargetKind.EXPORT_CAP
            and self.cap_w is not None
            and self.target_w < -self.cap_w
        ):
            raise ValueError(f"target_w = {self.target_w} exports more than cap_w = {self.cap_w}")
        if (
            self.kind is GridTargetKind.IMPORT_CAP
            and self.cap_w is not None
            and self.target_w > self.cap_w
        ):
            raise ValueError(f"target_w = {self.target_w} imports more than cap_w = {self.cap_w}")


@dataclass(frozen=True, slots=True)
class GridControlSettings:
    """Actuator facts plus the grid target: everything :func:`decide` needs."""

    actuator: ActuatorSettings = field(default_factory=ActuatorSettings)
    target: GridTargetSettings = field(default_factory=GridTargetSettings)


@dataclass(frozen=True, slots=True)
class GridBand:
    """Hard grid limits and the aim point (W, + = import; ±inf = no limit)."""

    floor_w: float
    aim_w: float
    ceil_w: float
    floor_reason: Reason | None = None
    ceil_reason: Reason | None = None
    aim_reason: Reason | None = None


def target_band(target: GridTargetSettings, max_feed_in_w: float | None) -> GridBand:
    """Where to regulate and what never to cross, for a kind and ESS MaxFeedInPower (W)."""
    floor, ceil = -math.inf, math.inf
    floor_reason: Reason | None = None
    ceil_reason: Reason | None = None
    if target.kind is GridTargetKind.ZERO_EXPORT:
        floor, floor_reason = 0.0, at_bound(ReasonCode.ZERO_EXPORT, "zero export", 0.0)
    elif target.kind is GridTargetKind.EXPORT_CAP:
        assert target.cap_w is not None
        floor = -target.cap_w
        floor_reason = at_bound(
            ReasonCode.EXPORT_CAP, f"export cap {fmt_w(target.cap_w)}", target.cap_w
        )
    elif target.kind is GridTargetKind.IMPORT_CAP:
        assert target.cap_w is not None
        ceil = target.cap_w
        ceil_reason = at_bound(
            ReasonCode.IMPORT_CAP, f"import cap {fmt_w(target.cap_w)}", target.cap_w
        )
    if max_feed_in_w is not None and -max_feed_in_w > floor:
        floor = -max_feed_in_w
        floor_reason = at_bound(
            ReasonCode.MAX_FEED_IN, f"MaxFeedInPower {fmt_w(max_feed_in_w)}", max_feed_in_w
        )
    lowest, highest = floor + target.dead_band_w, ceil - target.dead_band_w
    aim_reason: Reason | None = None
    if lowest > highest:
        aim = (floor + ceil) / 2
        aim_reason = floor_reason
    elif target.target_w < lowest:
        aim, aim_reason = lowest, floor_reason
    elif target.target_w > highest:
        aim, aim_reason = highest, ceil_reason
    else:
        aim = target.target_w
    return GridBand(floor, aim, ceil, floor_reason, ceil_reason, aim_reason)


def _preferred_split(view: View, aim_w: float) -> tuple[float, ...] | None:
    """Per-phase conversions that would bring every phase to aim / n (mode 3 balancing)."""
    s, grid, multi = view.settings, view.grid, view.multi
    if (
        s.method is not EssMethod.MODE3
        or not s.per_phase_balancing
        or grid is None
        or len(grid.power_w) != s.phases
        or multi is None
        or multi.ac_in_w is None
        or multi.ac_out_w is None
    ):
        return None
    share = aim_w / s.phases
    return tuple(
        (i - o) + (share - g)
        for i, o, g in zip(multi.ac_in_w, multi.ac_out_w, grid.power_w, strict=True)
    )


def _grid_window(view: View, band: GridBand, g: float) -> Interval | None:
    """The grid limits mapped onto ``u`` through the measured operating point."""
    fb = view.fb_w
    if fb is None:
        return None
    return Interval(
        fb + band.floor_w - g, fb + band.ceil_w - g, band.floor_reason, band.ceil_reason
    )


def _in_band(nb: NoiseBand, band: GridBand, g: float) -> Reason | None:
    slack = nb.slack_w
    if abs(band.aim_w - g) <= nb.band_w and band.floor_w - slack <= g <= band.ceil_w + slack:
        return Reason(
            ReasonCode.IN_BAND,
            f"grid {fmt_w(g)} within {fmt_w(band.aim_w)} ± {fmt_w(nb.band_w)}",
            g,
        )
    return None


def _mode3_goal(
    view: View,
    nb: NoiseBand,
    gate: Gate,
    state: ActuationState,
    band: GridBand,
    max_increase_w: float | None,
) -> Goal:
    """Feed-forward of AC-in producers' changes, else the feedback loop (:func:`_mode3_feedback`).

    A change of at least ``feed_forward_w`` since the command in force moves ``u`` by the same
    watts at once (more AC PV on AC-in: the Multi takes that much more from its AC-in). Every
    feedback command re-bases the producers' baseline: the grid reading already shows them.
    """
    now_p, before = view.producers_w, state.producers_w
    u_last = view.u_last_total
    s = view.settings
    if now_p is not None and before is not None and u_last is not None:
        delta = now_p - before
        if abs(delta) >= s.feed_forward_w > 0:
            why = Reason(
                ReasonCode.REGULATING,
                f"AC-in producers {delta:+.0f} W: fed forward before the grid shows it",
                delta,
            )
            return Goal(u_last + delta, (why,), None, None, None, True, producers_w=now_p)
    goal = _mode3_feedback(view, nb, gate, state, band, max_increase_w)
    kept = now_p if goal.u_w is not None or before is None or now_p is None else before
    return replace(goal, producers_w=kept)


def _mode3_feedback(
    view: View,
    nb: NoiseBand,
    gate: Gate,
    state: ActuationState,
    band: GridBand,
    max_increase_w: float | None,
) -> Goal:
    """We close the loop: integral action on the command, fast export, capped discharge rise."""
    grid = view.grid
    assert grid is not None
    s, g, u_last, fb = view.settings, grid.total_w, view.u_last_total, view.fb_w
    notes: list[Reason] = [] if band.aim_reason is None else [band.aim_reason]
    window = _grid_window(view, band, g)
    preferred = _preferred_split(view, band.aim_w)
    error = band.aim_w - g
    in_band = _in_band(nb, band, g)
    seen = _Seen(error, grid.measured_at, in_band is not None) if gate.new else _Seen()
    if not gate.open:
        predicted = g + state.unseen_rise_w
        if not (
            s.fast_export
            and gate.new
            and u_last is not None
            and predicted < band.aim_w - nb.band_w - s.noise_sigmas * nb.noise_w
        ):
            return seen.goal(None, notes)
        notes.append(
            Reason(
                ReasonCode.FAST_EXPORT,
                f"export {fmt_w(-predicted)} beyond band: acting before the dead time is over",
                predicted,
            )
        )
        u = u_last + (band.aim_w - predicted)
        return seen.goal(u, notes, grid.measured_at, preferred, window, urgent=True)
    if in_band is not None:
        return seen.goal(None, [*notes, in_band])
    noise_w = nb.noise_w
    if noise_w > 0 and abs(error) <= nb.band_w + s.noise_sigmas * noise_w:
        since = state.off_band_after(error, grid.measured_at, False)
        if since is None or grid.measured_at - since < s.noise_confirm_s:
            text = (
                f"grid {fmt_w(g)} within the Multi's low-power error ±{fmt_w(noise_w)}: confirming"
            )
            return seen.goal(None, [*notes, Reason(ReasonCode.TRACKING, text, g)])
    base = u_last
    if base is None or (fb is not None and abs(fb - base) > s.tracking_tolerance_w):
        if base is not None and fb is not None:
            notes.append(
                Reason(
                    ReasonCode.TRACKING,
                    f"Multi at {fmt_w(fb)}, command {fmt_w(base)}: re-based on the reading",
                    fb,
                )
            )
        base = fb
    if base is None:
        return seen.goal(None, notes)
    u = base + error
    notes.append(Reason(ReasonCode.REGULATING, f"grid {fmt_w(g)}, target {fmt_w(band.aim_w)}", g))
    if u_last is not None and max_increase_w is not None:
        allowed = max(max_increase_w, g - band.ceil_w)
        if u < u_last - allowed:
            u = u_last - allowed
            notes.append(
                Reason(
                    ReasonCode.STEP_LIMIT, f"discharge raised by at most {fmt_w(allowed)}", allowed
                )
            )
    return seen.goal(u, notes, grid.measured_at, preferred, window)


def _override_goal(
    view: View, nb: NoiseBand, gate: Gate, state: ActuationState, band: GridBand
) -> Goal:
    """hub4control closes the loop on our setpoint; we only aim it and trim a steady offset.

    While hub4control is still moving (grid further than ``tracking_tolerance_w`` from the
    setpoint) nothing is done unless the setpoint itself is off the aim. An offset is trimmed
    only after it has stayed outside the dead band, on one side, for the dead time and the last
    two readings agree within the dead band; the trim never exceeds ``tracking_tolerance_w``.
    """
    grid = view.grid
    assert grid is not None
    s, g, u_last = view.settings, grid.total_w, view.u_last_total
    notes: list[Reason] = [] if band.aim_reason is None else [band.aim_reason]
    window = Interval(band.floor_w, band.ceil_w, band.floor_reason, band.ceil_reason)
    error = band.aim_w - g
    in_band = _in_band(nb, band, g)
    seen = _Seen(error, grid.measured_at, in_band is not None) if gate.new else _Seen()
    if not gate.open:
        return seen.goal(None, notes)
    if u_last is None or abs(u_last - band.aim_w) > s.tracking_tolerance_w:
        aimed = Reason(ReasonCode.REGULATING, f"grid setpoint {fmt_w(band.aim_w)}", band.aim_w)
        return seen.goal(band.aim_w, [*notes, aimed], grid.measured_at, None, window)
    if in_band is not None:
        return seen.goal(None, [*notes, in_band])
    if abs(g - u_last) > s.tracking_tolerance_w:
        notes.append(
            Reason(
                ReasonCode.TRACKING,
                f"hub4control at {fmt_w(g)}, setpoint {fmt_w(u_last)}: waiting",
                g,
            )
        )
        return seen.goal(None, notes)
    since = state.off_band_after(error, grid.measured_at, False)
    steady = (
        since is not None
        and grid.measured_at - since >= s.effect_delay_s
        and state.last_error_w is not None
        and abs(error - state.last_error_w) <= nb.band_w
    )
    if not steady:
        notes.append(Reason(ReasonCode.TRACKING, f"grid {fmt_w(g)} off target: confirming", g))
        return seen.goal(None, notes)
    tol = s.tracking_tolerance_w
    u = min(max(u_last + error, band.aim_w - tol), band.aim_w + tol)
    notes.append(
        Reason(
            ReasonCode.REGULATING,
            f"trimming setpoint: grid {fmt_w(g)}, target {fmt_w(band.aim_w)}",
            g,
        )
    )
    return seen.goal(u, notes, grid.measured_at, None, window)


@dataclass(frozen=True, slots=True)
class _Seen:
    """The control error of a new reading, to be remembered in the state."""

    error_w: float | None = None
    at: float | None = None
    in_band: bool = False

    def goal(
        self,
        u_w: float | None,
        notes: list[Reason],
        primary_at: float | None = None,
        preferred_w: tuple[float, ...] | None = None,
        window: Interval | None = None,
        *,
        urgent: bool = False,
    ) -> Goal:
        """A goal carrying this reading's control error."""
        return Goal(
            u_w,
            tuple(notes),
            primary_at,
            preferred_w,
            window,
            urgent,
            self.error_w,
            self.at,
            self.in_band,
        )


def grid_goal(view: View, target: GridTargetSettings, gate: Gate, state: ActuationState) -> Goal:
    """The ``u`` the grid target wants now (``Goal(None)`` = hold); needs a fresh grid reading."""
    assert view.grid is not None
    aim = target_band(target, view.max_feed_in_w).aim_w
    target, nb = noise_band(view, target, view.grid.total_w, aim)
    band = target_band(target, view.max_feed_in_w)
    if view.settings.method is EssMethod.MODE3:
        return _mode3_goal(view, nb, gate, state, band, target.max_increase_w)
    return _override_goal(view, nb, gate, state, band)


def needs(settings: ActuatorSettings) -> tuple[str, ...]:
    """Reading groups the grid target cannot act without."""
    if settings.method is EssMethod.MODE3:
        return ("grid", "multi_in", "multi_out") if settings.phases > 1 else ("grid", "multi_in")
    return ("grid",)


def decide(
    inputs: EssInputs, state: ActuationState, settings: GridControlSettings, now: float
) -> Decision[ActuationState]:
    """One grid-target decision (``now`` in s on the injected clock; ValueError on bad input)."""
    view = make_view(inputs, state, settings.actuator, now)
    gone = missing_essentials(view, inputs, needs(settings.actuator))
    if gone:
        return safe_decision(view, state, gone)
    assert view.grid is not None
    gate = make_gate(state, settings.actuator, now, view.grid.measured_at, used_times(view))
    goal = grid_goal(view, settings.target, gate, state)
    return actuate(view, state, goal, gate)
