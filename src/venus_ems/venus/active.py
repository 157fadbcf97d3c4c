"""Which service of a class is *the* one: as systemcalc and the GUI choose it."""

from __future__ import annotations

from .monitor import Monitor, service_class
from .names import BATTERY, SYSTEM, VEBUS

__all__ = ["BATTERY", "SYSTEM", "VEBUS", "active_service"]  # names re-exported from .names


def active_service(monitor: Monitor, name_or_class: str) -> str | None:
    """A full name as is; for a class the active service, or None when there is none.

    Batteries: the one systemcalc uses (``/Dc/Battery/BatteryService``, else
    ``/ActiveBatteryService`` = ``class/instance``). VE.Bus: systemcalc's ``/VebusService``.
    Otherwise, and as the fallback, the service with the lowest DeviceInstance (systemcalc's rule
    for grid meters).
    """
    if service_class(name_or_class) != name_or_class:
        return name_or_class
    if name_or_class == BATTERY:
        chosen = monitor.get_str(SYSTEM, "/Dc/Battery/BatteryService")
        if chosen and service_class(chosen) == BATTERY and monitor.service(chosen) is not None:
            return chosen
        cls, _, instance = (monitor.get_str(SYSTEM, "/ActiveBatteryService") or "").partition("/")
        if cls == BATTERY and instance.isdigit():
            for state in monitor.services(BATTERY):
                if state.device_instance == int(instance):
                    return state.name
    elif name_or_class == VEBUS:
        chosen = monitor.get_str(SYSTEM, "/VebusService")
        if chosen and monitor.service(chosen) is not None:
            return chosen
    found = monitor.services(name_or_class)
    return found[0].name if found else None
