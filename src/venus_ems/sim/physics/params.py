"""Frozen parameters of a simulated site (ratings, time constants, noise), all in SI-ish units."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...errors import ConfigError
from .tank import TankParams

__all__ = [
    "AC_IN",
    "AC_OUT",
    "BatteryParams",
    "EvChargerParams",
    "HeaterParams",
    "MeterParams",
    "MicroInverterParams",
    "MultiParams",
    "PvInverterParams",
    "RelayParams",
    "SiteParams",
    "SolarChargerParams",
]

AC_IN = "ac-in"
AC_OUT = "ac-out"
_POSITIONS = (AC_IN, AC_OUT)

# Resting pack voltage of a 16-cell LFP battery versus SoC (%), a typical published LFP curve.
_LFP16_OCV: tuple[tuple[float, float], ...] = (
    (0.0, 44.8),
    (5.0, 50.4),
    (10.0, 51.5),
    (20.0, 52.2),
    (40.0, 52.6),
    (60.0, 52.9),
    (80.0, 53.3),
    (90.0, 53.6),
    (95.0, 54.1),
    (100.0, 55.2),
)


def _check(cond: bool, what: str) -> None:
    if not cond:
        raise ConfigError(what)


def _check_position(position: str, phase: int, what: str) -> None:
    _check(position in _POSITIONS, f"{what}.position must be 'ac-in' or 'ac-out', got {position!r}")
    _check(phase in (1, 2, 3), f"{what}.phase must be 1, 2 or 3, got {phase!r}")


@dataclass(frozen=True)
class BatteryParams:
    """Battery and BMS: capacity Ah, resistance ohm, limits A/V, SoC in %; raises ConfigError."""

    capacity_ah: float = 280.0
    nominal_voltage: float = 51.2
    ocv_curve: tuple[tuple[float, float], ...] = _LFP16_OCV
    internal_resistance_ohm: float = 0.01
    charge_efficiency: float = 0.99
    max_charge_current_a: float = 140.0
    max_discharge_current_a: float = 200.0
    max_charge_voltage_v: float = 55.2
    low_voltage_v: float = 46.0
    ccl_taper_start_soc: float = 95.0
    dcl_taper_end_soc: float = 5.0
    initial_soc: float = 50.0
    ambient_temperature_c: float = 20.0
    thermal_time_constant_s: float = 3600.0
    thermal_resistance_k_per_w: float = 0.05

    def __post_init__(self) -> None:
        """Validate ranges."""
        _check(self.capacity_ah > 0, "battery.capacity_ah must be > 0")
        _check(self.nominal_voltage > 0, "battery.nominal_voltage must be > 0")
        _check(len(self.ocv_curve) >= 2, "battery.ocv_curve needs at least two points")
        socs = [p[0] for p in self.ocv_curve]
        _check(
            socs == sorted(socs) and socs[0] <= 0 and socs[-1] >= 100,
            "battery.ocv_curve must span 0..100 %",
        )
        _check(self.internal_resistance_ohm >= 0, "battery.internal_resistance_ohm must be >= 0")
        _check(0 < self.charge_efficiency <= 1, "battery.charge_efficiency must be in (0, 1]")
        _check(0 <= self.initial_soc <= 100, "battery.initial_soc must be in 0..100")
        _check(self.max_charge_current_a >= 0, "battery.max_charge_current_a must be >= 0")
        _check(self.max_discharge_current_a >= 0, "battery.max_discharge_current_a must be >= 0")

    @property
    def capacity_wh(self) -> float:
        """Usable energy in Wh (capacity x nominal voltage)."""
        return self.capacity_ah * self.nominal_voltage


@dataclass(frozen=True)
class SolarChargerParams:
    """MPPT solar charger: battery current A, efficiency, PV voltages V; raises ConfigError."""

    max_charge_current_a: float = 100.0
    efficiency: float = 0.97
    mpp_voltage_v: float = 120.0
    open_circuit_voltage_v: float = 150.0

    def __post_init__(self) -> None:
        """Validate ranges."""
        _check(self.max_charge_current_a >= 0, "solarcharger.max_charge_current_a must be >= 0")
        _check(0 < self.efficiency <= 1, "solarcharger.efficiency must be in (0, 1]")


@dataclass(frozen=True)
class PvInverterParams:
    """AC PV inverter (Fronius-like): rated W, phase (0 = split over three), position, lag s."""

    rated_power_w: float = 3000.0
    phase: int = 0
    position: str = AC_IN
    time_constant_s: float = 2.0
    limit_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        """Validate ranges."""
        _check(self.rated_power_w >= 0, "pvinverter.rated_power_w must be >= 0")
        _check(self.phase in (0, 1, 2, 3), "pvinverter.phase must be 0 (three-phase) or 1..3")
        _check(self.position in _POSITIONS, "pvinverter.position must be 'ac-in' or 'ac-out'")
        _check(self.time_constant_s >= 0, "pvinverter.time_constant_s must be >= 0")


@dataclass(frozen=True)
class MultiParams:
    """Multi(s), one unit per phase: ratings W per phase, efficiency, lag s, low-power error W.

    ``mode3_timeout_s``: a vebus mode-3 setpoint not renewed for this long falls back to
    passthrough; ``hub4_override_timeout_s``: hub4control drops an override not rewritten for this
    long (None: never; the real timeout is undocumented).
    """

    phases: int = 3
    inverter_power_w: float = 4000.0
    charger_power_w: float = 3600.0
    efficiency: float = 0.94
    idle_power_w: float = 20.0
    time_constant_s: float = 1.5
    low_power_error_w: float = 100.0
    low_power_scale_w: float = 150.0
    low_power_correlation_s: float = 3.0
    mode3_timeout_s: float = 60.0
    hub4_override_timeout_s: float | None = None
    recharge_power_w: float = 300.0
    recharge_hysteresis_pct: float = 3.0

    def __post_init__(self) -> None:
        """Validate ranges."""
        _check(self.phases in (1, 2, 3), "multi.phases must be 1, 2 or 3")
        _check(
            self.inverter_power_w >= 0 and self.charger_power_w >= 0, "multi ratings must be >= 0"
        )
        _check(0 < self.efficiency <= 1, "multi.efficiency must be in (0, 1]")
        _check(self.idle_power_w >= 0, "multi.idle_power_w must be >= 0")
        _check(self.time_constant_s >= 0, "multi.time_constant_s must be >= 0")
        _check(self.low_power_error_w >= 0, "multi.low_power_error_w must be >= 0")
        _check(self.low_power_scale_w > 0, "multi.low_power_scale_w must be > 0")
        _check(self.low_power_correlation_s > 0, "multi.low_power_correlation_s must be > 0")
        _check(self.mode3_timeout_s > 0, "multi.mode3_timeout_s must be > 0")
        t = self.hub4_override_timeout_s
        _check(t is None or t > 0, "multi.hub4_override_timeout_s must be None (none) or > 0")


@dataclass(frozen=True)
class MicroInverterParams:
    """Battery-fed micro-inverter (Hoymiles via OpenDTU): W, dead time s, ramp W/s; ConfigError.

    A limit command is acknowledged ``ack_s`` after it was sent (the DTU's radio round; None =
    at the dead time) and takes effect ``dead_time_s`` after it was sent, then ramps. A restart
    switches the output off for ``restart_s`` and brings it back at ``persistent_limit_w``
    (None = the nameplate, what a restarted Hoymiles does with no persistent limit set).
    """

    serial: str
    max_power_w: float = 800.0
    phase: int = 1
    position: str = AC_OUT
    dead_time_s: float = 8.0
    dead_time_jitter_s: float = 0.0
    ramp_w_per_s: float = 100.0
    efficiency: float = 0.95
    initial_limit_w: float = 0.0
    name: str = ""
    ack_s: float | None = None
    persistent_limit_w: float | None = None
    restart_s: float = 20.0

    def __post_init__(self) -> None:
        """Validate ranges."""
        what = f"micro_inverter[{self.serial}]"
        _check(bool(self.serial) and self.serial.isalnum(), f"{what}.serial must be alphanumeric")
        _check(self.max_power_w > 0, f"{what}.max_power_w must be > 0")
        _check_position(self.position, self.phase, what)
        _check(3.0 <= self.dead_time_s <= 25.0, f"{what}.dead_time_s must be in 3..25")
        _check(self.dead_time_jitter_s >= 0, f"{what}.dead_time_jitter_s must be >= 0")
        _check(self.ramp_w_per_s > 0, f"{what}.ramp_w_per_s must be > 0")
        _check(0 < self.efficiency <= 1, f"{what}.efficiency must be in (0, 1]")
        _check(
            0 <= self.initial_limit_w <= self.max_power_w, f"{what}.initial_limit_w out of range"
        )
        _check(
            self.ack_s is None or 0 <= self.ack_s <= self.dead_time_s,
            f"{what}.ack_s must be in 0..dead_time_s",
        )
        _check(
            self.persistent_limit_w is None or 0 <= self.persistent_limit_w <= self.max_power_w,
            f"{what}.persistent_limit_w out of range",
        )
        _check(self.restart_s >= 0, f"{what}.restart_s must be >= 0")


@dataclass(frozen=True)
class EvChargerParams:
    """EV charger (Wattpilot-like): current range A, phase-switch pause s, ramp s, position."""

    min_current_a: float = 6.0
    max_current_a: float = 16.0
    phase: int = 1
    position: str = AC_OUT
    phase_switch_pause_s: float = 30.0
    ramp_time_s: float = 2.0
    initial_current_a: float = 16.0
    initial_phases: int = 3

    def __post_init__(self) -> None:
        """Validate ranges."""
        _check_position(self.position, self.phase, "evcharger")
        _check(0 < self.min_current_a <= self.max_current_a, "evcharger current range is invalid")
        _check(self.initial_phases in (1, 3), "evcharger.initial_phases must be 1 or 3")
        _check(self.ramp_time_s >= 0, "evcharger.ramp_time_s must be >= 0")


@dataclass(frozen=True)
class HeaterParams:
    """Water heater with switchable coils: W per coil, tank litres, temperatures °C."""

    coil_powers_w: tuple[float, ...] = (500.0, 1000.0, 2000.0)
    phase: int = 1
    position: str = AC_OUT
    tank_litres: float = 200.0
    initial_temperature_c: float = 45.0
    ambient_temperature_c: float = 20.0
    loss_w_per_k: float = 2.0
    thermostat_c: float = 85.0

    def __post_init__(self) -> None:
        """Validate ranges."""
        _check_position(self.position, self.phase, "heater")
        _check(all(p > 0 for p in self.coil_powers_w), "heater.coil_powers_w must be > 0")
        _check(self.tank_litres > 0, "heater.tank_litres must be > 0")


@dataclass(frozen=True)
class RelayParams:
    """A switched resistive load: name, W when on, phase, position."""

    name: str
    power_w: float
    phase: int = 1
    position: str = AC_OUT

    def __post_init__(self) -> None:
        """Validate ranges."""
        _check(bool(self.name), "relay.name must not be empty")
        _check(self.power_w >= 0, f"relay[{self.name}].power_w must be >= 0")
        _check_position(self.position, self.phase, f"relay[{self.name}]")


@dataclass(frozen=True)
class MeterParams:
    """Grid meter: update period s, Gaussian noise W (1 sigma), quantisation W, voltage V."""

    update_period_s: float = 1.0
    noise_w: float = 5.0
    quantisation_w: float = 1.0
    nominal_voltage_v: float = 230.0
    grid_impedance_v_per_w: float = 0.0008
    frequency_hz: float = 50.0

    def __post_init__(self) -> None:
        """Validate ranges."""
        _check(self.update_period_s > 0, "meter.update_period_s must be > 0")
        _check(self.noise_w >= 0, "meter.noise_w must be >= 0")
        q = self.quantisation_w
        _check(q == 0 or q >= 0.001, "meter.quantisation_w must be 0 (off) or >= 0.001 W")
        _check(self.nominal_voltage_v > 0, "meter.nominal_voltage_v must be > 0")


@dataclass(frozen=True)
class SiteParams:
    """A whole site; components left as None are absent. Loads on AC-out unless set otherwise."""

    battery: BatteryParams = field(default_factory=BatteryParams)
    multi: MultiParams = field(default_factory=MultiParams)
    meter: MeterParams = field(default_factory=MeterParams)
    solar_charger: SolarChargerParams | None = field(default_factory=SolarChargerParams)
    pv_inverter: PvInverterParams | None = None
    micro_inverters: tuple[MicroInverterParams, ...] = ()
    ev_charger: EvChargerParams | None = None
    heater: HeaterParams | None = None
    tank: TankParams | None = None
    relays: tuple[RelayParams, ...] = ()
    house_load_position: str = AC_OUT
    seed: int = 0

    def __post_init__(self) -> None:
        """Validate cross-component consistency."""
        serials = [m.serial for m in self.micro_inverters]
        _check(len(serials) == len(set(serials)), "micro inverter serials must be unique")
        names = [r.name for r in self.relays]
        _check(len(names) == len(set(names)), "relay names must be unique")
        _check(self.house_load_position in _POSITIONS, "house_load_position must be ac-in/ac-out")
        n = self.multi.phases
        for what, phase in (
            *((f"micro_inverter[{m.serial}]", m.phase) for m in self.micro_inverters),
            *((f"relay[{r.name}]", r.phase) for r in self.relays),
            ("heater", self.heater.phase if self.heater else 1),
            ("tank", self.tank.phase if self.tank else 1),
            ("evcharger", self.ev_charger.phase if self.ev_charger else 1),
            ("pvinverter", self.pv_inverter.phase if self.pv_inverter else 0),
        ):
            _check(phase <= n, f"{what}.phase {phase} exceeds multi.phases {n}")
