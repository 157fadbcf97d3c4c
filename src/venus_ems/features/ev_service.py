"""``com.victronenergy.evcharger.venusems_wattpilot``: the charger as gui-v2 and VRM show it.

Read-only: ``/Status`` (0 disconnected, 1 connected, 2 charging, 3 charged, 4 waiting for sun,
6 waiting for start, 22/23 switching to 3/1 phases), ``/Connected``, ``/Current`` (A, sum of
the phases), ``/Ac/Power`` and ``/Ac/L1..3/Power`` (W), ``/Ac/Energy/Forward`` (kWh, total),
``/Session/Energy`` (kWh), ``/Session/Time`` and ``/ChargingTime`` (s of wall time charging in
this session), ``/MinCurrent``, ``/Position``, ``/S2/0/Active`` (0: no S2 resource manager).
Writable from the GUI/VRM: ``/Mode`` (0 manual, 1 auto, 2 scheduled), ``/StartStop`` (0/1,
manual mode), ``/SetCurrent`` (A per phase, manual mode), ``/MaxCurrent`` (A, caps every mode),
``/AutoStart``, ``/CustomName``. Values the charger has not reported are invalid, never 0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..devices.base import EvChargerReading
from ..runtime.config import EvChargerConfig
from ..venus import DeviceInstance, Identity, PathSpec, Service
from ..venus.names import EVCHARGER, service_name
from ..venus.specs.units import INT, KWH, STR, W

__all__ = [
    "MODES",
    "STATUS_CHARGED",
    "STATUS_CHARGING",
    "STATUS_CONNECTED",
    "STATUS_DISCONNECTED",
    "STATUS_WAIT_START",
    "STATUS_WAIT_SUN",
    "EvChargerService",
]

SUFFIX = "venusems_wattpilot"
PREFERRED_INSTANCE = 40
MODES = ("manual", "auto", "scheduled")
STATUS_DISCONNECTED, STATUS_CONNECTED, STATUS_CHARGING, STATUS_CHARGED = 0, 1, 2, 3
STATUS_WAIT_SUN, STATUS_WAIT_START = 4, 6
STATUS_TO_3P, STATUS_TO_1P = 22, 23
_A = PathSpec("d", "%.1F A", unit="A")
_S = PathSpec("i", "%d s", unit="s")
_MEASURED = (
    "/Current",
    "/Ac/Power",
    "/Ac/L1/Power",
    "/Ac/L2/Power",
    "/Ac/L3/Power",
    "/Ac/Energy/Forward",
    "/Session/Energy",
    "/Status",
)

OnWrite = Callable[[str, Any], bool]


class EvChargerService:
    """The evcharger service; writes go to ``on_write(path, value)`` (False refuses)."""

    def __init__(self, config: EvChargerConfig, *, address: str | None, on_write: OnWrite) -> None:
        """Every path declared with the configured mode, nothing registered yet."""
        self.config = config
        top = float(config.max_current_a)
        self.service = Service(
            service_name(EVCHARGER, SUFFIX),
            identity=Identity("Fronius Wattpilot", product_id=0xFFFF, connection="Websocket"),
            device_instance=DeviceInstance(
                "evcharger", config.device_instance or PREFERRED_INSTANCE, SUFFIX
            ),
            address=address,
        )
        svc = self.service
        svc.add_path("/CustomName", config.custom_name or "", _writable(STR), on_write=on_write)
        svc.add_path(
            "/Mode",
            MODES.index(config.mode),
            PathSpec("i", writable=True, min=0, max=2),
            on_write=on_write,
        )
        svc.add_path("/StartStop", 0, PathSpec("i", writable=True, min=0, max=1), on_write=on_write)
        svc.add_path(
            "/SetCurrent",
            float(config.manual_current_a),
            PathSpec("d", "%.0F A", unit="A", writable=True, min=config.min_current_a, max=top),
            on_write=on_write,
        )
        svc.add_path(
            "/MaxCurrent",
            top,
            PathSpec("d", "%.0F A", unit="A", writable=True, min=config.min_current_a, max=top),
            on_write=on_write,
        )
        svc.add_path("/AutoStart", 1, PathSpec("i", writable=True, min=0, max=1), on_write=on_write)
        svc.add_path("/MinCurrent", float(config.min_current_a), _A)
        svc.add_path("/Position", 0 if config.position == "ac-out" else 1, INT)
        svc.add_path("/Status", None, INT)
        svc.add_path("/Current", None, _A)
        svc.add_path("/Ac/Power", None, W)
        for p in (1, 2, 3):
            svc.add_path(f"/Ac/L{p}/Power", None, W)
        svc.add_path("/Ac/Energy/Forward", None, KWH)
        svc.add_path("/Session/Energy", None, KWH)
        svc.add_path("/Session/Time", None, _S)
        svc.add_path("/ChargingTime", None, _S)
        svc.add_path("/Serial", "", STR)
        svc.add_path("/S2/0/Active", 0, INT)

    def publish(
        self, reading: EvChargerReading | None, status: int | None, session_s: float | None
    ) -> None:
        """Refresh from a fresh reading (None: every measured value invalid, not 0)."""
        values: dict[str, Any] = dict.fromkeys(_MEASURED)
        values["/Connected"] = int(reading is not None)
        if reading is not None:
            values.update(
                {
                    "/Status": status,
                    "/Current": sum(p.current_a or 0.0 for p in reading.phases)
                    if reading.charging
                    else 0.0,
                    "/Ac/Power": reading.power_w,
                    "/Ac/L1/Power": reading.phases[0].power_w,
                    "/Ac/L2/Power": reading.phases[1].power_w,
                    "/Ac/L3/Power": reading.phases[2].power_w,
                    "/Ac/Energy/Forward": reading.total_energy_kwh,
                    "/Session/Energy": reading.session_energy_kwh,
                }
            )
        seconds = None if session_s is None else round(session_s)
        values["/Session/Time"] = seconds
        values["/ChargingTime"] = seconds
        self.service.update(values)

    def mode(self) -> str:
        """The mode in force (``/Mode``)."""
        value = self.service["/Mode"]
        return MODES[value] if isinstance(value, int) and 0 <= value < len(MODES) else "manual"

    def number(self, path: str) -> float | None:
        """A numeric path's value (None when invalid)."""
        value = self.service[path]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return float(value)


def _writable(spec: PathSpec) -> PathSpec:
    return PathSpec(spec.dbus_type, spec.text, spec.unit, writable=True, max_length=64)
