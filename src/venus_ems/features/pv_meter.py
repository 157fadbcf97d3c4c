"""M2: a plug or PM measuring a PV inverter, published as ``com.victronenergy.pvinverter``.

One service ``com.victronenergy.pvinverter.venusems_<name>`` per ``[[pv_meter]]``: any device
whose driver implements ``PowerMeter`` on ``channel`` (``driver = "shelly"``, the default:
Shelly Plug/Plug S, 1PM (gen1), Plus 1PM, 1PM Mini, Plus PM Mini, PM Mini Gen3; ``Switch`` or
``PM1`` component). Paths: ``/Ac/Power`` and ``/Ac/L<phase>/Power`` (W, + = producing),
``/Ac/L<phase>/Voltage|Current``, ``/Ac/L<phase>/Energy/Forward`` and ``/Ac/Energy/Forward``
(kWh produced), ``/Position`` (0 AC-in, 1 AC-out, 2 AC-in 2), ``/StatusCode`` (7 running while
producing at least :data:`RUNNING_MIN_W`, 8 standby, 10 error once the device is lost),
``/ErrorCode`` (0; invalid while lost), ``/Ac/MaxPower`` (invalid: unknown), ``/Connected``.

Sign: gen1 and gen2 devices report the magnitude of the power only, and a gen3 device is
negative or positive depending on which side the inverter is wired to, so the produced power is
the magnitude on every generation. Energy: the device's total in both directions (what it
counts as ``aenergy.total``/``total``), followed reset-safe and persisted like the grid meter's
counters (``<state_dir>/pv_meter_<name>.json``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from ..devices import Device, PowerMeter, PowerReading
from ..errors import ConfigError
from ..runtime.config import PvMeterConfig
from ..venus import Service
from ..venus.names import PVINVERTER
from ..venus.names import service_name as _service_name
from ..venus.specs import POSITIONS, add_pvinverter_paths, pvinverter_measurements
from .meter import MeterFeature, Reading

__all__ = [
    "POSITIONS",
    "RUNNING_MIN_W",
    "STATUS_ERROR",
    "STATUS_RUNNING",
    "STATUS_STANDBY",
    "PvMeter",
    "build",
    "service_name",
]

STATUS_RUNNING = 7
STATUS_STANDBY = 8
STATUS_ERROR = 10
RUNNING_MIN_W = 5.0
"""Below this the inverter counts as standby (a plug meter reads a few W of noise or standby)."""


def service_name(name: str) -> str:
    """D-Bus service name of the PV meter called ``name``."""
    return _service_name(PVINVERTER, f"venusems_{name}")


class PvMeter(MeterFeature):
    """A power meter (``PowerMeter``) as a PV inverter on one phase (feature M2)."""

    service_class: ClassVar[str] = "pvinverter"
    settings_group: ClassVar[str] = "PvMeter"
    product_kind: ClassVar[str] = "PV meter"
    config: PvMeterConfig

    def __init__(self, config: PvMeterConfig, *, save_interval_s: float = 60.0) -> None:
        """Prepare the meter; nothing is published until :meth:`run`."""
        super().__init__(config, table="pv_meter", save_interval_s=save_interval_s)
        self.phase = config.phase

    def service_name(self) -> str:
        """``com.victronenergy.pvinverter.venusems_<name>``."""
        return service_name(self.config.name)

    def declare(self, svc: Service) -> None:
        """PV inverter paths for the configured phase and position."""
        add_pvinverter_paths(svc, (self.phase,), position=POSITIONS[self.config.position])

    def measurement_paths(self) -> list[str]:
        """Everything measured (invalid while the device is lost)."""
        return [*pvinverter_measurements(self.phase), "/ErrorCode"]

    def lost_values(self) -> dict[str, Any]:
        """Measurements invalid, ``/StatusCode`` 10 (error)."""
        return {**super().lost_values(), "/StatusCode": STATUS_ERROR}

    def _meter(self, device: Device) -> PowerMeter:
        """The device as a ``PowerMeter`` metering ``channel``; ConfigError otherwise."""
        channel = self.config.channel
        metered = device.power_channels if isinstance(device, PowerMeter) else ()
        if channel not in metered or not isinstance(device, PowerMeter):
            have = ", ".join(map(str, metered)) or "none"
            raise ConfigError(
                f"[[pv_meter]] {self.config.name!r}: {device.identity.product_name} at "
                f"{self.config.host} has no power meter on channel {channel} (metered: {have})"
            )
        return device

    def check_device(self, device: Device) -> str:
        """ConfigError unless ``channel`` carries a power meter; returns the source key."""
        self._meter(device)
        return f"{device.identity.serial}|{self.config.channel}"

    async def read(self, device: Device) -> PowerReading:
        """The configured channel."""
        return await self._meter(device).read_power(self.config.channel)

    def on_lost(self) -> None:
        """Nothing is integrated, so nothing to forget."""

    def energy_values(self) -> dict[str, float | None]:
        """The produced-energy counter as it may be published (kWh)."""
        energy = self.counters.published("forward")
        return {f"/Ac/{self.phase}/Energy/Forward": energy, "/Ac/Energy/Forward": energy}

    def values(self, reading: Reading) -> dict[str, Any]:
        """Produced power, phase values and the produced-energy counter; path -> value."""
        assert isinstance(reading, PowerReading)
        produced_w = abs(reading.power_w) + 0.0
        self.counters.track("forward", reading.energy_total_kwh)
        current = None if reading.current_a is None else abs(reading.current_a)
        p = self.phase
        return {
            "/Ac/Power": produced_w,
            f"/Ac/{p}/Power": produced_w,
            f"/Ac/{p}/Voltage": reading.voltage_v,
            f"/Ac/{p}/Current": current,
            **self.energy_values(),
            "/StatusCode": STATUS_RUNNING if produced_w >= RUNNING_MIN_W else STATUS_STANDBY,
            "/ErrorCode": 0,
        }


def build(config: PvMeterConfig) -> PvMeter:
    """Registry factory for ``[[pv_meter]]``."""
    return PvMeter(config)
