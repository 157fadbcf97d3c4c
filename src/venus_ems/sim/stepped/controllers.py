"""Our controllers for the stepped harness (the ESS core, the output limiter) and their plumbing.

They act through the delay line (``dead_time_s`` between a command and its effect) and see what
a GX shows: the grid meter's view (1 Hz, noise, quantisation), battery and Multi readings. The
benchmark's references (stock ESS, seed B, the look-ahead bound) are in ``bench/control_refs.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from ...control import (
    BatterySample,
    Command,
    EssInputs,
    EssMethod,
    EssSettings,
    EssState,
    GridSample,
    LimiterSettings,
    MultiSample,
    ReleaseSetpoint,
    SetGridSetpoint,
    SetMaxDischargePower,
    SetPhaseSetpoints,
    limiter_output,
    modes,
    pv_curtail,
)
from ...control.grid_target import target_band
from ..physics import AC_IN, Site
from .harness import Delayed

__all__ = [
    "HUB4_MODE",
    "CoreController",
    "FloorLatch",
    "LimiterController",
    "conversion_window",
    "inverter_output_w",
    "site_inputs",
]

HUB4_MODE = "/Settings/CGwacs/Hub4Mode"


def site_inputs(site: Site, t: float) -> EssInputs:
    """What the GX shows at ``t``: the meter view, battery/BMS and Multi readings."""
    reading = site.meter.reading()
    grid = None if reading is None else GridSample(tuple(reading), site.meter.sample_time)
    bat = site.battery
    battery = BatterySample(
        measured_at=t,
        soc_pct=min(max(bat.soc, 0.0), 100.0),
        voltage_v=bat.voltage_v,
        power_w=bat.power_w,
        ccl_a=bat.ccl_a,
        dcl_a=bat.dcl_a,
        allow_charge=bat.allow_charge,
        allow_discharge=bat.allow_discharge,
        active_soc_limit_pct=site.ess.active_soc_limit(),
    )
    multi = MultiSample(t, tuple(site.acin_w), tuple(site.acout_w))
    feed = site.ess.settings.max_feed_in_power_w
    return EssInputs(grid, battery, multi, feed if feed >= 0 else None)


@dataclass
class FloorLatch:
    """The ESS SoC floor: blocks at or below it, frees ``hysteresis_pct`` above it."""

    hysteresis_pct: float = 2.0
    blocked: bool = False

    def update(self, site: Site) -> bool:
        """True while discharging is blocked by the floor."""
        soc, floor = site.battery.soc, site.ess.active_soc_limit()
        self.blocked = soc < floor + self.hysteresis_pct if self.blocked else soc <= floor
        return self.blocked


def conversion_window(site: Site, floor_blocked: bool) -> tuple[float, float]:
    """Range of the Multi's total conversion (W, AC side, + = charging) the site allows now.

    Inverting: the inverter rating, DCL (0 while the SoC floor blocks) plus DC PV that could
    feed the inverter. Charging: the charger rating and what CCL leaves after DC PV (DVCC
    gives the solar chargers priority, the Multi charges with the rest).
    """
    p = site.params.multi
    n, eta = p.phases, p.efficiency
    bat = site.battery
    dis_dc = 0.0 if floor_blocked else bat.discharge_limit_w()
    pv_dc = site.solar.potential_out_w(bat.voltage_v) if site.solar is not None else 0.0
    micro_dc = sum(m.dc_power_w for m in site.micros.values())
    lo = -min(n * p.inverter_power_w, max(0.0, dis_dc + pv_dc - micro_dc) * eta)
    hi = min(n * p.charger_power_w, max(0.0, bat.charge_limit_w() + micro_dc - pv_dc) / eta)
    return lo, hi


def _write_command(cmd: Command, delay_s: float) -> Delayed:
    if isinstance(cmd, SetGridSetpoint):
        w = cmd.total_w
        return Delayed(delay_s, lambda s: s.set_hub4_setpoint_override(w))
    if isinstance(cmd, SetPhaseSetpoints):
        phases = cmd.phases_w
        return Delayed(delay_s, lambda s: _set_phases(s, phases))
    if isinstance(cmd, ReleaseSetpoint):  # the actuators' safe values: ESS's own, 0 W per phase
        return Delayed(delay_s, _release)
    if isinstance(cmd, SetMaxDischargePower):
        value = cmd.dbus_value
        return Delayed(delay_s, lambda s: s.set_hub4_max_discharge_override(value))
    raise TypeError(f"unexpected command {cmd!r}")


def _release(site: Site) -> None:
    site.set_hub4_setpoint_override(None)
    _set_phases(site, [0.0] * site.phases)


def _set_phases(site: Site, phases: Sequence[float]) -> None:
    for i, w in enumerate(phases, start=1):
        site.set_vebus_setpoint(i, w)


@dataclass
class _Sender:
    """Counts commands and refreshes mode-3 setpoints (the actuator's job) every ``refresh_s``."""

    dead_time_s: float
    mode3: bool
    refresh_s: float = 5.0
    commands: int = 0
    refreshes: int = 0
    history: list[tuple[float, float]] = field(default_factory=list)
    _last: Command | None = None
    _last_at: float = -1e18

    def send(self, cmds: Sequence[Command], t: float) -> list[Delayed]:
        """The writes for ``cmds`` (or a due mode-3 refresh), counted."""
        out = [_write_command(c, self.dead_time_s) for c in cmds]
        if cmds:
            self.commands += len(cmds)
            self._last, self._last_at = cmds[-1], t
            total = getattr(cmds[-1], "total_w", None)
            if isinstance(total, float):
                self.history.append((t, total))
        elif self.mode3 and self._last is not None and t - self._last_at >= self.refresh_s:
            self.refreshes += 1
            self._last_at = t
            out.append(_write_command(self._last, self.dead_time_s))
        return out


class CoreController:
    """Our ESS core (``control.modes``) as the feature runs it, on the GX's readings.

    With ``curtail`` and an AC PV inverter on the site, the PV curtailment core
    (``control.pv_curtail``) runs beside it on the same readings, its limit renewed every
    ``pv_refresh_s`` like the feature's actuator does.
    """

    every_step = False

    def __init__(
        self, name: str, settings: EssSettings, dead_time_s: float, *, curtail: bool = True
    ) -> None:
        """The core with the feature's settings; commands take effect ``dead_time_s`` later."""
        self.name = name
        self.settings = settings
        self.state = EssState()
        mode3 = settings.actuator.method is EssMethod.MODE3
        self.sender = _Sender(dead_time_s, mode3)
        self.curtail = curtail
        self.pv_state = pv_curtail.CurtailState()
        self.pv_refresh_s = 20.0
        self.pv_writes = 0
        self._pv_sent_at = -1e18
        self._pv_limit: float | None = None

    def setup(self, site: Site) -> None:
        """Put the GX in the ESS mode the method needs (the user's job on a real GX)."""
        site.set_ess_setting(HUB4_MODE, 3 if self.sender.mode3 else 1)

    def __call__(self, site: Site, t: float) -> list[Delayed]:
        """Decide on the GX's readings at ``t``."""
        inputs = site_inputs(site, t)
        inv = site.pv_inverter
        if inv is not None and inv.params.position == AC_IN and self._pv_limit is None:
            inputs = replace(inputs, acin_producers_w=inv.power_w)  # pvinverter /Ac/Power
        d = modes.decide(inputs, self.state, self.settings, t)
        self.state = d.next_state
        out = self.sender.send(d.commands, t)
        if self.curtail and site.pv_inverter is not None:
            out.extend(self._curtail(site, inputs, t))
        return out

    def _curtail(self, site: Site, inputs: EssInputs, t: float) -> list[Delayed]:
        inv = site.pv_inverter
        assert inv is not None
        grid = inputs.grid
        a = self.settings.actuator
        gt = self.settings.grid_target
        aim = target_band(gt, inputs.max_feed_in_w).aim_w
        band = max(gt.dead_band_w, 50.0)
        cs = pv_curtail.CurtailSettings(aim, band, a.dead_time_s + 3.0, a.stale_after_s)
        bat = inputs.battery
        charge = None
        if bat is not None and bat.ccl_a is not None and bat.voltage_v is not None:
            charge = bat.ccl_a * bat.voltage_v if bat.allow_charge is not False else 0.0
        conv = sum(site.acin_w) - sum(site.acout_w)
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
            inv.power_w,
            inv.params.rated_power_w,
            room,
        )
        d = pv_curtail.decide(x, self.pv_state, cs, t)
        self.pv_state = d.next_state
        due = d.limit_w is not None and t - self._pv_sent_at >= self.pv_refresh_s
        if d.limit_w == self._pv_limit and not due:
            return []
        self._pv_limit, self._pv_sent_at = d.limit_w, t
        self.pv_writes += 1
        value = d.limit_w
        return [Delayed(self.sender.dead_time_s, lambda s: s.set_pv_inverter_limit(value))]


