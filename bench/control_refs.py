"""The control benchmark's references: stock Victron ESS, seed B's loop, a look-ahead bound.

All act on the same simulated site (``venus_ems.sim.stepped``): same Multi (lag, low-power
error), same battery, same dead time between a write and its effect.

* :class:`StockEss` — what a user has without venus-ems: ESS mode 1 with the external meter,
  hub4control's own loop (the simulator's stand-in) at ``AcPowerSetPoint``; feed-in allowed
  (``OvervoltageFeedIn`` 1, no cap) or limited to 0 W (``MaxFeedInPower`` 0,
  ``PreventFeedback`` 1: the PV inverter limiter acts on AC PV, the MPPTs hold DC PV back).
* :class:`SeedB` — seed B's loop (reference seeds-small.md B.6/B.7) on the Multi's mode-3
  setpoints: every 4 s, a 3:1 moving average on rising load (export and drops taken at once),
  10 W accuracy band, and feed-forward of its own change (the estimate assumes it took effect).
* :class:`LookAheadBound` — knows the scenario's load and PV over the dead time and the
  Multi's state, every second: per-phase setpoints for the grid at the aim when they take
  effect, the Multi's present low-power error subtracted as far as it persists, and the AC
  PV limited to what nothing can absorb. Why it is a bound: docs/benchmarks.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from venus_ems.control import SetPhaseSetpoints
from venus_ems.sim.physics import AC_IN, Site
from venus_ems.sim.scenarios import ScenarioSeries
from venus_ems.sim.stepped import Delayed
from venus_ems.sim.stepped.controllers import (
    HUB4_MODE,
    FloorLatch,
    _Sender,
    conversion_window,
)

DAY = 86400


class StockEss:
    """Victron ESS mode 1 on its own: no writes, only the settings a user would make."""

    every_step = False

    def __init__(self, name: str, setpoint_w: float, limited: bool) -> None:
        self.name = name
        self.setpoint_w = setpoint_w
        self.limited = limited
        self.sender = _Sender(0.0, mode3=False)

    def setup(self, site: Site) -> None:
        site.set_ess_setting(HUB4_MODE, 1)
        site.set_ess_setting("ac_power_setpoint_w", self.setpoint_w)
        site.set_ess_setting("max_feed_in_power_w", 0.0 if self.limited else -1.0)
        site.set_ess_setting("prevent_feedback", 1 if self.limited else 0)
        site.set_ess_setting("overvoltage_feed_in", 0 if self.limited else 1)

    def __call__(self, site: Site, t: float) -> list[Delayed]:
        return []


@dataclass
class _SeedBState:
    power_w: float = 0.0
    command_w: float | None = None
    at: float = -1e18


class SeedB:
    """Seed B's 4 s loop (filter, accuracy band, feed-forward) on the mode-3 setpoints."""

    every_step = False
    period_s = 4.0
    accuracy_w = 10.0
    drop_w = 150.0
    consume_factor = 3

    def __init__(self, name: str, aim_w: float, dead_time_s: float) -> None:
        self.name = name
        self.aim_w = aim_w
        self.sender = _Sender(dead_time_s, mode3=True)
        self.s = _SeedBState()

    def setup(self, site: Site) -> None:
        site.set_ess_setting(HUB4_MODE, 3)

    def __call__(self, site: Site, t: float) -> list[Delayed]:
        s = self.s
        if t - s.at < self.period_s - 1e-9:
            return self.sender.send((), t)
        s.at = t
        reading = site.meter.reading()
        if reading is None:
            return self.sender.send((), t)
        m = sum(reading)
        if m < -self.accuracy_w or s.power_w - m > self.drop_w:
            s.power_w = m
        else:
            f = self.consume_factor
            s.power_w = float(int((s.power_w * f + m) / (f + 1)))
        residual = s.power_w - self.aim_w
        if abs(residual) <= self.accuracy_w:
            return self.sender.send((), t)
        base = s.command_w if s.command_w is not None else sum(site.acin_w)
        s.command_w = base - residual
        s.power_w -= residual  # feed-forward: the estimate assumes the change took effect
        n = site.phases
        cmd = SetPhaseSetpoints.of(tuple(round(s.command_w / n, 1) for _ in range(n)))
        return self.sender.send((cmd,), t)


