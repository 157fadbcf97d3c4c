"""``[micro_inverter_control]`` (C3): zero feed-in with micro-inverters behind an OpenDTU.

Powers in W (grid + = import, inverter AC + = producing); limits in whole percent of an
inverter's nameplate; SoC in %, voltages in V, times in s.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from .base import DeviceInstance, FeatureTable, Host, Items, Phase, StrictModel
from .meters import Driver
from .secrets import Secret

__all__ = ["MicroBatteryConfig", "MicroInverterConfig", "MicroInverterControlConfig"]

_SERIAL_CHARS = frozenset("0123456789ABCDEFabcdef")


def _check_serial(serial: str) -> str:
    """The serial as OpenDTU lists it (hex digits, which Hoymiles serials are)."""
    if not 1 <= len(serial) <= 20 or not set(serial) <= _SERIAL_CHARS:
        raise ValueError("expected the inverter serial as OpenDTU shows it (up to 20 hex digits)")
    return serial


Serial = Annotated[str, AfterValidator(_check_serial)]


class MicroInverterConfig(StrictModel):
    """One inverter behind the DTU.

    ``source = "battery"``: fed from the battery and controlled for zero feed-in, published as
    ``com.victronenergy.dcload`` (the group as ``dcsystem``). ``source = "pv"``: fed by panels,
    published as ``com.victronenergy.pvinverter`` with a writable ``/Ac/PowerLimit`` (W) for
    Victron's feed-in limiting; not regulated by this feature (but counted in ``total_cap_w``);
    ``phase`` and ``position`` say where it feeds (PV-fed only).
    ``max_power_w``: nameplate (100 %), read from the DTU when not set. ``dead_time_s``: from a
    limit command to its full effect; default by model (HM 1-2 inputs 5 s, 4 inputs 20 s,
    others 15 s), then learnt unless ``learn_dead_time = false``.
    """

    serial: Serial
    source: Literal["battery", "pv"] = "battery"
    name: str | None = Field(default=None, min_length=1, max_length=64)
    max_power_w: float | None = Field(default=None, gt=0.0, le=5000.0)
    max_w: float | None = Field(default=None, gt=0.0, le=5000.0)
    min_pct: int = Field(default=3, ge=0, le=100)
    safe_pct: int | None = Field(default=None, ge=0, le=100)
    priority: int = Field(default=0, ge=-100, le=100)
    dead_time_s: float | None = Field(default=None, gt=0.0, le=120.0)
    learn_dead_time: bool = True
    phase: Phase = "L1"
    position: Literal["ac-in", "ac-out", "ac-in-2"] = "ac-in"
    device_instance: DeviceInstance | None = None

    @model_validator(mode="after")
    def _consistent(self) -> MicroInverterConfig:
        """The safe limit lies between the minimum and 100 %; the maximum within the nameplate."""
        if self.safe_pct is not None and self.safe_pct < self.min_pct:
            raise ValueError(f"safe_pct ({self.safe_pct}) must be >= min_pct ({self.min_pct})")
        if (
            self.max_w is not None
            and self.max_power_w is not None
            and self.max_w > self.max_power_w
        ):
            raise ValueError(f"max_w ({self.max_w}) exceeds max_power_w ({self.max_power_w})")
        return self


class MicroBatteryConfig(StrictModel):
    """When the battery may feed the inverters (hysteresis between stop and start)."""

    stop_soc_pct: float | None = Field(default=20.0, ge=0.0, le=99.0)
    start_soc_pct: float | None = Field(default=25.0, ge=1.0, le=100.0)
    stop_voltage_v: float | None = Field(default=None, gt=0.0, le=1000.0)
    start_voltage_v: float | None = Field(default=None, gt=0.0, le=1000.0)
    seasonal: bool = False
    full_soc_pct: float | None = Field(default=None, ge=50.0, le=100.0)
    full_hysteresis_pct: float = Field(default=2.0, ge=0.0, le=20.0)
    efficiency: float = Field(default=0.95, gt=0.5, le=1.0)

    @model_validator(mode="after")
    def _pairs(self) -> MicroBatteryConfig:
        """Stop and start come in pairs, start above stop."""
        for what, stop, start in (
            ("soc_pct", self.stop_soc_pct, self.start_soc_pct),
            ("voltage_v", self.stop_voltage_v, self.start_voltage_v),
        ):
            if (stop is None) != (start is None):
                raise ValueError(f"stop_{what} and start_{what} go together")
            if stop is not None and start is not None and start <= stop:
                raise ValueError(f"start_{what} ({start}) must be above stop_{what} ({stop})")
        if self.seasonal and self.stop_soc_pct is None:
            raise ValueError("seasonal = true needs stop_soc_pct and start_soc_pct")
        return self


class MicroInverterControlConfig(FeatureTable):
    """Hold the grid at ``target_w`` with battery-fed micro-inverters behind one OpenDTU."""

    feature = "venus_ems.features.micro_inverter:build"

    driver: Driver = "opendtu"
    host: Host | None = None
    username: str | None = Field(default=None, min_length=1)
    password: Secret | None = None
    timeout_s: float = Field(default=2.5, ge=0.1, le=30.0)
    poll_interval_s: float = Field(default=1.0, ge=0.5, le=10.0)
    inverters: Items[MicroInverterConfig] = ()
    target_w: float = Field(default=25.0, ge=-5000.0, le=5000.0)
    down_band_w: float = Field(default=25.0, ge=0.0, le=1000.0)
    up_band_w: float = Field(default=15.0, ge=0.0, le=1000.0)
    up_delay_s: float = Field(default=2.0, ge=0.0, le=120.0)
    max_increase_w: float | None = Field(default=None, gt=0.0, le=50_000.0)
    total_cap_w: float | None = Field(default=800.0, ge=0.0, le=50_000.0)
    stale_input_s: float = Field(default=5.0, ge=1.0, le=300.0)
    dtu_stale_s: float = Field(default=30.0, ge=5.0, le=600.0)
    max_failures: int = Field(default=3, ge=1, le=100)
    restart_backoff_s: float = Field(default=600.0, ge=60.0, le=86_400.0)
    rotate_s: float = Field(default=3600.0, ge=60.0, le=7 * 86_400.0)
    ess_margin_w: float = Field(default=50.0, ge=0.0, le=5000.0)
    battery: MicroBatteryConfig = MicroBatteryConfig()
    device_instance: DeviceInstance | None = None
    custom_name: str | None = Field(default=None, min_length=1, max_length=64)

    @property
    def low_edge_w(self) -> float:
        """The lowest grid power this feature holds (W): below it, the inverters go down."""
        return self.target_w - self.down_band_w

    @model_validator(mode="after")
    def _consistent(self) -> MicroInverterControlConfig:
        """Enabled needs a host and battery-fed inverters; serials unique; timing fits."""
        serials = [i.serial.upper() for i in self.inverters]
        if len(set(serials)) != len(serials):
            raise ValueError("an inverter serial is listed twice")
        if self.enabled:
            if self.host is None:
                raise ValueError("enabled = true needs host (the OpenDTU)")
            if not any(i.source == "battery" for i in self.inverters):
                raise ValueError(
                    "enabled = true needs at least one [[micro_inverter_control.inverters]] "
                    'with source = "battery"'
                )
        if self.timeout_s > self.stale_input_s:
            raise ValueError(
                f"timeout_s ({self.timeout_s}) must be <= stale_input_s ({self.stale_input_s})"
            )
        if self.poll_interval_s >= self.dtu_stale_s:
            raise ValueError("poll_interval_s must be below dtu_stale_s")
        return self
