"""Read-only snapshots of a site: every quantity the simulated Venus services and emulators show."""

from __future__ import annotations

from dataclasses import dataclass, replace

from .ess import EssSettings, Hub4Overrides

__all__ = [
    "BatteryState",
    "EnergyCounters",
    "EssState",
    "EvChargerState",
    "GridState",
    "HeaterState",
    "MicroInverterState",
    "MultiState",
    "PvInverterState",
    "RelayState",
    "SiteState",
    "SolarChargerState",
    "copy_settings",
]

Phases = tuple[float, ...]


@dataclass(frozen=True)
class GridState:
    """Grid point per phase: true power and the meter view W (+ = import), V, A, kWh."""

    true_w: Phases
    meter_w: Phases | None
    meter_connected: bool
    meter_sample_time_s: float
    voltage_v: Phases
    current_a: Phases
    frequency_hz: float
    forward_kwh: Phases
    reverse_kwh: Phases

    @property
    def total_w(self) -> float:
        """True total grid power W."""
        return sum(self.true_w)


@dataclass(frozen=True)
class MultiState:
    """The vebus view: AC-in/AC-out per phase W (+ = into Multi / to loads), DC (+ = charging)."""

    mode: int
    state: int
    grid_connected: bool
    acin_w: Phases
    acout_w: Phases
    acin_current_a: Phases
    acout_current_a: Phases
    voltage_v: Phases
    frequency_hz: float
    dc_power_w: float
    dc_current_a: float
    dc_voltage_v: float
    conversion_w: Phases
    target_w: Phases
    loss_w: float
    energy_acin_to_dc_kwh: float
    energy_dc_to_acout_kwh: float
    allow_to_charge: bool
    allow_to_discharge: bool


@dataclass(frozen=True)
class BatteryState:
    """Battery and BMS: V, A and W (+ = charging), %, °C, limits A/V, counters."""

    soc: float
    voltage_v: float
    current_a: float
    power_w: float
    temperature_c: float
    ccl_a: float
    dcl_a: float
    cvl_v: float
    low_voltage_v: float
    allow_charge: bool
    allow_discharge: bool
    capacity_ah: float
    consumed_ah: float
    time_to_go_s: float | None
    charged_kwh: float
    discharged_kwh: float
    ccl_exceeded_s: float
    dcl_exceeded_s: float


@dataclass(frozen=True)
class SolarChargerState:
    """MPPT: PV W/V, battery-side W/A, Victron /State and /MppOperationMode, yield kWh."""

    available_w: float
    pv_power_w: float
    pv_voltage_v: float
    output_w: float
    dc_current_a: float
    dc_voltage_v: float
    state: int
    mpp_operation_mode: int
    curtailed: bool
    yield_kwh: float
    link_charge_current_a: float | None


@dataclass(frozen=True)
class PvInverterState:
    """AC PV inverter: W total and per phase, position (0 AC-in, 1 AC-out), limits, status."""

    power_w: float
    phase_w: Phases
    position: int
    available_w: float
    rated_power_w: float
    power_limit_w: float | None
    hub4_limit_w: float | None
    status_code: int
    energy_kwh: float


@dataclass(frozen=True)
class MicroInverterState:
    """One micro-inverter as OpenDTU shows it (AC/DC readings, limit and its set status)."""

    serial: str
    name: str
    phase: int
    position: str
    reachable: bool
    producing: bool
    on: bool
    max_power_w: float
    ac_power_w: float
    ac_voltage_v: float
    ac_current_a: float
    ac_frequency_hz: float
    dc_power_w: float
    dc_voltage_v: float
    dc_current_a: float
    efficiency_pct: float
    yield_day_wh: float
    yield_total_kwh: float
    temperature_c: float
    limit_relative_pct: float
    limit_absolute_w: float
    limit_set_status: str
    power_set_status: str
    commands: int


@dataclass(frozen=True)
class EvChargerState:
    """EV charger: evcharger /Status, current A, phases, W per phase, session kWh/s, the car.

    ``phase_current_a`` is per charger terminal (L1, L2, L3 before the site rotation),
    ``phases_in_use`` the phases the car loads; ``car_soc_pct`` is None without a car.
    """

    connected: bool
    enabled: bool
    status: int
    set_current_a: float
    current_a: float
    min_current_a: float
    max_current_a: float
    phases: int
    power_w: float
    phase_w: Phases
    position: str
    session_kwh: float
    session_s: float
    total_kwh: float
    phase_current_a: Phases = (0.0, 0.0, 0.0)
    phases_in_use: int = 0
    target_phases: int = 0
    car_soc_pct: float | None = None
    car_energy_kwh: float | None = None


@dataclass(frozen=True)
class HeaterState:
    """Water heater: coils, W, tank °C, thermostat, kWh."""

    coils: tuple[bool, ...]
    level_w: float
    power_w: float
    temperature_c: float
    thermostat_open: bool
    energy_kwh: float
    switches: int


@dataclass(frozen=True)
class RelayState:
    """A switched load."""

    name: str
    on: bool
    power_w: float
    phase: int
    position: str
    energy_kwh: float


@dataclass(frozen=True)
class EssState:
    """ESS as systemcalc/hub4 show it: settings, overrides, effective values, flags."""

    settings: EssSettings
    overrides: Hub4Overrides
    effective_setpoint_w: float
    active_soc_limit: float
    mode3_setpoints_w: Phases
    mode3_passthrough: tuple[bool, ...]
    disable_charge: int
    disable_feed_in: int
    floor_active: bool
    recharging: bool
    meter_missing: bool
    pv_power_limiter_active: bool


@dataclass(frozen=True)
class EnergyCounters:
    """Site totals in kWh since the start."""

    grid_import_kwh: float
    grid_export_kwh: float
    pv_dc_kwh: float
    pv_ac_kwh: float
    micro_ac_kwh: float
    battery_charged_kwh: float
    battery_discharged_kwh: float
    consumption_kwh: float
    losses_kwh: float
    unserved_kwh: float


@dataclass(frozen=True)
class SiteState:
    """Everything at one instant; per-phase tuples are L1..Ln; W, + per Victron conventions."""

    time_s: float
    system_state: int
    grid: GridState
    multi: MultiState
    battery: BatteryState
    solar_charger: SolarChargerState | None
    pv_inverter: PvInverterState | None
    micro_inverters: tuple[MicroInverterState, ...]
    ev_charger: EvChargerState | None
    heater: HeaterState | None
    relays: tuple[RelayState, ...]
    ess: EssState
    house_load_w: Phases
    consumption_w: Phases
    consumption_on_input_w: Phases
    consumption_on_output_w: Phases
    pv_on_grid_w: Phases
    pv_on_output_w: Phases
    energy: EnergyCounters
    balance_residual_w: float


def copy_settings(
    settings: EssSettings, overrides: Hub4Overrides
) -> tuple[EssSettings, Hub4Overrides]:
    """Detached copies, so a snapshot does not change with later writes."""
    return replace(settings), replace(overrides)
