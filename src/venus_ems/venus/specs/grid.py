"""``com.victronenergy.grid`` (venus-dbus.md §6.4): + power = import from the grid.

An energy meter whose service was built with ``DeviceInstance(..., roles=METER_ROLES)`` can be
switched by the user to another role through ``/Role``, as dbus-cgwacs and dbus-modbus-client
meters can: it is then published as ``com.victronenergy.<role>`` with the same measurements,
``/IsGenericEnergyMeter`` = 1 and a writable ``/Position`` (0 AC-in 1, 1 AC-out, 2 AC-in 2, kept
in localsettings beside ``ClassAndVrmInstance``).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..service import Service
from ..tree import PathSpec
from .units import HZ, INT, KWH, STR, A, V, W

__all__ = ["GRID_QUANTITIES", "METER_ROLES", "add_grid_paths", "grid_measurements"]

GRID_QUANTITIES = (("Power", W), ("Voltage", V), ("Current", A), ("Energy/Forward", KWH),
                   ("Energy/Reverse", KWH))  # fmt: skip
"""Per phase: quantity below ``/Ac/Lx/`` and its spec."""

METER_ROLES = ("grid", "pvinverter", "genset", "acload", "evcharger", "heatpump")
"""Roles an energy meter may take (dbus-cgwacs's ``/AllowedRoles``)."""

POSITION = PathSpec("i", writable=True, min=0, max=2)
"""``/Position`` of a meter in a non-grid role: 0 AC-in 1, 1 AC-out, 2 AC-in 2."""


def grid_measurements(phases: Sequence[str]) -> list[str]:
    """Every measured path (the ones that go invalid when the meter is lost)."""
    paths = ["/Ac/Power", "/Ac/Frequency", "/Ac/Energy/Forward", "/Ac/Energy/Reverse"]
    for phase in phases:
        paths += [f"/Ac/{phase}/{q}" for q, _ in GRID_QUANTITIES]
    return paths


def add_grid_paths(
    svc: Service,
    phases: Sequence[str] = ("L1", "L2", "L3"),
    *,
    refresh_ms: int = 1000,
    device_type: int = 0,
    roles: Sequence[str] = ("grid",),
) -> None:
    """Declare a grid meter: totals, ``/Ac/Lx/*`` per phase, role, ``/RefreshTime`` (ms).

    A service with roles publishes its own writable ``/Role`` and ``/AllowedRoles``; otherwise
    ``/Role`` is ``grid`` (read-only) and ``roles`` are listed in ``/AllowedRoles``.
    """
    svc.add_path("/Ac/Power", None, W)
    svc.add_path("/Ac/Frequency", None, HZ)
    svc.add_path("/Ac/Energy/Forward", None, KWH)
    svc.add_path("/Ac/Energy/Reverse", None, KWH)
    for phase in phases:
        for quantity, spec in GRID_QUANTITIES:
            svc.add_path(f"/Ac/{phase}/{quantity}", None, spec)
    svc.add_path("/NrOfPhases", len(phases), INT)
    svc.add_path("/DeviceType", device_type, INT)
    svc.add_path("/RefreshTime", refresh_ms, PathSpec("i", "%d ms", unit="ms"))
    if svc.roles:
        svc.add_device_setting("Position", 0, min=0, max=2, path="/Position")
        svc.on_role(meter_role)
    else:
        svc.add_path("/Role", "grid", STR)
        svc.add_path("/AllowedRoles", list(roles), PathSpec("v"))


def meter_role(svc: Service, role: str) -> None:
    """Paths that depend on a meter's role: non-grid roles are generic and have a position."""
    if role == "grid":
        for path in ("/IsGenericEnergyMeter", "/Position"):
            if path in svc:
                svc.remove_path(path)
        return
    if "/IsGenericEnergyMeter" not in svc:
        svc.add_path("/IsGenericEnergyMeter", 1, INT)
    if "/Position" not in svc:
        svc.add_path("/Position", svc.device_setting("Position"), POSITION)
