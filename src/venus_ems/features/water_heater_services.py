"""The water heater on the GX: an ``acload`` with its power and mode, and a ``temperature``.

* ``com.victronenergy.acload.venusems_water_heater``: ``/Ac/Power`` and ``/Ac/Lx/Power`` (W the
  rod draws, read back from the device), ``/Ac/Energy/Forward`` (kWh, persisted), ``/Position``
  (0 AC input, 1 AC output), ``/Mode`` (**writable**: 0 off, 1 auto, 2 on), ``/Boost/Minutes``
  (**writable**: 1..``boost_max_min`` starts a boost for that long, 0 ends it),
  ``/Boost/Until`` (UNIX s, invalid without a boost), ``/State`` (0 off, 1 surplus, 2 grid,
  3 target reached, 4 fault) with ``/StateText``, ``/Temperature``, ``/TargetTemperature``,
  ``/MaxTemperature`` (°C), ``/Step`` and ``/Steps`` (W: the S2 OMBC operation modes of a
  resource manager attached to this service), ``/History/Switches``, ``/History/SurplusEnergy``
  and ``/History/GridEnergy`` (kWh), ``/ErrorCode`` (0 ok, 1 device unreachable, 2 sensor,
  3 step not confirmed).
* ``com.victronenergy.temperature.venusems_water_heater``: ``/Temperature`` (°C),
  ``/TemperatureType`` 5 (water heater), ``/Status`` 0 ok or 4 unknown.

A value that is not known is invalid, never 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ..runtime.config.water_heater import WaterHeaterConfig
from ..venus import DeviceInstance, Identity, PathSpec, Service
from ..venus.names import ACLOAD, TEMPERATURE, service_name
from ..venus.specs import INT, KWH, POSITIONS, STR, TEMPERATURE_TYPES, W, add_temperature_paths

__all__ = ["ACLOAD", "MODES", "STATES", "SUFFIX", "HeaterServices"]

SUFFIX = "venusems_water_heater"
MODES = ("off", "auto", "on")
STATES = {"off": 0, "surplus": 1, "grant": 1, "grid": 2, "satisfied": 3, "fault": 4}
PREFERRED_INSTANCE = 40
PRODUCT_ID = 0xFFFF
_C = PathSpec("d", "%.1F °C", unit="°C")


class HeaterServices:
    """Declares and refreshes the heater's two services; writes go to the callbacks."""

    def __init__(
        self,
        config: WaterHeaterConfig,
        *,
        address: str | None,
        connection: str,
        on_mode: Callable[[str], None],
        on_boost: Callable[[int], None],
    ) -> None:
        """Every path declared, nothing registered (``services`` lists them)."""
        self.config = config
        preferred = config.device_instance or PREFERRED_INSTANCE
        ident = Identity("Water heater (heating rod)", product_id=PRODUCT_ID, connection=connection)
        self.load = Service(
            service_name(ACLOAD, SUFFIX),
            identity=ident,
            device_instance=DeviceInstance("acload", preferred, SUFFIX),
            address=address,
        )
        svc = self.load
        phase = config.phase
        svc.add_path("/CustomName", config.custom_name or "", STR)
        svc.add_path("/Position", POSITIONS[config.position], INT)
        svc.add_path("/NrOfPhases", 1, INT)
        svc.add_path("/Ac/Power", None, W)
        svc.add_path(f"/Ac/{phase}/Power", None, W)
        svc.add_path("/Ac/Energy/Forward", None, KWH)
        svc.add_path(f"/Ac/{phase}/Energy/Forward", None, KWH)
        self._on_mode, self._on_boost = on_mode, on_boost
        svc.add_path(
            "/Mode",
            MODES.index(config.mode),
            PathSpec("i", writable=True, min=0, max=2, description="0 off, 1 auto, 2 on"),
            on_write=self._mode_written,
        )
        svc.add_path(
            "/Boost/Minutes",
            0,
            PathSpec("i", "%d min", writable=True, min=0, max=config.boost_max_min),
            on_write=self._boost_written,
        )
        svc.add_path("/Boost/Until", None, PathSpec("d", "%.0F", unit="s"))
        svc.add_path("/State", None, INT)
        svc.add_path("/StateText", "", STR)
        svc.add_path("/Temperature", None, _C)
        svc.add_path("/TargetTemperature", config.target_c, _C)
        svc.add_path("/MaxTemperature", config.max_c, _C)
        svc.add_path("/Step", None, W)
        svc.add_path("/Steps", "", STR)
        svc.add_path("/History/Switches", None, INT)
        svc.add_path("/History/SurplusEnergy", None, KWH)
        svc.add_path("/History/GridEnergy", None, KWH)
        svc.add_path("/ErrorCode", 0, INT)
        self.sensor = Service(
            service_name(TEMPERATURE, SUFFIX),
            identity=Identity("Water heater temperature", product_id=PRODUCT_ID),
            device_instance=DeviceInstance("temperature", preferred + 1, f"{SUFFIX}_t"),
            address=address,
        )
        add_temperature_paths(self.sensor, kind=TEMPERATURE_TYPES["water_heater"])
        self.sensor.add_path("/CustomName", config.custom_name or "Water heater", STR)

    @property
    def services(self) -> list[Service]:
        """The acload, then the temperature sensor."""
        return [self.load, self.sensor]

    def _mode_written(self, _path: str, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 2:
            return False
        self._on_mode(MODES[value])
        return True

    def _boost_written(self, _path: str, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int):
            return False
        if not 0 <= value <= self.config.boost_max_min:
            return False
        self._on_boost(value)
        return True

    def publish(self, values: dict[str, Any], temperature_c: float | None) -> None:
        """Refresh the acload paths in ``values`` and both temperatures (None = invalid)."""
        if temperature_c is not None and not math.isfinite(temperature_c):
            temperature_c = None
        power = values.get("/Ac/Power")
        energy = values.get("/Ac/Energy/Forward")
        phase = self.config.phase
        self.load.update(
            {
                **values,
                f"/Ac/{phase}/Power": power,
                f"/Ac/{phase}/Energy/Forward": energy,
                "/Temperature": temperature_c,
            }
        )
        self.sensor.update(
            {"/Temperature": temperature_c, "/Status": 0 if temperature_c is not None else 4}
        )
