"""Zero feed-in with battery-fed micro-inverters: ``decide(inputs, state, settings, now)``.

The grid is held in a band around ``target_w`` by limiting one or more inverters, each with
its own dead time (command -> full effect). One decision per new grid reading:

1. **What the reading means.** For each inverter the output at the time of the reading is
   known once its last command was confirmed and its dead time is over (or the DTU showed the
   new output); before that it lies between the old and the new limit. So the house demand
   ``D`` (grid + inverter outputs) is an interval ``[D_lo, D_hi]``.
2. **Act only when it is certain.** The commanded total ``C`` must go down when even the
   highest demand leaves the grid below the band (``D_hi - C < target - down_band``), and up
   when even the lowest demand leaves it above (``D_lo - C > target + up_band``); the new
   total is ``D_lo - target`` in both cases (export-averse). Inside the band, or while unsure,
   it holds. So a pending command is never doubled, yet a load drop during another inverter's
   dead time is acted on at once (fast down), and several inverters with different dead
   times work in parallel. A raise waits until the import has lasted ``up_delay_s``, scaled
   by each inverter's dead time over the fastest one's: short peaks are not chased into export.
3. **Few commands.** The change goes to one inverter if one can take it all, else in order:
   raises to the highest priority first, cuts to the lowest first; ties go to the shortest
   dead time, then rotate every ``rotate_s`` (wear levelling). Limits are whole percent
   (OpenDTU's relative limit), rounded to the nearest.
4. **Bounds.** Each inverter stays within its minimum and maximum; the total within the cap
   (``total_cap_w`` minus the PV-fed inverters and unavailable ones) and the battery's DCL
   budget, enforced at once even without a new grid reading.
5. **Battery** (:mod:`.micro_battery`): stopped -> every inverter at its minimum; full -> at
   maximum within the caps.
6. **Safe state.** Grid, battery or DTU readings missing or stale, or another controller
   owning the grid target (``hold_off``) -> every inverter at its safe limit. At start (and
   after a restart) each inverter first gets its safe limit, which also clears what a killed
   process left behind.
7. **Failures.** Unreachable inverters get no commands. A limit the inverter lost (restart,
   another tool) is sent again. After ``max_failures`` failed writes in a row the inverter is
   restarted (at most every ``restart_backoff_s``); its limit is set anew afterwards.
"""

from __future__ import annotations

import math

from .commands import Command, Decision, RestartInverter
from .micro_battery import BatteryVerdict, battery_gate
from .micro_model import (
    InverterState,
    MicroInputs,
    MicroSettings,
    MicroState,
)
from .micro_view import InverterView, lost, observe, tolerance_w
from .reasons import Reason, ReasonCode, at_bound, dead_time, fmt_w, missing, stale

__all__ = ["decide", "tolerance_w"]


