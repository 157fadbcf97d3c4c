"""Drivers for external devices behind small protocols (``base``), opened through ``registry``.

Features use the protocols and the registry only, never a driver family (``shelly``, ...);
``blueprint`` is the driver to copy. Drivers never create their own HTTP session or Modbus
client (the caller passes one in), put a timeout on every call, stamp readings with the clock
time they were taken and raise only the ``DeviceError`` tree (plus ``ConfigError`` when a
device cannot do what the configuration asks).
"""

from __future__ import annotations

from .base import (
    Connection,
    Device,
    DeviceIdentity,
    InverterReading,
    LimitState,
    LimitStatus,
    LoadMode,
    LoadReading,
    MeterReading,
    PhaseMeter,
    PhaseReading,
    PowerLimiter,
    PowerMeter,
    PowerReading,
    SteppedLoad,
    Switch,
    is_fresh,
)

__all__ = [
    "Connection",
    "Device",
    "DeviceIdentity",
    "InverterReading",
    "LimitState",
    "LimitStatus",
    "LoadMode",
    "LoadReading",
    "MeterReading",
    "PhaseMeter",
    "PhaseReading",
    "PowerLimiter",
    "PowerMeter",
    "PowerReading",
    "SteppedLoad",
    "Switch",
    "is_fresh",
]
