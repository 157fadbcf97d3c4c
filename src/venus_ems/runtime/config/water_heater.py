"""``[water_heater]``: a stepped Modbus heating rod heated with PV surplus (dbus_water_heater).

Powers in W (+ = drawn), temperatures in °C, times in s; the daily window as local
``"HH:MM-HH:MM"`` (may wrap past midnight).
"""

from __future__ import annotations

import re
from itertools import pairwise
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from .base import DeviceInstance, FeatureTable, Items, Phase, _check_host

__all__ = ["WaterHeaterConfig", "parse_window"]

_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
_DEVICE = re.compile(r"^/dev/[A-Za-z0-9_./-]{1,100}$")
WATCHDOG_S = 300.0
"""The Heizstab firmware's watchdog: the keep-alive must come well within it."""


def parse_window(text: str) -> tuple[float, float]:
    """``"17:00-20:00"`` -> (61200.0, 72000.0) s after midnight; ValueError if malformed."""
    m = _WINDOW.match(text)
    if m is None:
        raise ValueError(f"expected HH:MM-HH:MM (24 h, local time), got {text!r}")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    start, end = (h1 * 60 + m1) * 60.0, (h2 * 60 + m2) * 60.0
    if start == end:
        raise ValueError(f"the window {text!r} is empty")
    return start, end


def _check_window(text: str) -> str:
    parse_window(text)
    return text


def _check_bus(host: str) -> str:
    """A serial device path (``/dev/ttyUSB0``) or a TCP host[:port] as for HTTP devices."""
    if host.startswith("/"):
        if not _DEVICE.match(host) or ".." in host:
            raise ValueError("expected a serial device path like /dev/ttyUSB0")
        return host
    return _check_host(host)


Window = Annotated[str, AfterValidator(_check_window)]
Bus = Annotated[str, AfterValidator(_check_bus)]
Step = Annotated[float, Field(ge=0.0, le=50_000.0)]


class WaterHeaterConfig(FeatureTable):
    """Heat water with the surplus through a stepped Modbus heating rod (see docs)."""

    feature = "venus_ems.features.water_heater:build"

    driver: Literal["heizstab"] = "heizstab"
    host: Bus | None = None
    transport: Literal["tcp", "rtu-over-tcp", "rtu"] | None = None
    baudrate: Literal[1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200] = 9600
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    unit: int = Field(default=33, ge=1, le=247)
    timeout_s: float = Field(default=1.0, ge=0.05, le=10.0)
    poll_interval_s: float = Field(default=2.0, ge=0.5, le=30.0)
    keepalive_s: float = Field(default=60.0, ge=5.0, le=WATCHDOG_S / 2)
    mode: Literal["off", "auto", "on"] = "auto"
    steps_w: Annotated[Items[Step], Field(max_length=16)] | None = None
    on_w: float | None = Field(default=None, ge=0.0, le=50_000.0)
    margin_w: float = Field(default=100.0, ge=0.0, le=5000.0)
    up_delay_s: float = Field(default=30.0, ge=0.0, le=3600.0)
    down_delay_s: float = Field(default=10.0, ge=0.0, le=600.0)
    min_switch_interval_s: float = Field(default=60.0, ge=0.0, le=3600.0)
    settle_s: float = Field(default=3.0, ge=0.0, le=60.0)
    target_c: float = Field(default=60.0, ge=20.0, le=90.0)
    hysteresis_k: float = Field(default=4.0, ge=0.5, le=30.0)
    max_c: float = Field(default=75.0, ge=30.0, le=95.0)
    daily_min_c: float | None = Field(default=None, ge=40.0, le=90.0)
    daily_window: Window = "17:00-20:00"
    boost_max_min: int = Field(default=240, ge=1, le=1440)
    grid_stale_s: float = Field(default=5.0, ge=1.0, le=300.0)
    temperature_stale_s: float = Field(default=30.0, ge=2.0, le=600.0)
    priority: int = Field(default=50, ge=0, le=100)
    min_on_s: float = Field(default=60.0, ge=0.0, le=3600.0)
    min_off_s: float = Field(default=60.0, ge=0.0, le=3600.0)
    grant_max_age_s: float = Field(default=15.0, ge=1.0, le=300.0)
    phase: Phase = "L1"
    position: Literal["ac-in", "ac-out"] = "ac-out"
    device_instance: DeviceInstance | None = None
    custom_name: str | None = Field(default=None, min_length=1, max_length=64)

    @property
    def connection_options(self) -> dict[str, object]:
        """The driver's ``Connection.options`` (transport and serial settings, unit)."""
        opts: dict[str, object] = {"unit": self.unit}
        transport = self.transport or ("rtu" if (self.host or "").startswith("/") else "tcp")
        opts["transport"] = transport
        if transport == "rtu":
            opts.update(baudrate=self.baudrate, parity=self.parity, stopbits=self.stopbits)
        return opts

    @model_validator(mode="after")
    def _consistent(self) -> WaterHeaterConfig:
        """A host when enabled; temperatures ordered; steps rise from 0; timing fits."""
        if self.enabled and self.host is None:
            raise ValueError("enabled = true needs host (serial device or host:port)")
        if self.target_c > self.max_c:
            raise ValueError(f"target_c ({self.target_c}) must be <= max_c ({self.max_c})")
        if self.daily_min_c is not None and self.daily_min_c > self.max_c:
            raise ValueError(f"daily_min_c ({self.daily_min_c}) must be <= max_c ({self.max_c})")
        steps = self.steps_w
        if steps is not None and (
            len(steps) < 2 or steps[0] != 0 or any(b <= a for a, b in pairwise(steps))
        ):
            raise ValueError("steps_w must start at 0 and rise (e.g. [0, 500, 1000])")
        if self.on_w is not None and self.on_w not in (steps or ()) and steps is not None:
            raise ValueError(f"on_w ({self.on_w}) must be one of steps_w")
        host = self.host or ""
        if self.transport == "rtu" and not host.startswith("/") and self.host is not None:
            raise ValueError("transport = rtu needs a serial device path as host")
        if self.transport in ("tcp", "rtu-over-tcp") and host.startswith("/"):
            raise ValueError(f"transport = {self.transport} needs host:port, not a device")
        if self.timeout_s * 4 > self.keepalive_s:
            raise ValueError("timeout_s must be at most a quarter of keepalive_s")
        if self.poll_interval_s >= self.temperature_stale_s:
            raise ValueError("poll_interval_s must be below temperature_stale_s")
        return self
