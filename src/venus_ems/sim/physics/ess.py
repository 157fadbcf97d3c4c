"""ESS settings, hub4 overrides, vebus Hub4 writes and the hub4control stand-in loop.

Victron's own timeouts run on simulated time at every step, whatever the meter does: a mode-3
setpoint not renewed for ``mode3_timeout_s`` (60 s) falls back to passthrough, and hub4
overrides are dropped after ``override_timeout_s`` when that is set (hub4control's timeout is
undocumented, so the default is none: a value stays until it is rewritten or hub4 restarts).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .multi import MODE_CHARGER_ONLY, to_conv

__all__ = [
    "OVERRIDE_DEFAULTS",
    "EssInputs",
    "EssLoop",
    "EssSettings",
    "Hub4Overrides",
    "VebusHub4",
]

_INF = float("inf")


@dataclass
class EssSettings:
    """``/Settings/CGwacs/*`` (+ DVCC max charge current): W, %, -1 = no limit."""

    hub4_mode: int = 1
    ac_power_setpoint_w: float = 50.0
    max_feed_in_power_w: float = -1.0
    max_discharge_power_w: float = -1.0
    max_charge_power_w: float = -1.0
    overvoltage_feed_in: int = 0
    prevent_feedback: int = 0
    minimum_soc_limit: float = 10.0
    battery_life_state: int = 10
    battery_life_soc_limit: float = 10.0
    run_without_grid_meter: int = 0
    max_charge_current_a: float = -1.0


@dataclass
class Hub4Overrides:
    """``com.victronenergy.hub4 /Overrides/*``: setpoint W (None = use the setting), -1 = none."""

    setpoint_w: float | None = None
    max_discharge_power_w: float = -1.0
    force_charge: int = 0
    feed_in_excess: int = 0


OVERRIDE_DEFAULTS: dict[str, float | int | None] = {
    "setpoint_w": None,
    "max_discharge_power_w": -1.0,
    "force_charge": 0,
    "feed_in_excess": 0,
}
"""Each hub4 override's value after hub4control (re)starts or times it out."""


@dataclass
class VebusHub4:
    """The vebus ``/Hub4/*`` writes: mode-3 setpoints W per phase with their write times (s)."""

    setpoints_w: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    written_at: list[float] = field(default_factory=lambda: [-1e18, -1e18, -1e18])
    disable_charge: int = 0
    disable_feed_in: int = 0


@dataclass
class EssInputs:
    """What the loop sees at one meter sample; W, + = import / charging."""

    now: float
    grid_w: list[float] | None
    acout_net_w: list[float]
    acin_w: list[float]
    conv_w: list[float]
    soc: float
    charge_limit_w: float
    discharge_limit_w: float
    mppt_potential_w: float
    micro_dc_w: float
    ac_pv_w: float
    ac_pv_available_w: float
    idle_w: float
    vebus_mode: int


class EssLoop:
    """Computes the Multi's per-phase conversion targets from settings, overrides and limits."""

    def __init__(self, phases: int, params_inverter_w: float, params_charger_w: float) -> None:
        """Mode 1 at the default 50 W grid setpoint."""
        self.phases = phases
        self.inverter_w = params_inverter_w
        self.charger_w = params_charger_w
        self.settings = EssSettings()
        self.overrides = Hub4Overrides()
        self.vebus = VebusHub4(setpoints_w=[0.0] * phases, written_at=[-1e18] * phases)
        self.efficiency = 1.0
        self.mode3_timeout_s = 60.0
        self.override_timeout_s: float | None = None
        self.override_written_at: dict[str, float] = {}
        self.recharge_power_w = 300.0
        self.recharge_hysteresis = 3.0
        self.recharging = False
        self.floor_active = False
        self.meter_missing = False
        self.passthrough = [False] * phases
        self.pv_limit_w: float | None = None

    # --- effective values -------------------------------------------------------------
    def active_soc_limit(self) -> float:
        """``/Control/ActiveSocLimit`` %: 100 in keep-charged, else the user/BatteryLife floor."""
        s = self.settings
        if s.battery_life_state == 9:
            return 100.0
        if 1 <= s.battery_life_state <= 8:
            return max(s.minimum_soc_limit, s.battery_life_soc_limit)
        return s.minimum_soc_limit

    def setpoint_w(self) -> float:
        """Effective grid setpoint W: the hub4 override if set, else AcPowerSetPoint."""
        o = self.overrides.setpoint_w
        return self.settings.ac_power_setpoint_w if o is None else o

    def feed_in_policy(self) -> tuple[bool, bool]:
        """(feed excess DC PV, prevent AC PV feedback) after the FeedInExcess override."""
        fie = self.overrides.feed_in_excess
        if fie == 1:
            return False, True
        if fie == 2:
            return True, False
        return self.settings.overvoltage_feed_in == 1, self.settings.prevent_feedback == 1

    def max_feed_in_w(self) -> float:
        """Grid export cap W (inf = none)."""
        m = self.settings.max_feed_in_power_w
        return m if m >= 0 else _INF

    def max_discharge_w(self) -> float:
        """Inverter DC power cap W: min of the setting and the hub4 override (inf = none)."""
        caps = [
            v
            for v in (self.settings.max_discharge_power_w, self.overrides.max_discharge_power_w)
            if v >= 0
        ]
        return min(caps) if caps else _INF

    def forced_charge(self) -> bool:
        """Charge at the maximum allowed rate (ForceCharge override or keep-charged)."""
        return self.overrides.force_charge == 1 or self.settings.battery_life_state == 9

    # --- Victron's own timeouts (every step, independent of the meter) -------------------
    def expire(self, now: float) -> None:
        """Apply the timeouts due at ``now`` s: stale mode-3 setpoints, stale hub4 overrides."""
        timeout = self.mode3_timeout_s
        mode3 = self.settings.hub4_mode == 3
        self.passthrough = [mode3 and now - at > timeout for at in self.vebus.written_at]
        limit = self.override_timeout_s
        if limit is None:
            return
        for name, at in list(self.override_written_at.items()):
            if now - at >= limit:
                setattr(self.overrides, name, OVERRIDE_DEFAULTS[name])
                del self.override_written_at[name]

    def reset_overrides(self) -> None:
        """hub4control restarted: its overrides lived in the process, back to the defaults."""
        self.overrides = Hub4Overrides()
        self.override_written_at.clear()

    # --- the loop ---------------------------------------------------------------------
    def _dc_bounds(self, x: EssInputs, ess_active: bool) -> tuple[float, float]:
        s = self.settings
        dc_hi = x.charge_limit_w - x.mppt_potential_w + x.micro_dc_w
        if ess_active and s.max_charge_power_w >= 0:
            dc_hi = min(dc_hi, s.max_charge_power_w)
        dc_hi = max(dc_hi, 0.0)
        floor = self.active_soc_limit()
        if self.floor_active:
            self.floor_active = x.soc < floor + 0.5
        else:
            self.floor_active = x.soc <= floor
        self.floor_active = self.floor_active and ess_active
        if self.floor_active:
            # Sustain: no battery discharge; DC loads are carried from the grid.
            dc_lo = -(x.mppt_potential_w - x.micro_dc_w)
        else:
            dc_lo = min(-(x.discharge_limit_w + x.mppt_potential_w - x.micro_dc_w), 0.0)
        if ess_active:
            dc_lo = max(dc_lo, -self.max_discharge_w())
        if ess_active and x.soc < floor - self.recharge_hysteresis:
            self.recharging = True
        elif x.soc >= floor or not ess_active:
            self.recharging = False
        if self.recharging:
            dc_lo = max(dc_lo, self.recharge_power_w)
        if ess_active and self.forced_charge():
            dc_lo = dc_hi
        return min(dc_lo, dc_hi), dc_hi

    def _phase_bounds(self, x: EssInputs) -> list[tuple[float, float]]:
        out = []
        for p in range(self.phases):
            lo, hi = -self.inverter_w, self.charger_w
            if x.vebus_mode == MODE_CHARGER_ONLY:
                lo = max(lo, 0.0)
            if self.vebus.disable_charge:
                hi = min(hi, 0.0)
            if self.vebus.disable_feed_in:
                lo = max(lo, -(x.acout_net_w[p] + x.idle_w))
            out.append((min(lo, hi), hi))
        return out

    def control(self, x: EssInputs) -> list[float]:
        """One loop iteration at a meter sample; returns per-phase conversion targets W."""
        n = self.phases
        mode = self.settings.hub4_mode
        eta = self.efficiency
        bounds = self._phase_bounds(x)
        ess_active = mode in (1, 2)
        dc_lo, dc_hi = self._dc_bounds(x, ess_active)
        conv_lo, conv_hi = to_conv(dc_lo, eta), to_conv(dc_hi, eta)
        self.meter_missing = x.grid_w is None and self.settings.run_without_grid_meter != 1
        if mode == 3:
            self.expire(x.now)
            targets = []
            for p in range(n):
                stale = self.passthrough[p]
                sp = 0.0 if stale else self.vebus.setpoints_w[p] - x.acout_net_w[p] - x.idle_w
                targets.append(sp)
            self.pv_limit_w = None
            return self._clamp(targets, bounds, conv_lo, conv_hi, keep_zero=self.passthrough)
        self.passthrough = [False] * n
        if x.grid_w is None:
            if self.meter_missing:
                self.pv_limit_w = None
                return self._clamp([0.0] * n, bounds, min(conv_lo, 0), max(conv_hi, 0))
            meas = list(x.acin_w)  # the Multi measures its own AC input
        else:
            meas = x.grid_w
        sp = self.setpoint_w()
        feed_dc, prevent_ac = self.feed_in_policy()
        max_feed = self.max_feed_in_w()
        excess_dc = x.mppt_potential_w - x.charge_limit_w - x.micro_dc_w
        if mode == 1:
            total = sum(x.conv_w) - (sum(meas) - sp)
            if feed_dc and excess_dc > 0:
                total = min(total, to_conv(-excess_dc, eta))
            grid_pred = sum(meas) + total - sum(x.conv_w)
            if grid_pred < -max_feed:
                total += -max_feed - grid_pred
            total = min(max(total, conv_lo), conv_hi)
            targets = self._spread(total, bounds)
        else:
            targets = []
            for p in range(n):
                t = x.conv_w[p] - (meas[p] - sp / n)
                if feed_dc and excess_dc > 0:
                    t = min(t, to_conv(-excess_dc, eta) / n)
                pred = meas[p] + t - x.conv_w[p]
                if pred < -max_feed / n:
                    t += -max_feed / n - pred
                targets.append(t)
            targets = self._clamp(targets, bounds, conv_lo, conv_hi)
        self._pv_limiter(x, meas, targets, 0.0 if prevent_ac else max_feed)
        return targets

    def _pv_limiter(
        self, x: EssInputs, meas: list[float], targets: list[float], allowed: float
    ) -> None:
        if x.ac_pv_available_w <= 0 or allowed == _INF:
            self.pv_limit_w = None
            return
        grid_pred = sum(meas) + sum(targets) - sum(x.conv_w)
        error = grid_pred + allowed  # < 0: exporting more than allowed
        if error < -1.0:
            self.pv_limit_w = max(x.ac_pv_w + error, 0.0)
        elif self.pv_limit_w is not None:
            self.pv_limit_w += error
            if self.pv_limit_w >= x.ac_pv_available_w:
                self.pv_limit_w = None

    def _spread(self, total: float, bounds: list[tuple[float, float]]) -> list[float]:
        """Split ``total`` W evenly over the phases, refilling what a clamped phase cannot take."""
        n = len(bounds)
        out = [0.0] * n
        free = list(range(n))
        remaining = total
        while free:
            share = remaining / len(free)
            clamped = []
            for p in free:
                lo, hi = bounds[p]
                v = min(max(share, lo), hi)
                if v != share:
                    clamped.append(p)
                out[p] = v
            if not clamped:
                break
            for p in clamped:
                remaining -= out[p]
                free.remove(p)
        return out

    def _clamp(
        self,
        targets: list[float],
        bounds: list[tuple[float, float]],
        lo_total: float,
        hi_total: float,
        keep_zero: list[bool] | None = None,
    ) -> list[float]:
        """Clamp per phase, then scale the offending direction so the total fits."""
        t = [min(max(v, lo), hi) for v, (lo, hi) in zip(targets, bounds, strict=True)]
        if keep_zero:
            t = [0.0 if z else v for v, z in zip(t, keep_zero, strict=True)]
        total = sum(t)
        if total > hi_total:
            pos = sum(v for v in t if v > 0)
            f = max(1.0 - (total - hi_total) / pos, 0.0) if pos > 0 else 1.0
            t = [v * f if v > 0 else v for v in t]
        elif total < lo_total:
            neg = sum(v for v in t if v < 0)
            f = max(1.0 - (total - lo_total) / neg, 0.0) if neg < 0 else 1.0
            t = [v * f if v < 0 else v for v in t]
        return t
