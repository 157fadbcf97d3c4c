"""Scenarios: real-data days (load, PV, EV) with site parameters, and runners for the site model."""

from __future__ import annotations

from .catalog import (
    EvSession,
    Scenario,
    ScenarioSeries,
    get_scenario,
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
    "Controller",
    "DataFile",
    "EvSession",
    "RunResult",
    "Scenario",
    "ScenarioDriver",
    "ScenarioSeries",
    "get_scenario",
    "iter_scenario",
    "list_scenarios",
    "read_data",
    "run_clocked",
    "run_scenario",
    "with_modbus_heater",
]
