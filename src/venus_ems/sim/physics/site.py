"""The site: composes the components and advances them together by ``step(dt)``."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from .battery import Battery
from .ess import EssInputs, EssLoop
from .ev import EvCharger
from .loads import Heater, Relay
from .meter import GridMeter
from .micro import MicroInverter
from .multi import MODE_INVERTER_ONLY, Multi
from .params import AC_IN, SiteParams
from .pv import PvInverter, SolarCharger
from .snapshot import snapshot
from .state import SiteState
from .tank import Tank
from .writes import SiteWrites

__all__ = ["Flows", "Site"]

_J_PER_KWH = 3.6e6


@dataclass(frozen=True)
class Flows:
    """Power flows of the last step, W: sources - sinks = ``residual_w`` (0 within float error)."""

    grid_w: float
    pv_dc_w: float
    pv_ac_w: float
    loads_w: float
    losses_w: float
    storage_w: float

    @property
    def residual_w(self) -> float:
        """Energy-balance error W of the step."""
        return (
            self.grid_w
            + self.pv_dc_w
            + self.pv_ac_w
            - self.loads_w
            - self.losses_w
            - self.storage_w
        )


class Site(SiteWrites):
    """A simulated site; pure and deterministic for a given ``params.seed`` and input sequence."""

    def __init__(self, params: SiteParams) -> None:
        """Build every component; time starts at 0 s."""
        self.params = params
        seed = params.seed
        n = params.multi.phases
        self.phases = n
        self.time = 0.0
        self.battery = Battery(params.battery)
        rng_multi = random.Random(f"{seed}:multi")  # noqa: S311 - simulation noise
        self.multi = Multi(params.multi, rng_multi)
        self.ess = EssLoop(n, params.multi.inverter_power_w, params.multi.charger_power_w)
        self.ess.efficiency = params.multi.efficiency
        self.ess.mode3_timeout_s = params.multi.mode3_timeout_s
        self.ess.override_timeout_s = params.multi.hub4_override_timeout_s
        self.ess.recharge_power_w = params.multi.recharge_power_w
        self.ess.recharge_hysteresis = params.multi.recharge_hysteresis_pct
        rng_meter = random.Random(f"{seed}:meter")  # noqa: S311 - simulation noise
        self.meter = GridMeter(params.meter, n, rng_meter)
        self.solar = SolarCharger(params.solar_charger) if params.solar_charger else None
        self.pv_inverter = PvInverter(params.pv_inverter) if params.pv_inverter else None
        micro_rng = random.Random(f"{seed}:micro")  # noqa: S311 - simulation noise
        self.micros = {m.serial: MicroInverter(m, micro_rng) for m in params.micro_inverters}
        self.ev = EvCharger(params.ev_charger) if params.ev_charger else None
        self.heater = Heater(params.heater) if params.heater else None
        self.tank = Tank(params.tank) if params.tank else None  # the Modbus heater's tank
        self.relays = {r.name: Relay(r) for r in params.relays}
        self.house_load_w = [0.0] * n
        self.house_served_w = [0.0] * n
        self.load_in_w = [0.0] * n
        self.load_out_w = [0.0] * n
        self.pv_in_w = [0.0] * n
        self.pv_out_w = [0.0] * n
        self.micro_in_w = [0.0] * n
        self.micro_out_w = [0.0] * n
        self.acin_w = [0.0] * n
        self.acout_w = [0.0] * n
        self.grid_w = [0.0] * n
        self.flows = Flows(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        self.consumption_kwh = 0.0
        self.losses_kwh = 0.0
        self.unserved_kwh = 0.0
        self.dc_system_w: float | None = None
        self._first = True

    # --- inputs -------------------------------------------------------------------------
    def set_inputs(
        self, house_load_w: Sequence[float], pv_dc_w: float = 0.0, pv_ac_w: float = 0.0
    ) -> None:
        """Exogenous inputs until changed: house load W per phase, DC and AC PV available W."""
        if len(house_load_w) != self.phases:
            raise ValueError(f"house_load_w needs {self.phases} values, got {len(house_load_w)}")
        for w in (*house_load_w, pv_dc_w, pv_ac_w):
            if not w >= 0:  # also rejects NaN
                raise ValueError(f"inputs must be finite and >= 0 W, got {w!r}")
        self.house_load_w = [float(w) for w in house_load_w]
        if self.solar is not None:
            self.solar.available_w = float(pv_dc_w)
        if self.pv_inverter is not None:
            self.pv_inverter.available_w = float(pv_ac_w)

    # --- helpers ------------------------------------------------------------------------
    def _place(self, watts: float, phase: int, position: str, three_phase: bool = False) -> None:
        target = self.load_in_w if position == AC_IN else self.load_out_w
        if three_phase:
            share = watts / self.phases
            for i in range(self.phases):
                target[i] += share
        else:
            target[phase - 1] += watts

    def _powered(self, position: str, live_out: bool) -> bool:
        return live_out or position == AC_IN

    # --- the step -----------------------------------------------------------------------
    def step(self, dt: float) -> Flows:
        """Advance simulated time by ``dt`` s (0 < dt <= 1); returns this step's power flows."""
        if not 0.0 < dt <= 1.0:
            raise ValueError(f"dt must be in (0, 1] s, got {dt!r}")
        n = self.phases
        now = self.time
        m = self.multi
        bat = self.battery
        island = m.mode == MODE_INVERTER_ONLY
        m.starved = False
        live_out = m.output_live and not (island and bat.soc <= 0.05)
        zero = [0.0] * n
        self.load_in_w, self.load_out_w = list(zero), list(zero)
        self.pv_in_w, self.pv_out_w = list(zero), list(zero)
        self.micro_in_w, self.micro_out_w = list(zero), list(zero)

        house_pos = self.params.house_load_position
        house_on = self._powered(house_pos, live_out)
        self.house_served_w = list(self.house_load_w) if house_on else list(zero)
        for i, w in enumerate(self.house_served_w):
            self._place(w, i + 1, house_pos)
        loads_dev = 0.0
        if self.ev is not None:
            ep = self.ev.params
            loads_dev += self.ev.step(now, dt, self._powered(ep.position, live_out))
            for i, w in enumerate(self.ev.site_phase_w(n)):
                self._place(w, i + 1, ep.position)
        if self.heater is not None:
            hp = self.heater.params
            w = self.heater.step(dt, self._powered(hp.position, live_out))
            self._place(w, hp.phase, hp.position)
            loads_dev += w
        if self.tank is not None:
            tp = self.tank.params
            w = self.tank.step(now, dt, self._powered(tp.position, live_out))
            self._place(w, tp.phase, tp.position)
            loads_dev += w
        for relay in self.relays.values():
            rp = relay.params
            w = relay.step(dt, self._powered(rp.position, live_out))
            self._place(w, rp.phase, rp.position)
            loads_dev += w

        pv_ac = 0.0
        inv = self.pv_inverter
        if inv is not None:
            inv.expire(now)
            inv.hub4_limit_w = self.ess.pv_limit_w
            pv_ac = inv.step(now, dt)
            if not self._powered(inv.params.position, live_out):
                inv.scale_output(0.0, dt)
                pv_ac = 0.0
        micro_dc = 0.0
        dc_ok = bat.energy_j > 0.0
        for mi in self.micros.values():
            mp = mi.params
            mi.step(now, dt, dc_ok and self._powered(mp.position, live_out))
            micro_dc += mi.dc_power_w

        self._fill_producers()
        acout_net = [self.load_out_w[i] - self.pv_out_w[i] - self.micro_out_w[i] for i in range(n)]

        # Victron's timeouts run on their own clocks. In mode 3 the Multi regulates its own AC-in
        # continuously (no meter involved), so a setpoint expires even when no sample arrives.
        self.ess.expire(now)
        if self._first or self.meter.updated or self.ess.settings.hub4_mode == 3:
            self._control(now, acout_net, micro_dc)
            self._first = False
        if island:
            m.island(acout_net if live_out else zero)
        else:
            m.advance(dt)

        # DC bus: the MPPT is the slack; the Multi obeys CCL/DCL; energy limits are hard.
        idle_dc = m.idle_w() * n if island else 0.0
        solar = self.solar
        mppt_pot = solar.potential_out_w(bat.voltage_v) if solar is not None else 0.0
        multi_dc = m.dc_total() - idle_dc
        # DVCC lets the MPPTs charge CCL plus the measured DC system (systemcalc's
        # /Dc/System/Power, the sum of the dcsystem services); a bare site counts the inverters
        credit = micro_dc if self.dc_system_w is None else max(self.dc_system_w, 0.0)
        room = min(self._charge_limit_w(), bat.hard_charge_w(dt)) + credit
        # DVCC gives the solar chargers priority: the Multi charges only with what they leave.
        multi_room = room if island else max(room - mppt_pot, 0.0)
        if multi_dc > multi_room:
            if island:
                self._island_curtail(multi_dc - room, dt)
                m.island(self._acout_net())
            else:
                m.clamp_dc(multi_room + idle_dc)
            multi_dc = m.dc_total() - idle_dc
        mppt_out = max(min(mppt_pot, room - multi_dc), 0.0)
        batt = mppt_out + multi_dc - micro_dc
        soft = bat.discharge_limit_w()
        if not island and multi_dc < 0 and batt < -soft:
            multi_dc = min(multi_dc + (-soft - batt), 0.0)
            m.clamp_dc(multi_dc)
            multi_dc = m.dc_total()
            batt = mppt_out + multi_dc - micro_dc
        hard = bat.hard_discharge_w(dt)
        if batt < -hard and not island and multi_dc < 0:
            m.clamp_dc(min(multi_dc + (-hard - batt), 0.0))
            multi_dc = m.dc_total()
            batt = mppt_out + multi_dc - micro_dc
        factor = 1.0
        if batt < -hard and micro_dc > 0:
            factor = max(1.0 - (-hard - batt) / micro_dc, 0.0)
            micro_dc *= factor
            batt = mppt_out + multi_dc - micro_dc
        losses = 0.0
        for mi in self.micros.values():
            losses += mi.settle(factor, dt)
        if factor < 1.0:
            self._fill_producers()
            if island:
                m.island(self._acout_net())
                multi_dc = m.dc_total() - idle_dc
                batt = mppt_out + multi_dc - micro_dc
        if island and batt < -hard:
            self._island_shed(-hard - batt, dt)
            m.island(self._acout_net())
            multi_dc = m.dc_total() - idle_dc
            batt = mppt_out + multi_dc - micro_dc
        if island and batt < -hard - 1e-9 and idle_dc > 0:
            m.starved = True  # low-battery shutdown: not even the no-load loss can be paid
            idle_dc = 0.0
            multi_dc = m.dc_total()
            batt = mppt_out + multi_dc - micro_dc

        pv_dc = 0.0
        if solar is not None:
            losses += solar.settle(mppt_pot, mppt_out, dt)
            pv_dc = solar.pv_power_w
        storage = batt - bat.apply(batt, dt)
        losses += bat.loss_w + m.settle(dt)

        idle = m.idle_w() if m.grid_connected else 0.0
        for i in range(n):
            self.acout_w[i] = self.load_out_w[i] - self.pv_out_w[i] - self.micro_out_w[i]
            self.acin_w[i] = self.acout_w[i] + m.conv_w[i] + idle if m.grid_connected else 0.0
            self.grid_w[i] = (
                self.acin_w[i] + self.load_in_w[i] - self.pv_in_w[i] - self.micro_in_w[i]
            )
        self.time = now + dt
        self.meter.step(self.time, dt, list(self.grid_w))
        loads = sum(self.load_in_w) + sum(self.load_out_w)
        pv_ac = inv.power_w if inv is not None else 0.0
        self.consumption_kwh += loads * dt / _J_PER_KWH
        self.losses_kwh += losses * dt / _J_PER_KWH
        self.flows = Flows(sum(self.grid_w), pv_dc, pv_ac, loads, losses, storage)
        return self.flows

    def state(self) -> SiteState:
        """A detached snapshot of every published quantity."""
        return snapshot(self)

    def _acout_net(self) -> list[float]:
        return [
            self.load_out_w[i] - self.pv_out_w[i] - self.micro_out_w[i] for i in range(self.phases)
        ]

    def _fill_producers(self) -> None:
        n = self.phases
        self.pv_in_w, self.pv_out_w = [0.0] * n, [0.0] * n
        self.micro_in_w, self.micro_out_w = [0.0] * n, [0.0] * n
        inv = self.pv_inverter
        if inv is not None:
            ip = inv.params
            target = self.pv_in_w if ip.position == AC_IN else self.pv_out_w
            if ip.phase == 0:
                for i in range(n):
                    target[i] += inv.power_w / n
            else:
                target[ip.phase - 1] += inv.power_w
        for mi in self.micros.values():
            mp = mi.params
            target = self.micro_in_w if mp.position == AC_IN else self.micro_out_w
            target[mp.phase - 1] += mi.power_w

    def _island_curtail(self, excess_dc: float, dt: float) -> None:
        """Islanded and the battery is full: AC-out producers shift down (frequency shift)."""
        excess_ac = excess_dc / self.params.multi.efficiency
        inv = self.pv_inverter
        if inv is not None and inv.params.position != AC_IN and inv.power_w > 0:
            cut = min(excess_ac, inv.power_w)
            inv.scale_output(1.0 - cut / inv.power_w, dt)
            excess_ac -= cut
        for mi in self.micros.values():
            if excess_ac <= 0:
                break
            if mi.params.position != AC_IN and mi.power_w > 0:
                cut = min(excess_ac, mi.power_w)
                mi.power_w -= cut
                mi.dc_power_w = mi.power_w / mi.params.efficiency
                excess_ac -= cut
        self._fill_producers()

    def _island_shed(self, shortfall_dc: float, dt: float) -> None:
        """Islanded and the battery is empty: AC-out load goes unserved, the house's first."""
        shortfall_ac = shortfall_dc * self.params.multi.efficiency
        for i in range(self.phases):
            if self.params.house_load_position == AC_IN or shortfall_ac <= 0:
                break
            cut = min(shortfall_ac, self.house_served_w[i])
            self.house_served_w[i] -= cut
            self.load_out_w[i] -= cut
            shortfall_ac -= cut
            self.unserved_kwh += cut * dt / _J_PER_KWH
        for i in range(self.phases):  # then whatever else draws on AC-out (relays, heater, EV)
            if shortfall_ac <= 0:
                break
            house = self.house_served_w[i] if self.params.house_load_position != AC_IN else 0.0
            cut = min(shortfall_ac, max(self.load_out_w[i] - house, 0.0))
            self.load_out_w[i] -= cut
            shortfall_ac -= cut
            self.unserved_kwh += cut * dt / _J_PER_KWH

    def _charge_limit_w(self) -> float:
        """BMS CCL x V, capped by the DVCC user limit (both chargers obey it)."""
        bat = self.battery
        limit = bat.charge_limit_w()
        cap = self.ess.settings.max_charge_current_a
        return min(limit, cap * bat.voltage_v) if cap >= 0 else limit

    def _control(self, now: float, acout_net: list[float], micro_dc: float) -> None:
        bat = self.battery
        ess = self.ess
        charge_limit = self._charge_limit_w()
        inv = self.pv_inverter
        x = EssInputs(
            now=now,
            grid_w=self.meter.reading(),
            acout_net_w=acout_net,
            acin_w=list(self.acin_w),
            conv_w=list(self.multi.conv_w),
            soc=bat.soc,
            charge_limit_w=charge_limit,
            discharge_limit_w=bat.discharge_limit_w(),
            mppt_potential_w=self.solar.potential_out_w(bat.voltage_v) if self.solar else 0.0,
            micro_dc_w=micro_dc,
            ac_pv_w=inv.power_w if inv is not None else 0.0,
            ac_pv_available_w=min(inv.available_w, inv.params.rated_power_w) if inv else 0.0,
            idle_w=self.multi.idle_w(),
            vebus_mode=self.multi.mode,
        )
        self.multi.target_w = ess.control(x)
        self.multi.regulating = (
            self.multi.grid_connected and not ess.meter_missing and not all(ess.passthrough)
        )
