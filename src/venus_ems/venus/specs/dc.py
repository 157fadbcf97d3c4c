"""``com.victronenergy.dcsystem`` / ``dcload`` (venus-dbus.md §6.7): DC power + = consuming.

Only dcsystem services count for systemcalc (``/Dc/System/Power`` is their sum) and so for
DVCC, which then lets the solar chargers charge that much more; dcload services are shown by the
GUI and VRM only (venus-platform.md "dcsystem vs dcload").
"""

from __future__ import annotations

from ..service import Service
from ..tree import PathSpec
from .units import KWH, A, V, W

__all__ = ["DC_MEASUREMENTS", "add_dc_paths"]

DC_MEASUREMENTS = (
    "/Dc/0/Voltage",
    "/Dc/0/Current",
    "/Dc/0/Power",
    "/Dc/0/Temperature",
    "/History/EnergyIn",
)
"""Measured paths of both types (invalid while unknown)."""


def add_dc_paths(svc: Service, *, energy_out: bool = False) -> None:
    """Declare V, A, W (+ = consuming), °C and consumed kWh (``/History/EnergyOut`` too)."""
    svc.add_path("/Dc/0/Voltage", None, V)
    svc.add_path("/Dc/0/Current", None, A)
    svc.add_path("/Dc/0/Power", None, W)
    svc.add_path("/Dc/0/Temperature", None, PathSpec("d", "%.1F °C", unit="°C"))
    svc.add_path("/History/EnergyIn", None, KWH)
    if energy_out:
        svc.add_path("/History/EnergyOut", None, KWH)
