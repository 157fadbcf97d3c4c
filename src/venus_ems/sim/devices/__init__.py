"""Device emulators on loopback speaking the real HTTP protocols (Shelly gen1/gen2+, OpenDTU).

Each emulator is an async context manager serving on ``127.0.0.1`` (free port unless given):

    meter = StaticMeter(3, clock=clock)
    async with pro_3em(meter, clock=clock) as shelly:
        ...  # GET f"{shelly.url}/rpc/EM.GetStatus?id=0"

Measured values are read at request time from small protocol objects (``MeterSource``,
``SwitchSource``, ``InverterBank``), which the site physics implements or drives; the in-memory
``StaticMeter``, ``MemorySwitch`` and ``MemoryInverterBank`` serve tests and the demo. Every
emulator has ``faults.mode`` (``ok``, ``offline``, ``slow``, ``garbage``, ``truncated``,
``http500``, ``auth`` and the hostile ``oversized``, ``chunked_flood``, ``gzip_bomb``,
``deep_json``, ``huge_numbers``, ``trickle``; see ``faults`` and ``hostile``). Endpoints,
options and quirks are documented in ``shelly_gen1``, ``shelly_gen2`` (+ ``shelly_components``,
``shelly_models``) and ``opendtu``.
"""

from __future__ import annotations

from .faults import FAULT_MODES, FAULT_PARAMS, EmulatorServer, FaultMode, Faults
from .inverters import (
    AcValues,
    DcValues,
    InverterBank,
    InverterCommand,
    InverterSpec,
    InverterStatus,
    MemoryInverterBank,
)
from .opendtu import OpenDtuEmulator
from .shelly_gen1 import Gen1Identity, ShellyGen1Emulator
from .shelly_gen2 import Gen2Identity, ShellyGen2Emulator
from .shelly_models import (
    em_gen3,
    mini_1pm_gen3,
    plus_1pm,
    pm_mini_gen3,
    pro_3em,
    pro_em,
    s3em_63_gen3,
)
from .sources import (
    MemorySwitch,
    MeterSource,
    PhaseReading,
    StaticMeter,
    SwitchReading,
    SwitchSource,
)

__all__ = [
    "FAULT_MODES",
    "FAULT_PARAMS",
    "AcValues",
    "DcValues",
    "EmulatorServer",
    "FaultMode",
    "Faults",
    "Gen1Identity",
    "Gen2Identity",
    "InverterBank",
    "InverterCommand",
    "InverterSpec",
    "InverterStatus",
    "MemoryInverterBank",
    "MemorySwitch",
    "MeterSource",
    "OpenDtuEmulator",
    "PhaseReading",
    "ShellyGen1Emulator",
    "ShellyGen2Emulator",
    "StaticMeter",
    "SwitchReading",
    "SwitchSource",
    "em_gen3",
    "mini_1pm_gen3",
    "plus_1pm",
    "pm_mini_gen3",
    "pro_3em",
    "pro_em",
    "s3em_63_gen3",
]
