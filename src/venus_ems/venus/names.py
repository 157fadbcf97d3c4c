"""Venus OS D-Bus service names: the one place they are spelt (venus-dbus.md §6).

A *class* is ``com.victronenergy.<type>``; a service of a class adds a suffix
(``com.victronenergy.grid.cgwacs_ttyUSB0_mb1``): build one with :func:`service_name`.
"""

from __future__ import annotations

__all__ = [
    "ACLOAD",
    "BATTERY",
    "DCLOAD",
    "DCSYSTEM",
    "EVCHARGER",
    "GRID",
    "HUB4",
    "OPPORTUNITY_LOADS",
    "PREFIX",
    "PVINVERTER",
    "SETTINGS",
    "SOLARCHARGER",
    "SYSTEM",
    "TEMPERATURE",
    "VEBUS",
    "VENUSEMS",
    "service_name",
]

PREFIX = "com.victronenergy."
"""Every Victron service name starts with this."""

SYSTEM = "com.victronenergy.system"
"""dbus-systemcalc-py: the site's computed values (``/Ac/Grid/*``, ``/Dc/Battery/*``...)."""
SETTINGS = "com.victronenergy.settings"
"""localsettings: persisted settings (``/Settings/...``)."""
HUB4 = "com.victronenergy.hub4"
"""hub4control: the ESS loop and its non-persisted ``/Overrides/*``."""
VEBUS = "com.victronenergy.vebus"
"""The Multi / Quattro (mk2-dbus)."""
BATTERY = "com.victronenergy.battery"
"""Battery monitors and BMSes."""
SOLARCHARGER = "com.victronenergy.solarcharger"
"""MPPT solar chargers."""
GRID = "com.victronenergy.grid"
"""Grid meters (+ power = import)."""
PVINVERTER = "com.victronenergy.pvinverter"
"""PV inverters on AC (+ power = producing)."""
TEMPERATURE = "com.victronenergy.temperature"
"""Temperature sensors."""
EVCHARGER = "com.victronenergy.evcharger"
"""EV chargers."""
DCSYSTEM = "com.victronenergy.dcsystem"
"""DC systems: summed by systemcalc into ``/Dc/System/*`` and counted by DVCC."""
DCLOAD = "com.victronenergy.dcload"
"""DC loads: shown by the GUI and VRM, not counted by systemcalc or DVCC."""
ACLOAD = "com.victronenergy.acload"
"""AC loads (metered consumers): systemcalc only notes that they exist (``/Ac/HasAcLoads``)."""
VENUSEMS = "com.victronenergy.venusems"
"""venus-ems's own status service (features, outputs, messages)."""
OPPORTUNITY_LOADS = "com.victronenergy.opportunityloads"
"""Victron's Opportunity Loads engine (Venus OS 3.80+), the S2 CEM of its surplus control."""


def service_name(cls: str, suffix: str) -> str:
    """``service_name(GRID, "venusems_shelly1")`` -> ``com.victronenergy.grid.venusems_shelly1``.

    Raises ValueError when ``cls`` is not a class name or ``suffix`` is empty or dotted at an end.
    """
    if not cls.startswith(PREFIX) or cls.count(".") != 2:
        raise ValueError(f"{cls!r}: expected a class name such as {GRID!r}")
    if not suffix or suffix.startswith(".") or suffix.endswith("."):
        raise ValueError(f"{suffix!r}: expected a service suffix such as 'venusems_shelly1'")
    return f"{cls}.{suffix}"
