"""Simulated site physics: battery, PV, Multi with an ESS loop, micro-inverters, loads, grid meter.

Pure and deterministic: no I/O, no clock, randomness only from seeded ``random.Random``.
``Site.step(dt)`` advances simulated time by ``dt`` seconds (0 < dt <= 1).
"""

from __future__ import annotations

from .ess import EssSettings, Hub4Overrides
from .ev import Car
from .micro import LIMIT_FAILURE, LIMIT_OK, LIMIT_PENDING
from .multi import MODE_CHARGER_ONLY, MODE_INVERTER_ONLY, MODE_OFF, MODE_ON
from .params import (
    AC_IN,
    AC_OUT,
    BatteryParams,
    EvChargerParams,
    HeaterParams,
    MeterParams,
    MicroInverterParams,
    MultiParams,
    PvInverterParams,
    RelayParams,
    SiteParams,
    SolarChargerParams,
)
from .pv import MPP_MODE_LIMITED, MPP_MODE_OFF, MPP_MODE_TRACKING
from .site import Flows, Site
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
)
from .tank import TAPPING_CYCLE_M, DrawOff, Tank, TankParams
from .writes import SETTING_PATHS

__all__ = [
    "AC_IN",
    "AC_OUT",
    "LIMIT_FAILURE",
    "LIMIT_OK",
    "LIMIT_PENDING",
    "MODE_CHARGER_ONLY",
    "MODE_INVERTER_ONLY",
    "MODE_OFF",
    "MODE_ON",
    "MPP_MODE_LIMITED",
    "MPP_MODE_OFF",
    "MPP_MODE_TRACKING",
    "SETTING_PATHS",
    "TAPPING_CYCLE_M",
    "BatteryParams",
    "BatteryState",
    "Car",
    "DrawOff",
    "EnergyCounters",
    "EssSettings",
    "EssState",
    "EvChargerParams",
    "EvChargerState",
    "Flows",
    "GridState",
    "HeaterParams",
    "HeaterState",
    "Hub4Overrides",
    "MeterParams",
    "MicroInverterParams",
    "MicroInverterState",
    "MultiParams",
    "MultiState",
    "PvInverterParams",
    "PvInverterState",
    "RelayParams",
    "RelayState",
    "Site",
    "SiteParams",
    "SiteState",
    "SolarChargerParams",
    "SolarChargerState",
    "Tank",
    "TankParams",
]
