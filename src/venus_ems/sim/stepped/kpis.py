"""Control-quality KPIs, computed from the true site state after every step.

* exported / imported Wh: the true grid total (net over phases), + = import; per phase too
  (``export_phase_wh``: what each phase's own meter would count);
* curtailed PV Wh: AC PV the inverter could have made but did not (limits), DC PV the MPPTs
  left on the array (the battery full, DVCC);
* avoidable import Wh: import above the aim that the battery and the Multi could have covered
  at that instant (DCL, SoC floor, inverter rating, DC PV all allowed for);
* mean |grid - aim| and seconds outside ±``band_w``: over the seconds where the aim was
  reachable (the same limits, both directions), so a full or empty battery does not count;
* limits Wh: energy the Multi discharged below the ESS SoC floor (beyond its ±150 W
  low-power inaccuracy), plus what it charged beyond
  the share DVCC leaves it after the solar chargers (the simulator lets the Multi charge first);
* settle time: after each disturbance (the load net of PV moves by ``step_w`` or more within
  one second), the seconds until |grid - aim| stays within ``settle_band_w`` for ``hold_s``; a new
  disturbance before that restarts the clock, an unreachable aim drops the event.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..physics import Site
from .controllers import FloorLatch, conversion_window, inverter_output_w

__all__ = ["GridKpis", "LimiterKpis"]

_H = 3600.0
_MULTI_NOISE_W = 150.0  # the simulated Multi's low-power error near a 0 W target: not a choice


@dataclass
class GridKpis:
    """Observer for ESS grid control."""

    aim_w: float
    band_w: float = 50.0
    settle_band_w: float = 100.0
    step_w: float = 300.0
    hold_s: float = 3.0
    max_settle_s: float = 120.0
    seconds: float = 0.0
    export_wh: float = 0.0
    import_wh: float = 0.0
    avoidable_import_wh: float = 0.0
    reachable_s: float = 0.0
    abs_error_ws: float = 0.0
    outside_band_s: float = 0.0
    below_floor_wh: float = 0.0
    beyond_dvcc_wh: float = 0.0
    settle_times: list[float] = field(default_factory=list)
    floor: FloorLatch = field(default_factory=FloorLatch)
    export_phase_wh: list[float] = field(default_factory=list)
    import_phase_wh: list[float] = field(default_factory=list)
    curtailed_ac_wh: float = 0.0
    curtailed_dc_wh: float = 0.0
    _prev_net: float | None = None
    _event_at: float | None = None
    _inside_since: float | None = None

    def observe(self, site: Site, dt: float) -> None:
        g = sum(site.grid_w)
        conv = sum(site.multi.conv_w)
        t = site.time
        self.seconds += dt
        self._phases_and_pv(site, dt)
        if g < 0:
            self.export_wh -= g * dt / _H
        else:
            self.import_wh += g * dt / _H
        lo, hi = conversion_window(site, self.floor.update(site))
        self._limits(site, dt)
        e = g - self.aim_w
        if e > 0:
            self.avoidable_import_wh += min(e, max(0.0, conv - lo)) * dt / _H
        reachable = (e > 0 and e <= conv - lo) or (e <= 0 and -e <= hi - conv)
        if reachable:
            self.reachable_s += dt
            self.abs_error_ws += abs(e) * dt
            if abs(e) > self.band_w:
                self.outside_band_s += dt
        self._settle(t, g - conv, e, reachable)

    def _phases_and_pv(self, site: Site, dt: float) -> None:
        """Per-phase export/import, and PV that was there but not produced (AC limit, MPPT)."""
        if not self.export_phase_wh:
            self.export_phase_wh = [0.0] * site.phases
            self.import_phase_wh = [0.0] * site.phases
        for i, w in enumerate(site.grid_w):
            if w < 0:
                self.export_phase_wh[i] -= w * dt / _H
            else:
                self.import_phase_wh[i] += w * dt / _H
        inv = site.pv_inverter
        if inv is not None:
            could = min(inv.available_w, inv.params.rated_power_w)
            self.curtailed_ac_wh += max(could - inv.power_w, 0.0) * dt / _H
        sc = site.solar
        if sc is not None:
            self.curtailed_dc_wh += max(sc.available_w - sc.pv_power_w, 0.0) * dt / _H

    @property
    def curtailed_wh(self) -> float:
        """PV energy Wh not produced (AC inverter limits and MPPT curtailment)."""
        return self.curtailed_ac_wh + self.curtailed_dc_wh

    def _limits(self, site: Site, dt: float) -> None:
        """Energy the Multi moved against the ESS rules: below the floor, beyond DVCC's share."""
        bat = site.battery
        eta = site.params.multi.efficiency
        multi_dc = sum(c * eta if c >= 0 else c / eta for c in site.multi.conv_w)
        if bat.soc < site.ess.active_soc_limit() and multi_dc < 0 and bat.power_w < 0:
            beyond_noise = min(-multi_dc, -bat.power_w) - _MULTI_NOISE_W
            if beyond_noise > 0:
                self.below_floor_wh += beyond_noise * dt / _H
        pv = site.solar.potential_out_w(bat.voltage_v) if site.solar is not None else 0.0
        micro = sum(m.dc_power_w for m in site.micros.values())
        share = max(0.0, bat.charge_limit_w() + micro - pv)
        if multi_dc > share + 1.0:
            self.beyond_dvcc_wh += (multi_dc - share) * dt / _H

    def _settle(self, t: float, net: float, e: float, reachable: bool) -> None:
        prev, self._prev_net = self._prev_net, net
        if prev is not None and abs(net - prev) >= self.step_w:
            self._event_at, self._inside_since = t, None
            return
        at = self._event_at
        if at is None:
            return
        if not reachable:
            self._event_at = None
            return
        if abs(e) <= self.settle_band_w:
            if self._inside_since is None:
                self._inside_since = t
            if t - self._inside_since >= self.hold_s:
                self.settle_times.append(max(0.0, self._inside_since - at))
                self._event_at = None
        else:
            self._inside_since = None
            if t - at >= self.max_settle_s:
                self.settle_times.append(self.max_settle_s)
                self._event_at = None

    @property
    def mean_abs_error_w(self) -> float:
        return self.abs_error_ws / self.reachable_s if self.reachable_s else 0.0

    def settle_stats(self) -> tuple[float, float, int]:
        """(mean, 90th percentile, events) of the settle times in s."""
        xs = sorted(self.settle_times)
        if not xs:
            return 0.0, 0.0, 0
        p90 = xs[min(len(xs) - 1, int(0.9 * len(xs)))]
        return sum(xs) / len(xs), p90, len(xs)


@dataclass
class LimiterKpis:
    """Observer for the output limiter: how far and how long the inverter output exceeds."""

    limit_w: float
    step_w: float
    seconds_above_limit: float = 0.0
    energy_above_wh: float = 0.0
    longest_over_step_s: float = 0.0
    max_output_w: float = 0.0
    _over_since: float | None = None

    def observe(self, site: Site, dt: float) -> None:
        out = sum(inverter_output_w(site))
        t = site.time
        self.max_output_w = max(self.max_output_w, out)
        if out > self.limit_w:
            self.seconds_above_limit += dt
            self.energy_above_wh += (out - self.limit_w) * dt / _H
        if out > self.limit_w + self.step_w:
            if self._over_since is None:
                self._over_since = t - dt
            self.longest_over_step_s = max(self.longest_over_step_s, t - self._over_since)
        else:
            self._over_since = None
