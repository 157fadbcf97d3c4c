"""Declared paths of the ``com.victronenergy.<type>`` services venus-ems publishes (DESIGN rule 8).

One module per service type; each ``add_*_paths`` declares every path of the type with its
D-Bus type, unit and text format, so a grid meter looks the same whether a feature or the
simulator publishes it. Units follow Venus: W, V, A, Hz, kWh, °C, %, hPa.
"""

from __future__ import annotations

from .dc import DC_MEASUREMENTS, add_dc_paths
from .grid import GRID_QUANTITIES, METER_ROLES, add_grid_paths, grid_measurements
from .pvinverter import POSITIONS, add_pvinverter_paths, pvinverter_measurements
from .temperature import TEMPERATURE_TYPES, add_temperature_paths
from .units import HZ, INT, KWH, PCT, STR, A, V, W

__all__ = [
    "DC_MEASUREMENTS",
    "GRID_QUANTITIES",
    "HZ",
    "INT",
    "KWH",
    "METER_ROLES",
    "PCT",
    "POSITIONS",
    "STR",
    "TEMPERATURE_TYPES",
    "A",
    "V",
    "W",
    "add_dc_paths",
    "add_grid_paths",
    "add_pvinverter_paths",
    "add_temperature_paths",
    "grid_measurements",
    "pvinverter_measurements",
]
