"""``com.victronenergy.temperature`` (venus-dbus.md §6.9): °C, %, hPa."""

from __future__ import annotations

from ..service import Service
from ..tree import PathSpec
from .units import INT

__all__ = ["TEMPERATURE_TYPES", "add_temperature_paths"]

TEMPERATURE_TYPES = {
    "battery": 0, "fridge": 1, "generic": 2, "room": 3, "outdoor": 4, "water_heater": 5,
    "freezer": 6,
}  # fmt: skip
"""``/TemperatureType`` values."""


def add_temperature_paths(
    svc: Service, *, kind: int, humidity: bool = False, pressure: bool = False, status: int = 4
) -> None:
    """Declare a sensor: ``/Temperature`` and optional ``/Humidity``, ``/Pressure``."""
    svc.add_path("/Temperature", None, PathSpec("d", "%.1F °C", unit="°C"))
    if humidity:
        svc.add_path("/Humidity", None, PathSpec("d", "%.0F %%", unit="%"))
    if pressure:
        svc.add_path("/Pressure", None, PathSpec("d", "%.0F hPa", unit="hPa"))
    svc.add_path("/TemperatureType", kind, INT)
    svc.add_path("/Status", status, INT)