class LookAheadBound:
    """Perfect knowledge over the dead time, every second; same Multi, limits and delays."""

    every_step = True

    def __init__(self, name: str, aim_w: float, dead_time_s: float, series: ScenarioSeries) -> None:
        self.name = name
        self.aim_w = aim_w
        self.dead_time_s = dead_time_s
        self.series = series
        self.sender = _Sender(dead_time_s, mode3=True)
        self.floor = FloorLatch()
        self._sent: tuple[float, ...] | None = None
        self._pv_limit: float | None = None
        self._pv_at = -1e18
        self.pv_writes = 0

    def setup(self, site: Site) -> None:
        site.set_ess_setting(HUB4_MODE, 3)

    def _future(self, site: Site) -> tuple[list[float], list[float], float, float]:
        """AC-in side net (loads - producers) and AC-out net per phase, AC PV W, W to take."""
        n = site.phases
        i = int(site.time + self.dead_time_s) % DAY
        s = self.series
        house = [a[i] for a in s.load_w]
        load_in, load_out = list(site.load_in_w), list(site.load_out_w)
        target = load_in if site.params.house_load_position == AC_IN else load_out
        for p in range(n):
            target[p] += house[p] - site.house_served_w[p]
        pv_in, pv_out = [0.0] * n, [0.0] * n
        inv = site.pv_inverter
        pv_ac = 0.0
        if inv is not None:
            pv_ac = min(s.pv_ac_w[i], inv.params.rated_power_w)
            side = pv_in if inv.params.position == AC_IN else pv_out
            for p in range(n):
                if inv.params.phase in (0, p + 1):
                    side[p] += pv_ac / (n if inv.params.phase == 0 else 1)
        acin_side = [load_in[p] - pv_in[p] - site.micro_in_w[p] for p in range(n)]
        acout = [load_out[p] - pv_out[p] - site.micro_out_w[p] for p in range(n)]
        return acin_side, acout, pv_ac, s.pv_dc_w[i]

    def __call__(self, site: Site, t: float) -> list[Delayed]:
        n = site.phases
        m = site.multi
        idle = m.idle_w()
        acin_side, acout, pv_ac, pv_dc = self._future(site)
        lo, hi = conversion_window(site, self.floor.update(site))
        if site.solar is not None:  # DVCC: the MPPTs' share of CCL as it will be
            eta = site.params.multi.efficiency
            now_pot = site.solar.potential_out_w(site.battery.voltage_v)
            avail = site.solar.available_w
            site.solar.available_w = pv_dc
            then_pot = site.solar.potential_out_w(site.battery.voltage_v)
            site.solar.available_w = avail
            hi = max(hi + (now_pot - then_pot) / eta, 0.0)
        conv = self.aim_w - sum(acin_side) - sum(acout) - n * idle
        excess = max(conv - hi, 0.0)
        conv = min(max(conv, lo), hi)
        # the Multi's present error, as far as it will persist when the command takes effect
        p = site.params.multi
        keep = math.exp(-(self.dead_time_s + 1.0) / p.low_power_correlation_s)
        err = [(m.conv_w[k] - m._lag_w[k]) * keep for k in range(n)]
        setpoints = tuple(round(acout[k] + idle + conv / n - err[k], 1) for k in range(n))
        out: list[Delayed] = []
        if (
            self._sent is None
            or max(abs(a - b) for a, b in zip(setpoints, self._sent, strict=True)) >= 1.0
        ):
            self._sent = setpoints
            out = self.sender.send((SetPhaseSetpoints.of(setpoints),), t)
        else:
            out = self.sender.send((), t)
        inv = site.pv_inverter
        if inv is not None:
            limit = max(pv_ac - excess, 0.0) if excess > 1.0 else None
            if limit != self._pv_limit or (limit is not None and t - self._pv_at >= 20.0):
                self._pv_limit, self._pv_at = limit, t
                self.pv_writes += 1
                out.append(Delayed(self.dead_time_s, lambda s, v=limit: s.set_pv_inverter_limit(v)))
        return out
