"""PV-fed micro-inverters behind the DTU as ``com.victronenergy.pvinverter`` with a PowerLimit.

One service ``com.victronenergy.pvinverter.venusems_micro_<serial>`` per inverter with
``source = "pv"``: the PV inverter paths of ``venus.specs.pvinverter`` on its ``phase`` and
``position`` (W produced, V, A, kWh), ``/Ac/MaxPower`` (nameplate W) and a writable
``/Ac/PowerLimit`` (W), so that Victron's own feed-in limiting, or another venus-ems feature,
can curtail it like a Fronius. As in dbus-fronius, a limit holds for
:data:`POWER_LIMIT_TIMEOUT_S` after its last write; then the path returns to ``MaxPower`` and
the inverter to its safe limit (default: unlimited). What is written goes to the inverter through
its actuator (:mod:`venus_ems.runtime.limit_output`), never directly. ``/StatusCode``: 7 producing,
8 standby, 10 when the DTU lost the inverter (values invalid, never 0).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from ..clock import Clock
from ..runtime.config import MicroInverterConfig
from ..venus import DeviceInstance, Identity, PathSpec, Service
from ..venus.names import PVINVERTER, service_name
from ..venus.specs import POSITIONS, STR, add_pvinverter_paths, pvinverter_measurements
from .micro_inputs import DtuSnapshot
from .micro_services import PRODUCT_ID, inverter_suffix

__all__ = ["POWER_LIMIT_TIMEOUT_S", "PvFedInverters"]

POWER_LIMIT_TIMEOUT_S = 60.0
"""A written ``/Ac/PowerLimit`` expires this long after its last write (dbus-fronius: 60 s)."""
PREFERRED_INSTANCE = 70
STATUS_RUNNING, STATUS_STANDBY, STATUS_ERROR = 7, 8, 10


class PvFedInverters:
    """The PV-fed inverters' services and the limits written to them."""

    def __init__(
        self,
        inverters: Sequence[MicroInverterConfig],
        *,
        address: str | None,
        clock: Clock,
        stale_s: float,
        on_limit: Callable[[], None],
    ) -> None:
        """Declare one service per inverter (not registered); ``on_limit()`` after a write."""
        self.inverters = list(inverters)
        self.clock = clock
        self.stale_s = stale_s
        self._on_limit = on_limit
        self._written: dict[str, tuple[float, float]] = {}
        self.services: dict[str, Service] = {}
        for i, inv in enumerate(self.inverters):
            svc = Service(
                service_name(PVINVERTER, inverter_suffix(inv.serial)),
                identity=Identity(
                    "Hoymiles micro-inverter", product_id=PRODUCT_ID, connection="HTTP OpenDTU"
                ),
                device_instance=DeviceInstance(
                    "pvinverter",
                    inv.device_instance or PREFERRED_INSTANCE + i,
                    inverter_suffix(inv.serial),
                ),
                address=address,
            )
            add_pvinverter_paths(svc, (inv.phase,), position=POSITIONS[inv.position])
            svc.add_path("/Serial", inv.serial, STR)
            svc.add_path("/CustomName", inv.name or "", STR)
            svc.add_path(
                "/Ac/PowerLimit",
                None,
                PathSpec("d", "%.0F W", unit="W", writable=True),
                on_write=self._writer(inv.serial),
            )
            self.services[inv.serial] = svc

    def _writer(self, serial: str) -> Callable[[str, Any], bool]:
        def written(_path: str, value: Any) -> bool:
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                return False
            self._written[serial] = (float(value), self.clock.monotonic())
            self._on_limit()
            return True

        return written

    def requested_w(self, serial: str) -> float | None:
        """The limit written on D-Bus within the last minute (W), else None."""
        held = self._written.get(serial)
        if held is None:
            return None
        if self.clock.monotonic() - held[1] > POWER_LIMIT_TIMEOUT_S:
            del self._written[serial]
            return None
        return held[0]

    def publish(self, snap: DtuSnapshot, nameplates: dict[str, float], *, dtu_ok: bool) -> None:
        """Refresh every service from the DTU's last answers."""
        now = self.clock.monotonic()
        for inv in self.inverters:
            svc = self.services[inv.serial]
            reading = snap.readings.get(inv.serial) if dtu_ok else None
            if reading is not None and now - reading.data_at > self.stale_s:
                reading = None
            nameplate = nameplates.get(inv.serial)
            requested = self.requested_w(inv.serial)
            values: dict[str, Any] = dict.fromkeys(pvinverter_measurements(inv.phase))
            values["/Ac/MaxPower"] = nameplate
            values["/Ac/PowerLimit"] = requested if requested is not None else nameplate
            if reading is None:
                values.update({"/StatusCode": STATUS_ERROR, "/ErrorCode": None, "/Connected": 0})
                svc.update(values)
                continue
            power = reading.ac_power_w
            values.update(
                {
                    "/Ac/Power": power,
                    f"/Ac/{inv.phase}/Power": power,
                    f"/Ac/{inv.phase}/Voltage": reading.ac_voltage_v,
                    f"/Ac/{inv.phase}/Current": reading.ac_current_a,
                    f"/Ac/{inv.phase}/Energy/Forward": reading.yield_total_kwh,
                    "/Ac/Energy/Forward": reading.yield_total_kwh,
                    "/StatusCode": STATUS_RUNNING if reading.producing else STATUS_STANDBY,
                    "/ErrorCode": 0,
                    "/Connected": int(reading.reachable),
                }
            )
            svc.update(values)
