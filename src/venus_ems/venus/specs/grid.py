"""``com.victronenergy.grid`` (venus-dbus.md §6.4): + power = import from the grid."""

from __future__ import annotations

from collections.abc import Sequence

from ..service import Service
from ..tree import PathSpec
from .units import HZ, INT, KWH, STR, A, V, W

__all__ = ["GRID_QUANTITIES", "add_grid_paths", "grid_measurements"]

GRID_QUANTITIES = (("Power", W), ("Voltage", V), ("Current", A), ("Energy/Forward", KWH),
                   ("Energy/Reverse", KWH))  # fmt: skip
"""Per phase: quantity below ``/Ac/Lx/`` and its spec."""


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
    """Declare a grid meter: totals, ``/Ac/Lx/*`` per phase, role, ``/RefreshTime`` (ms)."""
    svc.add_path("/Ac/Power", None, W)
    svc.add_path("/Ac/Frequency", None, HZ)
    svc.add_path("/Ac/Energy/Forward", None, KWH)
    svc.add_path("/Ac/Energy/Reverse", None, KWH)
    for phase in phases:
        for quantity, spec in GRID_QUANTITIES:
            svc.add_path(f"/Ac/{phase}/{quantity}", None, spec)
    svc.add_path("/NrOfPhases", len(phases), INT)
    svc.add_path("/DeviceType", device_type, INT)
    svc.add_path("/Role", "grid", STR)
    svc.add_path("/AllowedRoles", list(roles), PathSpec("v"))
    svc.add_path("/RefreshTime", refresh_ms, PathSpec("i", "%d ms", unit="ms"))
