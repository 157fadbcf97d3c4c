"""The battery-fed micro-inverters on the GX: one dcsystem for the group, one dcload each.

* ``com.victronenergy.dcsystem.venusems_micro``: the group's DC draw from the battery
  (``/Dc/0/Voltage|Current|Power``, + = consuming; ``/History/EnergyIn`` kWh). systemcalc sums
  dcsystem services into ``/Dc/System/Power`` and DVCC then lets the solar chargers charge that
  much more than the battery's CCL (a dcload would not count: venus-platform.md).
* ``com.victronenergy.dcload.venusems_micro_<serial>``: each inverter visible in the GUI and
  VRM: its DC side as above plus the inverter temperature, and ``/Ac/Power`` (W produced),
  ``/Ac/Voltage``, ``/Ac/Energy/Forward`` (kWh produced), ``/Ac/PowerLimit`` (W in force, read
  only: the feature sets it) and ``/Ac/MaxPower`` (nameplate W).

Values are what the DTU reported at its last poll of each inverter. A value the DTU did not
report, an inverter the DTU has not heard from for ``stale_s`` and everything while the DTU
does not answer are invalid (never 0); the group's sums are invalid unless every inverter's
part is known.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..devices import InverterReading
from ..runtime.config import MicroInverterConfig, MicroInverterControlConfig
from ..venus import DeviceInstance, Identity, PathSpec, Service
from ..venus.names import DCLOAD, DCSYSTEM, service_name
from ..venus.specs import DC_MEASUREMENTS, KWH, STR, V, W, add_dc_paths
from .micro_inputs import DtuSnapshot

__all__ = ["GROUP_SUFFIX", "MicroServices", "inverter_suffix"]

GROUP_SUFFIX = "venusems_micro"
PREFERRED_INSTANCE = 60
PRODUCT_ID = 0xFFFF
_AC = ("/Ac/Power", "/Ac/Voltage", "/Ac/Energy/Forward", "/Ac/PowerLimit")


def inverter_suffix(serial: str) -> str:
    """Service-name suffix of one inverter's dcload."""
    return f"{GROUP_SUFFIX}_{serial}"


class MicroServices:
    """Declares and refreshes the group's dcsystem and every battery-fed inverter's dcload."""

    def __init__(
        self,
        config: MicroInverterControlConfig,
        inverters: Sequence[MicroInverterConfig],
        *,
        address: str | None,
        stale_s: float,
    ) -> None:
        """Every path declared, nothing registered (``services`` lists them)."""
        self.config = config
        self.inverters = list(inverters)
        self.stale_s = stale_s
        preferred = config.device_instance or PREFERRED_INSTANCE
        self.group = Service(
            service_name(DCSYSTEM, GROUP_SUFFIX),
            identity=Identity(
                "Micro-inverters (battery)", product_id=PRODUCT_ID, connection="HTTP OpenDTU"
            ),
            device_instance=DeviceInstance("dcsystem", preferred, GROUP_SUFFIX),
            address=address,
        )
        add_dc_paths(self.group)
        self.group.add_path("/CustomName", config.custom_name or "", STR)
        self.group.add_path("/NrOfInverters", len(self.inverters), PathSpec("i"))
        self.loads: dict[str, Service] = {}
        for i, inv in enumerate(self.inverters):
            svc = Service(
                service_name(DCLOAD, inverter_suffix(inv.serial)),
                identity=Identity(
                    "Hoymiles micro-inverter", product_id=PRODUCT_ID, connection="HTTP OpenDTU"
                ),
                device_instance=DeviceInstance(
                    "dcload",
                    inv.device_instance or preferred + 1 + i,
                    inverter_suffix(inv.serial),
                ),
                address=address,
            )
            add_dc_paths(svc)
            svc.add_path("/Serial", inv.serial, STR)
            svc.add_path("/CustomName", inv.name or "", STR)
            svc.add_path("/Ac/Power", None, W)
            svc.add_path("/Ac/Voltage", None, V)
            svc.add_path("/Ac/Energy/Forward", None, KWH)
            svc.add_path("/Ac/PowerLimit", None, W)
            svc.add_path("/Ac/MaxPower", None, W)
            self.loads[inv.serial] = svc
        self.connected = False

    @property
    def services(self) -> list[Service]:
        """The group first, then one per inverter."""
        return [self.group, *self.loads.values()]

    def _fresh(self, reading: InverterReading | None, now: float) -> InverterReading | None:
        if reading is None or now - reading.data_at > self.stale_s:
            return None
        return reading

    def publish(
        self,
        snap: DtuSnapshot,
        limits_w: dict[str, float | None],
        nameplates: dict[str, float],
        now: float,
        *,
        dtu_ok: bool,
    ) -> None:
        """Refresh every service from the DTU's last answers (invalid where unknown)."""
        parts: list[InverterReading | None] = []
        for inv in self.inverters:
            reading = self._fresh(snap.readings.get(inv.serial), now) if dtu_ok else None
            parts.append(reading)
            svc = self.loads[inv.serial]
            values: dict[str, Any] = dict.fromkeys((*DC_MEASUREMENTS, *_AC))
            if reading is not None:
                values.update(
                    {
                        "/Dc/0/Voltage": reading.dc_voltage_v,
                        "/Dc/0/Current": reading.dc_current_a,
                        "/Dc/0/Power": reading.dc_power_w,
                        "/Dc/0/Temperature": reading.temperature_c,
                        "/History/EnergyIn": reading.dc_yield_total_kwh,
                        "/Ac/Power": reading.ac_power_w,
                        "/Ac/Voltage": reading.ac_voltage_v,
                        "/Ac/Energy/Forward": reading.yield_total_kwh,
                    }
                )
                if not svc["/CustomName"] and reading.name:
                    values["/CustomName"] = reading.name
            values["/Ac/PowerLimit"] = limits_w.get(inv.serial)
            values["/Ac/MaxPower"] = nameplates.get(inv.serial)
            values["/Connected"] = int(reading is not None and reading.reachable)
            svc.update(values)
        self.group.update(_group_values(parts))
        self.group["/Connected"] = int(dtu_ok)


def _sum(values: list[float | None]) -> float | None:
    return None if not values or any(v is None for v in values) else sum(v or 0.0 for v in values)


def _group_values(parts: list[InverterReading | None]) -> dict[str, Any]:
    """The group's sums; invalid unless every inverter's value is known."""
    known = [p for p in parts if p is not None]
    if len(known) < len(parts):
        return dict.fromkeys(DC_MEASUREMENTS)
    volts = [p.dc_voltage_v for p in known if p.dc_voltage_v is not None and p.dc_voltage_v > 0]
    return {
        "/Dc/0/Voltage": sum(volts) / len(volts) if volts else None,
        "/Dc/0/Current": _sum([p.dc_current_a for p in known]),
        "/Dc/0/Power": _sum([p.dc_power_w for p in known]),
        "/Dc/0/Temperature": None,
        "/History/EnergyIn": _sum([p.dc_yield_total_kwh for p in known]),
    }
