"""Scenarios: real-data days (load, PV, EV) with site parameters, and runners for the site model."""

from __future__ import annotations

from .catalog import (
    MICRO_PAIR,
    EvSession,
    Scenario,
    ScenarioSeries,
    get_scenario,
    hoymiles,
    list_scenarios,
    with_modbus_heater,
)
from .data import DataFile, read_data
from .runner import (
    Controller,
    RunResult,
    ScenarioDriver,
    iter_scenario,
    run_clocked,
    run_scenario,
)

__all__ = [
    "MICRO_PAIR",
    "Controller",
    "DataFile",
    "EvSession",
    "RunResult",
    "Scenario",
    "ScenarioDriver",
    "ScenarioSeries",
    "get_scenario",
    "hoymiles",
    "iter_scenario",
    "list_scenarios",
    "read_data",
    "run_clocked",
    "run_scenario",
    "with_modbus_heater",
]
