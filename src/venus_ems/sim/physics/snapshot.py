"""Build a :class:`SiteState` from a live :class:`Site` (on demand, not every step)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .multi import MODE_INVERTER_ONLY, MODE_OFF
from .params import AC_IN
from .state import (
    BatteryState,
    EnergyCounters,
    EssState,
    EvChargerState,
    GridState,
    HeaterState,
    MicroInverterState,
    MultiState,
    PvInverterState,
    RelayState,
    SiteState,
    SolarChargerState,
    copy_settings,
)

if TYPE_CHECKING:
    from .site import Site

__all__ = ["snapshot", "system_state", "vebus_state"]

# /SystemState/State values beyond the vebus states.
SYSTEM_EXTERNAL_CONTROL = 0xFC
SYSTEM_DISCHARGING = 0x100
SYSTEM_SUSTAIN = 0x101
SYSTEM_RECHARGE = 0x102
SYSTEM_SCHEDULED_CHARGE = 0x103


def vebus_state(site: Site) -> int:
    """The vebus ``/State``: 0 off, 3 bulk, 4 absorption, 5 float, 8 passthru, 9 inverting."""
    m = site.multi
    if m.mode == MODE_OFF:
        return 0
    if m.mode == MODE_INVERTER_ONLY:
        return 9
    conv = sum(m.conv_w)
    if conv > 30:
        soc = site.battery.soc
        return 5 if soc >= 99.0 else 4 if soc >= 90.0 else 3
    return 9 if conv < -30 else 8


def system_state(site: Site) -> int:
    """The systemcalc ``/SystemState/State`` (ESS states 0x100.. and 0xFC external control)."""
    ess = site.ess
    if site.multi.mode == MODE_OFF:
        return 0
    if ess.settings.hub4_mode == 3:
        return SYSTEM_EXTERNAL_CONTROL
    if ess.recharging:
        return SYSTEM_RECHARGE
    if ess.forced_charge():
        return SYSTEM_SCHEDULED_CHARGE
    if ess.floor_active:
        return SYSTEM_SUSTAIN
    if site.battery.power_w < -30:
        return SYSTEM_DISCHARGING
    return vebus_state(site)


def _micro_states(site: Site) -> tuple[MicroInverterState, ...]:
    out = []
    bat_v = site.battery.voltage_v
    for mi in site.micros.values():
        p = mi.params
        v_ac = site.meter.voltage(p.phase - 1)
        out.append(
            MicroInverterState(
                serial=p.serial,
                name=p.name or p.serial,
                phase=p.phase,
                position=p.position,
                reachable=mi.reachable,
                producing=mi.producing,
                on=mi.on,
                max_power_w=p.max_power_w,
                ac_power_w=mi.power_w,
                ac_voltage_v=v_ac,
                ac_current_a=mi.power_w / v_ac,
                ac_frequency_hz=site.meter.params.frequency_hz,
                dc_power_w=mi.dc_power_w,
                dc_voltage_v=bat_v,
                dc_current_a=mi.dc_power_w / bat_v if bat_v > 0 else 0.0,
                efficiency_pct=100.0 * p.efficiency if mi.power_w > 0 else 0.0,
                yield_day_wh=mi.yield_day_wh,
                yield_total_kwh=mi.yield_total_kwh,
                temperature_c=mi.temperature_c,
                limit_relative_pct=mi.limit_relative,
                limit_absolute_w=mi.limit_w,
                limit_set_status=mi.limit_status,
                power_set_status=mi.power_status,
                commands=mi.commands,
            )
        )
    return tuple(out)


def _split(site: Site, watts: float, phase: int, three_phase: bool) -> tuple[float, ...]:
    n = site.phases
    if three_phase:
        return tuple(watts / n for _ in range(n))
    return tuple(watts if i == phase - 1 else 0.0 for i in range(n))


def snapshot(site: Site) -> SiteState:
    """Everything the site shows now, detached from later changes."""
    n = site.phases
    bat = site.battery
    m = site.multi
    meter = site.meter
    volts = tuple(meter.voltage(i) for i in range(n))
    grid = GridState(
        true_w=tuple(site.grid_w),
        meter_w=tuple(meter.reading_w) if meter.connected else None,
        meter_connected=meter.connected,
        meter_sample_time_s=meter.sample_time,
        voltage_v=volts,
        current_a=tuple(w / v for w, v in zip(site.grid_w, volts, strict=True)),
        frequency_hz=meter.params.frequency_hz,
        forward_kwh=tuple(meter.forward_kwh),
        reverse_kwh=tuple(meter.reverse_kwh),
    )
    dc_w = sum(m.dc_w) - (m.idle_w() * n if m.mode == MODE_INVERTER_ONLY else 0.0)
    multi = MultiState(
        mode=m.mode,
        state=vebus_state(site),
        grid_connected=m.grid_connected,
        acin_w=tuple(site.acin_w),
        acout_w=tuple(site.acout_w),
        acin_current_a=tuple(w / v for w, v in zip(site.acin_w, volts, strict=True)),
        acout_current_a=tuple(w / v for w, v in zip(site.acout_w, volts, strict=True)),
        voltage_v=volts,
        frequency_hz=meter.params.frequency_hz,
        dc_power_w=dc_w,
        dc_current_a=dc_w / bat.voltage_v,
        dc_voltage_v=bat.voltage_v,
        conversion_w=tuple(m.conv_w),
        target_w=tuple(m.target_w),
        loss_w=m.loss_w,
        energy_acin_to_dc_kwh=m.energy_acin_to_dc_kwh,
        energy_dc_to_acout_kwh=m.energy_dc_to_acout_kwh,
        allow_to_charge=bat.allow_charge,
        allow_to_discharge=bat.allow_discharge,
    )
    bp = bat.params
    battery = BatteryState(
        soc=min(max(bat.soc, 0.0), 100.0),  # as a BMS reports it (the energy may overshoot)
        voltage_v=bat.voltage_v,
        current_a=bat.current_a,
        power_w=bat.power_w,
        temperature_c=bat.temperature_c,
        ccl_a=bat.ccl_a,
        dcl_a=bat.dcl_a,
        cvl_v=bat.cvl_v,
        low_voltage_v=bp.low_voltage_v,
        allow_charge=bat.allow_charge,
        allow_discharge=bat.allow_discharge,
        capacity_ah=bp.capacity_ah,
        consumed_ah=-bp.capacity_ah * (100.0 - bat.soc) / 100.0,
        time_to_go_s=(bat.energy_j / -bat.power_w) if bat.power_w < -1 else None,
        charged_kwh=bat.charged_kwh,
        discharged_kwh=bat.discharged_kwh,
        ccl_exceeded_s=bat.ccl_exceeded_s,
        dcl_exceeded_s=bat.dcl_exceeded_s,
    )
    solar = None
    if site.solar is not None:
        s = site.solar
        solar = SolarChargerState(
            available_w=s.available_w,
            pv_power_w=s.pv_power_w,
            pv_voltage_v=s.pv_voltage(),
            output_w=s.output_w,
            dc_current_a=s.output_w / bat.voltage_v,
            dc_voltage_v=bat.voltage_v,
            state=s.state(bat.soc),
            mpp_operation_mode=s.mpp_mode(),
            curtailed=s.curtailed,
            yield_kwh=s.yield_kwh,
            link_charge_current_a=s.link_charge_current_a,
        )
    pvi = None
    if site.pv_inverter is not None:
        inv = site.pv_inverter
        pos = 0 if inv.params.position == AC_IN else 1
        pvi = PvInverterState(
            power_w=inv.power_w,
            phase_w=_split(site, inv.power_w, inv.params.phase, inv.params.phase == 0),
            position=pos,
            available_w=inv.available_w,
            rated_power_w=inv.params.rated_power_w,
            power_limit_w=inv.limit_w,
            hub4_limit_w=inv.hub4_limit_w,
            status_code=inv.status_code(site.time),
            energy_kwh=inv.energy_kwh,
        )
    ev = None
    if site.ev is not None:
        e = site.ev
        ev = EvChargerState(
            connected=e.connected,
            enabled=e.enabled,
            status=e.status(site.time),
            set_current_a=e.current_setpoint_a,
            current_a=e.current_a,
            min_current_a=e.params.min_current_a,
            max_current_a=e.params.max_current_a,
            phases=e.phases,
            power_w=e.power_w,
            phase_w=tuple(e.site_phase_w(n)),
            position=e.params.position,
            session_kwh=e.session_kwh,
            session_s=e.session_s,
            total_kwh=e.total_kwh,
            phase_current_a=e.phase_currents_a(),
            phases_in_use=e.phases_in_use if e.power_w > 0 else 0,
            target_phases=e.target_phases,
            car_soc_pct=e.car_soc_pct,
            car_energy_kwh=e.car_energy_kwh if e.car is not None else None,
        )
    heater = None
    if site.heater is not None:
        h = site.heater
        heater = HeaterState(
            coils=tuple(h.coils),
            level_w=h.level_w,
            power_w=h.power_w,
            temperature_c=h.temperature_c,
            thermostat_open=h.thermostat_open,
            energy_kwh=h.energy_kwh,
            switches=h.switches,
        )
    relays = tuple(
        RelayState(r.params.name, r.on, r.power_w, r.params.phase, r.params.position, r.energy_kwh)
        for r in site.relays.values()
    )
    ess = site.ess
    settings, overrides = copy_settings(ess.settings, ess.overrides)
    ess_state = EssState(
        settings=settings,
        overrides=overrides,
        effective_setpoint_w=ess.setpoint_w(),
        active_soc_limit=ess.active_soc_limit(),
        mode3_setpoints_w=tuple(ess.vebus.setpoints_w),
        mode3_passthrough=tuple(ess.passthrough),
        disable_charge=ess.vebus.disable_charge,
        disable_feed_in=ess.vebus.disable_feed_in,
        floor_active=ess.floor_active,
        recharging=ess.recharging,
        meter_missing=ess.meter_missing,
        pv_power_limiter_active=ess.pv_limit_w is not None,
    )
    cons_in = tuple(max(site.load_in_w[i], 0.0) for i in range(n))
    cons_out = tuple(max(site.load_out_w[i], 0.0) for i in range(n))
    micro_kwh = sum(mi.yield_total_kwh for mi in site.micros.values())
    energy = EnergyCounters(
        grid_import_kwh=sum(meter.forward_kwh),
        grid_export_kwh=sum(meter.reverse_kwh),
        pv_dc_kwh=site.solar.yield_kwh if site.solar else 0.0,
        pv_ac_kwh=site.pv_inverter.energy_kwh if site.pv_inverter else 0.0,
        micro_ac_kwh=micro_kwh,
        battery_charged_kwh=bat.charged_kwh,
        battery_discharged_kwh=bat.discharged_kwh,
        consumption_kwh=site.consumption_kwh,
        losses_kwh=site.losses_kwh,
        unserved_kwh=site.unserved_kwh,
    )
    return SiteState(
        time_s=site.time,
        system_state=system_state(site),
        grid=grid,
        multi=multi,
        battery=battery,
        solar_charger=solar,
        pv_inverter=pvi,
        micro_inverters=_micro_states(site),
        ev_charger=ev,
        heater=heater,
        relays=relays,
        ess=ess_state,
        house_load_w=tuple(site.house_served_w),
        consumption_w=tuple(a + b for a, b in zip(cons_in, cons_out, strict=True)),
        consumption_on_input_w=cons_in,
        consumption_on_output_w=cons_out,
        pv_on_grid_w=tuple(site.pv_in_w),
        pv_on_output_w=tuple(site.pv_out_w),
        energy=energy,
        balance_residual_w=site.flows.residual_w,
    )
