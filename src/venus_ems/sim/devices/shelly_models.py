"""Factories for the Shelly gen2+ models venus-ems reads, as ``ShellyGen2Emulator`` instances.

Every factory takes the protocol object(s) to read, then the options ``mac`` (default: a fixed,
model-specific one), ``name`` (None = unnamed, as shipped), ``password`` (enables digest auth),
``clock`` and ``port``. Device ids follow the real pattern ``<prefix>-<mac lower case>``. The
identities (model, ``app``, id prefix, generation, firmware) are those of real devices, from
``shelly_identities``.
"""

from __future__ import annotations

from dataclasses import replace

from ...clock import Clock
from .relay import RelayControl
from .shelly_components import (
    Em1Component,
    Em1DataComponent,
    EmComponent,
    EmDataComponent,
    Pm1Component,
    SwitchComponent,
    SwitchMetering,
)
from .shelly_gen2 import Gen2Identity, ShellyGen2Emulator
from .shelly_identities import (
    EM_GEN3,
    MINI_1PM_GEN3,
    PLUS_1PM,
    PM_MINI_GEN3,
    PRO_3EM,
    PRO_EM,
    S3EM_63_GEN3,
)
from .sources import MemorySwitch, MeterSource, SwitchSource

__all__ = [
    "em_gen3",
    "mini_1pm_gen3",
    "plus_1pm",
    "pm_mini_gen3",
    "pro_3em",
    "pro_em",
    "s3em_63_gen3",
]


def _device(
    identity: Gen2Identity,
    mac: str | None,
    name: str | None,
    password: str | None,
    clock: Clock | None,
    port: int,
) -> ShellyGen2Emulator:
    identity = replace(identity, mac=mac or identity.mac, name=name)
    return ShellyGen2Emulator(identity, password=password, clock=clock, port=port)


def _switch(emu: ShellyGen2Emulator, source: SwitchSource, metering: SwitchMetering | None) -> None:
    relay = RelayControl(source, emu.clock, emu.spawn)
    emu.add(SwitchComponent(relay, emu.clock, 0, metering=metering))


def pro_3em(
    meter: MeterSource,
    *,
    neutral_current_a: float | None = None,
    mac: str | None = None,
    name: str | None = None,
    password: str | None = None,
    clock: Clock | None = None,
    port: int = 0,
) -> ShellyGen2Emulator:
    """Pro 3EM (triphase): ``em:0`` + ``emdata:0`` over a 3-channel meter; ValueError otherwise."""
    emu = _device(PRO_3EM, mac, name, password, clock, port)
    emu.add(EmComponent(meter, 0, neutral_current_a=neutral_current_a))
    emu.add(EmDataComponent(meter, 0))
    return emu


def s3em_63_gen3(
    meter: MeterSource,
    *,
    mac: str | None = None,
    name: str | None = None,
    password: str | None = None,
    clock: Clock | None = None,
    port: int = 0,
) -> ShellyGen2Emulator:
    """3EM-63 Gen3 (triphase): ``em:0`` + ``emdata:0`` like the Pro 3EM, no neutral CT."""
    emu = _device(S3EM_63_GEN3, mac, name, password, clock, port)
    emu.add(EmComponent(meter, 0))
    emu.add(EmDataComponent(meter, 0))
    return emu


def _two_channel(
    emu: ShellyGen2Emulator, meter: MeterSource, contactor: SwitchSource | None
) -> ShellyGen2Emulator:
    channels = len(meter.read())
    if channels != 2:
        raise ValueError(f"{emu.identity.model} needs a meter with 2 channels, got {channels}")
    for ch in range(2):
        emu.add(Em1Component(meter, ch))
        emu.add(Em1DataComponent(meter, ch))
    _switch(emu, contactor if contactor is not None else MemorySwitch(), None)
    return emu


def pro_em(
    meter: MeterSource,
    *,
    contactor: SwitchSource | None = None,
    mac: str | None = None,
    name: str | None = None,
    password: str | None = None,
    clock: Clock | None = None,
    port: int = 0,
) -> ShellyGen2Emulator:
    """Pro EM-50: ``em1:0/1`` + ``em1data:0/1`` (2-channel meter) and contactor ``switch:0``."""
    return _two_channel(_device(PRO_EM, mac, name, password, clock, port), meter, contactor)


def em_gen3(
    meter: MeterSource,
    *,
    contactor: SwitchSource | None = None,
    mac: str | None = None,
    name: str | None = None,
    password: str | None = None,
    clock: Clock | None = None,
    port: int = 0,
) -> ShellyGen2Emulator:
    """EM gen3: like the Pro EM (two ``em1`` channels and ``switch:0``), ``gen: 3``."""
    return _two_channel(_device(EM_GEN3, mac, name, password, clock, port), meter, contactor)


def plus_1pm(
    switch: SwitchSource,
    *,
    mac: str | None = None,
    name: str | None = None,
    password: str | None = None,
    clock: Clock | None = None,
    port: int = 0,
) -> ShellyGen2Emulator:
    """Plus 1PM (gen2): metered ``switch:0``, ``apower`` unsigned, no pf/freq."""
    emu = _device(PLUS_1PM, mac, name, password, clock, port)
    _switch(emu, switch, SwitchMetering())
    return emu


def mini_1pm_gen3(
    switch: SwitchSource,
    *,
    mac: str | None = None,
    name: str | None = None,
    password: str | None = None,
    clock: Clock | None = None,
    port: int = 0,
) -> ShellyGen2Emulator:
    """1PM Mini gen3: metered ``switch:0`` with signed ``apower``, ``freq`` and ``ret_aenergy``."""
    emu = _device(MINI_1PM_GEN3, mac, name, password, clock, port)
    _switch(emu, switch, SwitchMetering(signed=True, freq=True, returned=True))
    return emu


def pm_mini_gen3(
    source: SwitchSource,
    *,
    mac: str | None = None,
    name: str | None = None,
    password: str | None = None,
    clock: Clock | None = None,
    port: int = 0,
) -> ShellyGen2Emulator:
    """PM Mini gen3: ``pm1:0`` (signed ``apower``, ``ret_aenergy``); ignores the relay state."""
    emu = _device(PM_MINI_GEN3, mac, name, password, clock, port)
    emu.add(Pm1Component(source, emu.clock, 0))
    return emu
