"""Meters and sensors: ``[[grid_meter]]`` (M1), ``[[pv_meter]]`` (M2), ``[[temperature]]`` (M3)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from ...devices.registry import DEFAULT_DRIVER, DRIVERS
from .base import (
    DeviceInstance,
    FeatureName,
    FeatureTable,
    Generation,
    Host,
    Items,
    Phase,
    StrictModel,
    SubscribeTopic,
)
from .secrets import Secret

__all__ = [
    "Driver",
    "GridChannelConfig",
    "GridMeterConfig",
    "PvMeterConfig",
    "TemperatureConfig",
    "TemperatureType",
]

TemperatureType = Literal[
    "battery", "fridge", "generic", "room", "outdoor", "water_heater", "freezer"
]


class GridChannelConfig(StrictModel):
    """One meter channel: which phase it measures and whether its sign is inverted."""

    channel: int = Field(ge=0, le=2)
    phase: Phase
    invert: bool = False


def _check_driver(name: str) -> str:
    """A driver of ``devices.registry.DRIVERS``."""
    if name not in DRIVERS:
        raise ValueError(f"expected one of the device drivers {', '.join(sorted(DRIVERS))}")
    return name


Driver = Annotated[str, AfterValidator(_check_driver)]
"""Name of a device driver in ``devices.registry`` (``"shelly"``, ...)."""


class _DeviceCommon(FeatureTable):
    """Options every device-based meter has; ``generation`` is an option of the shelly driver."""

    name: FeatureName
    driver: Driver = DEFAULT_DRIVER
    host: Host
    generation: Generation = "auto"
    username: str | None = Field(default=None, min_length=1)
    password: Secret | None = None
    timeout_s: float = Field(default=2.0, ge=0.1, le=30.0)
    hold_s: float = Field(default=5.0, ge=1.0, le=300.0)
    device_instance: DeviceInstance | None = None
    custom_name: str | None = Field(default=None, min_length=1, max_length=64)

    def _check_timing(self, poll_interval_s: float) -> None:
        """Polling and a single timeout must fit inside the hold time; driver options fit."""
        if self.generation != "auto" and self.driver != "shelly":
            raise ValueError(f'generation is an option of driver = "shelly", not {self.driver!r}')
        if poll_interval_s > self.hold_s:
            raise ValueError(
                f"poll_interval_s ({poll_interval_s}) must be <= hold_s ({self.hold_s})"
            )
        if self.timeout_s > self.hold_s:
            raise ValueError(f"timeout_s ({self.timeout_s}) must be <= hold_s ({self.hold_s})")


class GridMeterConfig(_DeviceCommon):
    """An energy meter published as ``com.victronenergy.grid`` (+ power = import)."""

    feature = "venus_ems.features.grid_meter:build"

    poll_interval_s: float = Field(default=1.0, ge=0.1, le=1.0)
    phases: Literal[1, 3] = 3
    channels: Items[GridChannelConfig] | None = None
    metering: Literal["gross", "net"] = "gross"
    counter_file: str | None = Field(default=None, min_length=1)

    @property
    def channel_map(self) -> tuple[GridChannelConfig, ...]:
        """``channels``, or channel n -> phase L(n+1) without inversion."""
        if self.channels is not None:
            return self.channels
        phases: tuple[Phase, ...] = ("L1", "L2", "L3")
        return tuple(GridChannelConfig(channel=i, phase=phases[i]) for i in range(self.phases))

    @model_validator(mode="after")
    def _consistent(self) -> GridMeterConfig:
        """One channel per phase, no channel or phase used twice, timing fits the hold time."""
        self._check_timing(self.poll_interval_s)
        if self.channels is not None:
            if len(self.channels) != self.phases:
                raise ValueError(
                    f"channels lists {len(self.channels)} entries but phases = {self.phases}"
                )
            if len({c.channel for c in self.channels}) != len(self.channels):
                raise ValueError("channels uses the same channel twice")
            if len({c.phase for c in self.channels}) != len(self.channels):
                raise ValueError("channels maps two channels to the same phase")
        return self


class PvMeterConfig(_DeviceCommon):
    """A switch/PM meter published as ``com.victronenergy.pvinverter`` (+ = producing)."""

    feature = "venus_ems.features.pv_meter:build"

    poll_interval_s: float = Field(default=1.0, ge=0.1, le=60.0)
    channel: int = Field(default=0, ge=0, le=3)
    phase: Phase = "L1"
    position: Literal["ac-in", "ac-out", "ac-in-2"] = "ac-in"

    @model_validator(mode="after")
    def _consistent(self) -> PvMeterConfig:
        """Timing fits the hold time."""
        self._check_timing(self.poll_interval_s)
        return self


class TemperatureConfig(FeatureTable):
    """MQTT topics published as one ``com.victronenergy.temperature`` service (degC, %, hPa)."""

    feature = "venus_ems.features.temperature:build"

    name: FeatureName
    topic: SubscribeTopic
    humidity_topic: SubscribeTopic | None = None
    pressure_topic: SubscribeTopic | None = None
    payload: Literal["number", "json"] = "number"
    json_field: str | None = Field(default=None, min_length=1)
    humidity_json_field: str | None = Field(default=None, min_length=1)
    pressure_json_field: str | None = Field(default=None, min_length=1)
    temperature_type: TemperatureType = "generic"
    stale_s: float = Field(default=300.0, ge=1.0, le=86_400.0)
    device_instance: DeviceInstance | None = None
    custom_name: str | None = Field(default=None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _consistent(self) -> TemperatureConfig:
        """JSON field names go with ``payload = "json"`` and only then."""
        fields = (self.json_field, self.humidity_json_field, self.pressure_json_field)
        if self.payload == "json" and self.json_field is None:
            raise ValueError('payload = "json" requires json_field (the temperature field)')
        if self.payload == "number" and any(f is not None for f in fields):
            raise ValueError('json_field options need payload = "json"')
        return self
