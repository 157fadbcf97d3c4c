"""ESS control's PV curtailment: the AC-coupled PV inverters' ``/Ac/PowerLimit`` (W).

The core (:mod:`venus_ems.control.pv_curtail`) gives one limit for all inverters; it is split
over them in proportion to their ``/Ac/MaxPower``. Each inverter has its own actuator (one
writer per limit, ledger and leftover clearing like every output); its safe value is its
MaxPower, i.e. the limit released. Inverters published by venus-ems itself (micro-inverter
control, ``pvinverter.venusems_*``) are left to their own feature.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ..control import EssInputs, EssSettings, pv_curtail
from ..control.grid_target import target_band
from ..runtime.actuator import Actuator
from ..runtime.outputs import pv_limit_actuator
from ..venus import SETTINGS_SERVICE
from ..venus.names import PVINVERTER

if TYPE_CHECKING:
    from ..runtime.feature import FeatureContext
    from ..venus.monitor import Monitor

__all__ = ["PvCurtailment", "acin_pv_w", "limitable_inverters", "victron_limiter"]

OURS = f"{PVINVERTER}.venusems_"
EFFECT_S = 3.0
"""Seconds a PV inverter needs to reach a new limit after the write (ramp), on top of the
ESS dead time."""


def limitable_inverters(monitor: Monitor) -> dict[str, float]:
    """PV inverter services with a PowerLimit and a MaxPower (W > 0), not our own: name -> W."""
    out: dict[str, float] = {}
    for st in monitor.services(PVINVERTER):
        if st.name.startswith(OURS):
            continue
        top = monitor.get_float(st.name, "/Ac/MaxPower")
        if top is None or not top > 0 or monitor.get(st.name, "/Ac/PowerLimit") is None:
            continue
        out[st.name] = top
    return out


def victron_limiter(monitor: Monitor) -> str | None:
    """Why Victron's own PV feed-in limiter may write the PV limits now, or None.

    hub4control limits AC PV in ESS mode 1/2 when ``PreventFeedback`` is 1 or
    ``MaxFeedInPower`` is set (>= 0); two writers on one limit fight, so ours holds off.
    """
    mode = monitor.get_int(SETTINGS_SERVICE, "/Settings/CGwacs/Hub4Mode")
    if mode == 3:
        return None
    prevent = monitor.get_int(SETTINGS_SERVICE, "/Settings/CGwacs/PreventFeedback")
    feed = monitor.get_float(SETTINGS_SERVICE, "/Settings/CGwacs/MaxFeedInPower")
    if prevent == 1 or (feed is not None and feed >= 0):
        return (
            "Victron's feed-in limiter owns the PV limit (PreventFeedback / MaxFeedInPower "
            "set): not curtailing"
        )
    return None


def acin_pv_w(monitor: Monitor) -> float | None:
    """AC PV on AC-in (``/Position`` 0) now, W, not our own inverters; None if none or unknown."""
    total, seen = 0.0, False
    for st in monitor.services(PVINVERTER):
        if st.name.startswith(OURS) or monitor.get_int(st.name, "/Position") != 0:
            continue
        power = monitor.get_float(st.name, "/Ac/Power")
        if power is None or not math.isfinite(power):
            return None
        total, seen = total + max(power, 0.0), True
    return total if seen else None


class PvCurtailment:
    """Decides the PV limit beside the ESS core and claims it on each inverter's actuator."""

    def __init__(self, owner: str, refresh_s: float, claim_ttl_s: float) -> None:
        """``owner``: the feature name the claims are made for."""
        self.owner = owner
        self.refresh_s = refresh_s
        self.claim_ttl_s = claim_ttl_s
        self.state = pv_curtail.CurtailState()
        self.acts: dict[str, Actuator[Any]] = {}
        self.reason = ""

    def reset(self) -> None:
        """Forget the limit in force (the actuators are released by the caller)."""
        self.state = pv_curtail.CurtailState()

    def release(self) -> None:
        """Give every limit back (safe state: the inverters at MaxPower)."""
        for act in self.acts.values():
            act.release(self.owner)
        self.state = pv_curtail.CurtailState()

    def _actuator(self, ctx: FeatureContext, service: str, max_w: float) -> Actuator[Any]:
        def make() -> Actuator[Any]:
            return pv_limit_actuator(
                ctx.monitor,
                ctx.clock,
                service,
                max_w=max_w,
                refresh_s=self.refresh_s,
                claim_ttl_s=self.claim_ttl_s,
            )

        return ctx.actuators.ensure(f"ess.pv_limit.{service.rsplit('.', 1)[-1]}", make)

    def step(
        self, ctx: FeatureContext, inputs: EssInputs, settings: EssSettings, now: float
    ) -> str | None:
        """One decision on the readings the ESS core used; returns a status line or None."""
        mon = ctx.monitor
        inverters = limitable_inverters(mon)
        if not inverters:
            return None
        theirs = victron_limiter(mon)
        if theirs is not None:  # step aside: no safe write over Victron's limit either
            for act in self.acts.values():
                act.abandon(self.owner)
            self.state = pv_curtail.CurtailState()
            return theirs
        for name, top in inverters.items():
            if name not in self.acts:
                self.acts[name] = self._actuator(ctx, name, top)
        pv = [mon.get_float(n, "/Ac/Power") for n in inverters]  # the core drops non-finite
        pv_w = None if any(p is None for p in pv) else sum(p for p in pv if p is not None)
        a, gt = settings.actuator, settings.grid_target
        aim = target_band(gt, inputs.max_feed_in_w).aim_w
        cs = pv_curtail.CurtailSettings(
            aim, max(gt.dead_band_w, 50.0), a.dead_time_s + EFFECT_S, a.stale_after_s
        )
        grid, bat, multi = inputs.grid, inputs.battery, inputs.multi
        charge = None
        if bat is not None and bat.ccl_a is not None and bat.voltage_v is not None:
            charge = 0.0 if bat.allow_charge is False else bat.ccl_a * bat.voltage_v
        conv = None
        if multi is not None and multi.ac_in_w is not None and multi.ac_out_w is not None:
            conv = sum(multi.ac_in_w) - sum(multi.ac_out_w)
        room = pv_curtail.charge_room_w(
            charge,
            None if bat is None else bat.power_w,
            conv,
            a.phases * a.charger_max_w,
            a.efficiency,
        )
        x = pv_curtail.CurtailInputs(
            None if grid is None else grid.total_w,
            None if grid is None else grid.measured_at,
            pv_w,
            sum(inverters.values()),
            room,
        )
        d = pv_curtail.decide(x, self.state, cs, now)
        self.state = d.next_state
        if d.reason:
            self.reason = d.reason
        total = sum(inverters.values())
        for name, top in inverters.items():
            act = self.acts[name]
            if d.limit_w is None:
                act.release(self.owner)
            else:
                act.claim(self.owner, round(d.limit_w * top / total, 1))
        if d.limit_w is None:
            return None
        return f"AC PV limited to {d.limit_w:.0f} W ({self.reason})"
