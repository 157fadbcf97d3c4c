"""``com.victronenergy.pvinverter`` (venus-dbus.md §6.5): + power = producing."""

from __future__ import annotations

from ..service import Service
from .units import INT, KWH, A, V, W

__all__ = ["POSITIONS", "add_pvinverter_paths", "pvinverter_measurements"]

POSITIONS = {"ac-in": 0, "ac-out": 1, "ac-in-2": 2}
"""``/Position``: 0 AC-in 1, 1 AC-out, 2 AC-in 2."""


def pvinverter_measurements(phase: str) -> list[str]:
    """Every measured path of a single-phase PV inverter."""
    return [
        "/Ac/Power",
        f"/Ac/{phase}/Power",
        f"/Ac/{phase}/Voltage",
        f"/Ac/{phase}/Current",
        f"/Ac/{phase}/Energy/Forward",
        "/Ac/Energy/Forward",
    ]


def add_pvinverter_paths(svc: Service, phases: tuple[str, ...], *, position: int) -> None:
    """Declare a PV inverter on ``phases`` at ``position`` (see POSITIONS)."""
    svc.add_path("/Ac/Power", None, W)
    for p in phases:
        svc.add_path(f"/Ac/{p}/Power", None, W)
        svc.add_path(f"/Ac/{p}/Voltage", None, V)
        svc.add_path(f"/Ac/{p}/Current", None, A)
        svc.add_path(f"/Ac/{p}/Energy/Forward", None, KWH)
    svc.add_path("/Ac/Energy/Forward", None, KWH)
    svc.add_path("/Ac/MaxPower", None, W)
    svc.add_path("/Ac/NumberOfPhases", len(phases), INT)
    svc.add_path("/Position", position, INT)
    svc.add_path("/StatusCode", None, INT)
    svc.add_path("/ErrorCode", None, INT)
