"""The shared tail of every ESS decision: gate, clamp, split per phase, skip tiny changes, emit.

A mode turns readings into a :class:`Goal` (the total ``u`` it wants, or ``None`` to hold);
:func:`actuate` applies the limits in priority order — battery (CCL/DCL, allow flags, SoC
floor), then Multi power, then the grid limits — splits the total per phase for mode 3, and
emits a command only if it differs from the one in force by at least ``min_change_w``.
Battery and Multi limits are enforced even while waiting for the dead time: they are computed
from readings taken at one instant, so enforcing them twice cannot double-count.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from .commands import Decision, ReleaseSetpoint, SetGridSetpoint, SetPhaseSetpoints
from .ess import ActuationState, EssMethod, Gate, View
from .inputs import EssInputs
from .limits import Interval
from .phases import split_same_sign
from .reasons import Reason, ReasonCode, fmt_w, missing

__all__ = ["Goal", "actuate", "missing_essentials", "safe_decision", "used_times"]


@dataclass(frozen=True)
class Goal:
    """What a mode wants: total ``u_w`` (W, + = import) or ``None`` to hold.

    ``primary_at`` is the time of the reading the goal was computed from (marked as used when
    a command goes out); ``preferred_w`` is the per-phase conversion split it would like (mode
    3); ``grid_window`` bounds ``u`` by the grid limits; ``urgent`` goals may act during the
    dead time (fast export path); ``error_w`` (from the new reading taken ``error_at``, inside
    the dead band or not) is remembered for the steadiness check; ``producers_w`` is the AC-in
    producers' power the command in force accounts for (feed-forward baseline).
    """

    u_w: float | None
    reasons: tuple[Reason, ...] = ()
    primary_at: float | None = None
    preferred_w: tuple[float, ...] | None = None
    grid_window: Interval | None = None
    urgent: bool = False
    error_w: float | None = None
    error_at: float | None = None
    in_band: bool = False
    producers_w: float | None = None


def used_times(view: View) -> tuple[float, ...]:
    """Measurement times of every reading group that feeds the decision."""
    return tuple(g.measured_at for g in (view.grid, view.battery, view.multi) if g is not None)


def missing_essentials(view: View, inputs: EssInputs, needs: Iterable[str]) -> tuple[Reason, ...]:
    """Reasons for each needed group (``grid``, ``battery``, ``multi_in``, ``multi_out``) absent.

    An empty result means every needed reading is present and fresh.
    """

    def gone(name: str, given: object) -> Reason:
        if given is None:
            return missing(name)
        stale = (r for r in view.notes if r.code is ReasonCode.STALE and r.subject == name)
        return next(stale, missing(name))

    out: list[Reason] = []
    for need in needs:
        if need == "grid" and view.grid is None:
            out.append(gone("grid", inputs.grid))
        elif need == "battery":
            if view.battery is None:
                out.append(gone("battery", inputs.battery))
            elif view.battery.power_w is None:
                out.append(missing("battery power"))
        elif need in ("multi_in", "multi_out"):
            if view.multi is None:
                reason = gone("Multi", inputs.multi)
                if reason not in out:
                    out.append(reason)
            elif need == "multi_in" and view.multi.ac_in_w is None:
                out.append(missing("Multi AC-in"))
            elif need == "multi_out" and view.multi.ac_out_w is None:
                out.append(missing("Multi AC-out"))
    return tuple(out)


def _remember(view: View, state: ActuationState, goal: Goal | None) -> ActuationState:
    nxt = replace(state, soc_blocked=view.limits.soc_blocked)
    if goal is not None:
        nxt = replace(nxt, producers_w=goal.producers_w)
    if goal is None or goal.error_w is None or goal.error_at is None:
        return nxt
    since = state.off_band_after(goal.error_w, goal.error_at, goal.in_band)
    return replace(nxt, last_error_w=goal.error_w, off_band_since=since)


def _hold(
    view: View, state: ActuationState, reasons: Iterable[Reason], goal: Goal | None = None
) -> Decision[ActuationState]:
    return Decision((), _remember(view, state, goal), tuple(reasons))


def safe_decision(
    view: View, state: ActuationState, reasons: Iterable[Reason]
) -> Decision[ActuationState]:
    """Essential readings missing: go to the safe setpoint, give the output back, or hold.

    With ``release_when_safe`` the output is released once (:class:`ReleaseSetpoint`); the next
    command starts afresh from the setpoint read back (or the core's own aim).
    """
    s = view.settings
    why = [*view.notes, *(r for r in reasons if r not in view.notes)]
    if s.release_when_safe:
        why.append(Reason(ReasonCode.SAFE_SETPOINT, "safe state: setpoint released"))
        if state.released:
            return _hold(view, state, why)
        nxt = replace(
            _remember(view, state, None),
            command_w=None,
            sent_at=view.now,
            unseen_rise_w=0.0,
            released=True,
        )
        return Decision((ReleaseSetpoint(),), nxt, tuple(why))
    if s.safe_setpoint_w is None:
        why.append(Reason(ReasonCode.SAFE_SETPOINT, "holding: no safe setpoint configured"))
        return _hold(view, state, why)
    target, _ = _split(view, s.safe_setpoint_w, None)
    why.append(
        Reason(
            ReasonCode.SAFE_SETPOINT, f"safe setpoint {fmt_w(s.safe_setpoint_w)}", s.safe_setpoint_w
        )
    )
    if _change(target, view.u_last) < max(s.min_change_w, 1.0):
        return _hold(view, state, why)
    return _emit(view, state, target, why, consumed_at=None, settled=True)


def _change(command: tuple[float, ...], before: tuple[float, ...] | None) -> float:
    """Largest per-phase difference to the command in force (inf if none or other shape)."""
    if before is None or len(before) != len(command):
        return float("inf")
    return max(abs(a - b) for a, b in zip(command, before, strict=True))


def _split(
    view: View, u_w: float, preferred: tuple[float, ...] | None
) -> tuple[tuple[float, ...], bool]:
    s = view.settings
    out = view.multi.ac_out_w if view.multi is not None else None
    if s.method is EssMethod.HUB4_OVERRIDE or s.phases == 1 or out is None:
        n = s.command_phases
        return _whole_watts([u_w / n] * n), False
    n = s.phases
    c_total = u_w - sum(out)
    pref = preferred if preferred is not None else tuple(c_total / n for _ in range(n))
    # Battery limits outrank the Multi ratings: if the total cannot fit the per-phase ratings
    # (readings beyond the configured ratings), widen them evenly rather than change the total.
    low = min(-s.inverter_max_w, c_total / n)
    high = max(s.charger_max_w, c_total / n)
    conv = split_same_sign(c_total, pref, [low] * n, [high] * n)
    rebalanced = any(abs(a - b) > 1.0 for a, b in zip(conv, pref, strict=True)) and (
        min(pref) < 0 < max(pref)
    )
    return _whole_watts([o + c for o, c in zip(out, conv, strict=True)]), rebalanced


def _whole_watts(values: list[float]) -> tuple[float, ...]:
    """Round to whole watts keeping the rounded total (the last rounding goes to one phase)."""
    rounded = [float(round(v)) for v in values]
    short = round(sum(values)) - sum(rounded)
    if short:
        # the phase whose rounding moved it furthest the other way takes the difference
        worst = max(range(len(values)), key=lambda i: (values[i] - rounded[i]) * short)
        rounded[worst] += short
    return tuple(rounded)


def _emit(
    view: View,
    state: ActuationState,
    command: tuple[float, ...],
    reasons: list[Reason],
    consumed_at: float | None,
    settled: bool,
    goal: Goal | None = None,
) -> Decision[ActuationState]:
    s = view.settings
    cmd = (
        SetGridSetpoint(command[0])
        if s.method is EssMethod.HUB4_OVERRIDE
        else SetPhaseSetpoints.of(command)
    )
    before = view.u_last_total
    delta = 0.0 if before is None else sum(command) - before
    carried = 0.0 if settled else state.unseen_rise_w
    nxt = replace(
        _remember(view, state, goal),
        command_w=command,
        sent_at=view.now,
        last_sample_at=consumed_at if consumed_at is not None else state.last_sample_at,
        unseen_rise_w=carried + max(0.0, delta),
        released=False,
    )
    return Decision((cmd,), nxt, tuple(reasons))


def actuate(view: View, state: ActuationState, goal: Goal, gate: Gate) -> Decision[ActuationState]:
    """Turn a goal into at most one command, applying limits in priority order.

    Mode 3: battery and Multi limits are enforced on the command in force too (the Multi does
    exactly what it is told). Override: hub4control enforces them itself, so the core only
    refuses to move the setpoint further past them and reports them.
    """
    s = view.settings
    reasons: list[Reason] = [*view.notes, *goal.reasons]
    u_last = view.u_last_total
    safety = view.safety
    if safety is not None and u_last is not None and s.method is EssMethod.HUB4_OVERRIDE:
        if not safety.contains(u_last, s.min_change_w):
            _, bound = safety.clamp(u_last)
            if bound is not None:
                reasons.append(bound)
        safety = Interval(
            min(safety.lo, u_last), max(safety.hi, u_last), safety.lo_reason, safety.hi_reason
        )
    consumed_at = goal.primary_at
    u_des = goal.u_w
    if u_des is None and gate.wait is not None:
        reasons.append(gate.wait)
    window = safety
    if u_des is None:
        consumed_at = None
        if safety is None or u_last is None or safety.contains(u_last, s.min_change_w):
            return _hold(view, state, reasons, goal)
        u_des = u_last  # a battery or Multi limit moved under the command in force
    elif safety is not None and goal.grid_window is not None:
        window = safety.narrow(goal.grid_window)
    if window is None:
        return _hold(view, state, [*reasons, missing("battery or Multi")], goal)
    u, bound = window.clamp(u_des)
    if bound is not None and bound not in reasons:
        reasons.append(bound)
    command, rebalanced = _split(view, u, goal.preferred_w)
    if rebalanced:
        reasons.append(
            Reason(ReasonCode.PHASE_SPLIT, "phases balanced: none charges while another inverts")
        )
    change = _change(command, view.u_last)
    if change < max(s.min_change_w, 1.0):
        reasons.append(
            Reason(ReasonCode.SMALL_CHANGE, f"change {fmt_w(change)} below minimum", change)
        )
        return _hold(view, state, reasons, goal)
    return _emit(view, state, command, reasons, consumed_at, gate.settled, goal)