class _Decider:
    """The mutable working copy of one decision."""

    def __init__(
        self, inputs: MicroInputs, state: MicroState, settings: MicroSettings, now: float
    ) -> None:
        self.inputs, self.state, self.settings, self.now = inputs, state, settings, now
        samples = {s.serial: s for s in inputs.inverters}
        self.invs = [
            InverterView(cfg, state.of(cfg.serial), samples.get(cfg.serial), i)
            for i, cfg in enumerate(settings.inverters)
        ]
        self.cmds: list[Command] = []
        self.reasons: list[Reason] = []
        self.grid_used_at = state.grid_used_at
        self.up_since = state.up_since

    def result(self, verdict: BatteryVerdict | None, *, safe: bool) -> Decision[MicroState]:
        s, now = self.state, self.now
        rotation, rotated_at = s.rotation, s.rotated_at
        if rotated_at is None:
            rotated_at = now
        elif now - rotated_at >= self.settings.rotate_s:
            rotation, rotated_at = rotation + 1, now
        nxt = MicroState(
            inverters=tuple((inv.cfg.serial, inv.st) for inv in self.invs),
            grid_used_at=self.grid_used_at,
            up_since=self.up_since,
            battery=s.battery if verdict is None else verdict.next_state,
            rotation=rotation,
            rotated_at=rotated_at,
            safe=safe,
        )
        return Decision(tuple(self.cmds), nxt, tuple(self.reasons))

    # ----------------------------------------------------------------- safe state

    def unsafe_inputs(self) -> list[Reason]:
        s, now, i = self.settings, self.now, self.inputs
        why: list[Reason] = []
        if i.hold_off is not None:
            why.append(Reason(ReasonCode.HOLD_OFF, i.hold_off))
        if i.grid is None:
            why.append(missing("grid"))
        elif now - i.grid.measured_at > s.stale_after_s:
            why.append(stale("grid", now - i.grid.measured_at))
        if i.dtu_at is None:
            why.append(missing("DTU"))
        elif now - i.dtu_at > s.dtu_stale_after_s:
            why.append(stale("DTU", now - i.dtu_at))
        return why

    def go_safe(self, why: list[Reason], verdict: BatteryVerdict | None) -> Decision[MicroState]:
        self.reasons.extend(why)
        for inv in self.invs:
            safe = inv.cfg.safe
            if inv.st.commanded_pct != safe:
                self.cmds.append(inv.command(safe, self.now, resend=inv.st.commanded_pct is None))
        self.reasons.append(
            Reason(ReasonCode.SAFE_SETPOINT, "safe state: every inverter at its safe limit")
        )
        return self.result(verdict, safe=True)

    # ----------------------------------------------------------------- housekeeping

    def housekeeping(self) -> None:
        """Observe, then restart, bootstrap or resend per inverter; mark the available ones."""
        s, now = self.settings, self.now
        for inv in self.invs:
            observe(inv)
            serial, sample, st = inv.cfg.serial, inv.sample, inv.st
            if sample is None:
                self.reasons.append(Reason(ReasonCode.UNREACHABLE, f"{serial}: not listed"))
                continue
            if st.restarted_at is not None and now - st.restarted_at < s.restart_settle_s:
                self.reasons.append(Reason(ReasonCode.RESTART, f"{serial}: restarting"))
                continue
            if not sample.reachable:
                self.reasons.append(Reason(ReasonCode.UNREACHABLE, f"{serial}: unreachable"))
                continue
            backoff_over = st.restarted_at is None or now - st.restarted_at >= s.restart_backoff_s
            if sample.write_failures >= s.max_failures and backoff_over:
                self.cmds.append(RestartInverter(serial))
                inv.st = InverterState(dead_s=st.dead_s, restarted_at=now)
                text = f"{serial}: {sample.write_failures} limit commands failed, restarting it"
                self.reasons.append(Reason(ReasonCode.RESTART, text))
                continue
            if st.commanded_pct is None:
                self.cmds.append(inv.command(inv.cfg.safe, now, resend=True))
                text = f"{serial}: starting from its safe limit {inv.cfg.safe} %"
                self.reasons.append(Reason(ReasonCode.BOOTSTRAP, text))
            elif lost(inv, now):
                reported = sample.limit_pct
                self.cmds.append(inv.command(st.commanded_pct, now, resend=True))
                text = f"{serial}: reports {reported:g} %, not {st.commanded_pct} %: sent again"
                self.reasons.append(Reason(ReasonCode.LIMIT_LOST, text))
            inv.available = sample.write_failures == 0 or inv.confirmed()

    # ----------------------------------------------------------------- bounds

    def bounds(self, avail: list[InverterView], verdict: BatteryVerdict) -> tuple[float, float]:
        """(lowest, highest) total W the available inverters may be given."""
        s = self.settings
        lo = sum(inv.cfg.watts(inv.cfg.min_pct) for inv in avail)
        hi = sum(inv.cfg.watts(inv.cfg.max_pct) for inv in avail)
        others = 0.0  # what the cap and the DCL budget must leave for the rest
        for inv in self.invs:
            if inv in avail:
                continue
            sample = inv.sample
            if sample is not None and sample.ac_power_w is not None:
                others += sample.ac_power_w
            else:
                others += max(inv.to_w, inv.from_w)
        i = self.inputs
        pv = i.other_max_w if i.other_w is None else i.other_w
        if s.total_cap_w is not None:
            cap = s.total_cap_w - pv - others
            if cap < hi:
                hi = cap
                text = f"total cap {fmt_w(s.total_cap_w)} leaves {fmt_w(max(cap, 0.0))}"
                self.reasons.append(at_bound(ReasonCode.TOTAL_CAP, text, cap))
        if verdict.budget_w is not None and verdict.budget_w - others < hi:
            hi = verdict.budget_w - others
            text = f"BMS discharge limit allows {fmt_w(max(hi, 0.0))}"
            self.reasons.append(at_bound(ReasonCode.DCL, text, hi))
        return lo, max(hi, lo)

    # ----------------------------------------------------------------- allocation

    def order(self, avail: list[InverterView], up: bool) -> list[InverterView]:
        n = max(len(self.invs), 1)
        rot = self.state.rotation

        def key(inv: InverterView) -> tuple[float, float, int]:
            prio = -inv.cfg.priority if up else inv.cfg.priority
            return (prio, round(inv.dead_s, 1), (inv.index - rot) % n)

        return sorted(avail, key=key)

    def allocate(
        self, delta: float, groups: list[list[InverterView]], up: bool, *, floor: bool = False
    ) -> None:
        """Spread ``delta`` W (> 0 up, < 0 down) with as few commands as possible.

        The groups are used in turn (settled inverters before those still in their dead time).
        ``floor``: round every limit down, so a bound (cap, DCL) is never passed by a step.
        """
        need = abs(delta)
        done: set[str] = set()
        for cands in groups:
            need = self._spread(need, [c for c in cands if c.cfg.serial not in done], up, floor)
            done.update(c.cfg.serial for c in cands)
            if need < 1.0:
                return

    def _spread(self, need: float, cands: list[InverterView], up: bool, floor: bool) -> float:
        ordered = self.order(cands, up)

        def room(inv: InverterView) -> float:
            cfg = inv.cfg
            if up:
                return max(cfg.watts(cfg.max_pct) - inv.to_w, 0.0)
            return max(inv.to_w - cfg.watts(cfg.min_pct), 0.0)

        single = [inv for inv in ordered if room(inv) >= need]
        for inv in single[:1] or ordered:
            take = min(room(inv), need)
            if need < 1.0 or take <= 0:
                continue
            cfg = inv.cfg
            wanted = (inv.to_w + take if up else inv.to_w - take) / cfg.step_w
            pct = math.floor(wanted + 1e-9) if floor else round(wanted)
            pct = min(max(pct, cfg.min_pct), cfg.max_pct)
            if pct == inv.st.commanded_pct:
                continue
            need -= abs(cfg.watts(pct) - inv.to_w)
            self.cmds.append(inv.command(pct, self.now))
        return need

    # ----------------------------------------------------------------- regulation

    def regulate(self, verdict: BatteryVerdict) -> None:
        s, now = self.settings, self.now
        avail = [inv for inv in self.invs if inv.available]
        if not avail:
            return
        if not verdict.allowed:
            for inv in avail:
                if inv.st.commanded_pct != inv.cfg.min_pct:
                    self.cmds.append(inv.command(inv.cfg.min_pct, now))
            return
        lo_total, hi_total = self.bounds(avail, verdict)
        settled = [inv for inv in avail if now >= inv.settle_end()]
        limits = sum(inv.to_w for inv in avail)
        if limits > hi_total + 1.0:  # a cap or the DCL came down: now, reading or not
            self.allocate(hi_total - limits, [settled, avail], up=False, floor=True)
            return
        if verdict.full:
            if hi_total - limits >= min(inv.cfg.step_w for inv in avail):
                self.allocate(hi_total - limits, [settled], up=True, floor=True)
            return
        commanded = sum(inv.interval(math.inf)[2] for inv in avail)  # what they will deliver
        grid = self.inputs.grid
        assert grid is not None  # checked by unsafe_inputs
        if self.grid_used_at is not None and grid.measured_at <= self.grid_used_at:
            return  # no new reading: hold
        self.grid_used_at = grid.measured_at
        up_since, self.up_since = self.up_since, None  # kept only while import lasts
        t = grid.measured_at - s.meter_latency_s
        spans = [inv.interval(t) for inv in avail]
        g = grid.total_w
        d_lo = g + sum(lo for lo, _, _ in spans)
        d_hi = g + sum(hi for _, hi, _ in spans)
        want = min(max(d_lo - s.target_w, lo_total), hi_total)
        if commanded > d_hi - s.target_w + s.down_band_w:
            cands = [inv for inv in settled if inv.saturated_w(inv.settle_end()) is None]
            self.allocate(want - commanded, [cands, avail], up=False)
        elif commanded < d_lo - s.target_w - s.up_band_w and want > commanded:
            self.up_since = grid.measured_at if up_since is None else up_since
            if grid.measured_at - self.up_since < s.up_delay_s:
                wait = s.up_delay_s - (grid.measured_at - self.up_since)
                text = f"import must last {wait:.0f} s more"
                self.reasons.append(Reason(ReasonCode.DEAD_TIME, text, wait))
                return
            if s.max_increase_w is not None:
                want = min(want, commanded + s.max_increase_w)
            lasted = grid.measured_at - self.up_since
            fastest = min(inv.dead_s for inv in avail)
            cands = [
                inv
                for inv in settled
                if inv.saturated_w(inv.settle_end()) is None
                and lasted >= s.up_delay_s * inv.dead_s / fastest
            ]
            if cands:
                self.allocate(want - commanded, [cands], up=True, floor=want >= hi_total)
            else:
                self.reasons.append(self.waiting(avail))
        elif d_lo != d_hi:
            self.reasons.append(self.waiting(avail))
        else:
            low, high = fmt_w(s.target_w - s.down_band_w), fmt_w(s.target_w + s.up_band_w)
            self.reasons.append(Reason(ReasonCode.IN_BAND, f"grid {fmt_w(g)} in {low}..{high}", g))

    def waiting(self, avail: list[InverterView]) -> Reason:
        ends = [inv.settle_end() for inv in avail if inv.settle_end() > self.now]
        finite = [e for e in ends if math.isfinite(e)]
        if len(finite) < len(ends) or not finite:
            return Reason(ReasonCode.DEAD_TIME, "waiting for the DTU to confirm a limit")
        return dead_time(max(finite) - self.now)


def decide(
    inputs: MicroInputs, state: MicroState, settings: MicroSettings, now: float
) -> Decision[MicroState]:
    """One decision (see the module docstring); commands only where a limit changes."""
    d = _Decider(inputs, state, settings, now)
    dc = [s.dc_power_w for s in inputs.inverters if s.dc_power_w is not None]
    micro_dc = sum(dc) if dc else None
    verdict = battery_gate(inputs.battery, micro_dc, settings.battery, state.battery, now)
    why = d.unsafe_inputs()
    if not verdict.usable:
        why.extend(verdict.reasons)
    if why:
        return d.go_safe(why, verdict if verdict.usable else None)
    d.reasons.extend(verdict.reasons)
    d.housekeeping()
    d.regulate(verdict)
    return d.result(verdict, safe=False)