class LimiterController:
    """The output limiter on the Multi's inverter output, applied as MaxDischargePower.

    The feature's core (``control.limiter_output``): the cap on the AC output is scaled by the
    DC/AC ratio measured when it changes.
    """

    every_step = False

    def __init__(self, name: str, settings: LimiterSettings, dead_time_s: float) -> None:
        """The limiter core with the feature's settings; writes act ``dead_time_s`` later."""
        self.name = name
        self.settings = settings
        self.cap = limiter_output.CapSettings(settings)
        self.state = limiter_output.CapState()
        self.sender = _Sender(dead_time_s, mode3=False)

    def setup(self, site: Site) -> None:
        """Nothing to set: the limiter rides on whatever ESS mode 1/2 loop runs."""

    def __call__(self, site: Site, t: float) -> list[Delayed]:
        """Decide on the Multi's inverter output at ``t``."""
        out = inverter_output_w(site)
        eta = site.params.multi.efficiency
        dc_w = sum(c / eta for c in site.multi.conv_w if c < 0)  # what vebus /Dc/0/Power shows
        inputs = limiter_output.CapInputs(MultiSample(t, None, out), dc_w)
        d = limiter_output.decide(inputs, self.state, self.cap, t)
        self.state = d.next_state
        return self.sender.send(d.commands, t)


def inverter_output_w(site: Site) -> tuple[float, ...]:
    """What the Multi inverts per phase (W, + = DC to AC): AC-out minus AC-in."""
    out = limiter_output.inverter_output_w(site.acout_w, site.acin_w)
    assert out is not None
    return out
