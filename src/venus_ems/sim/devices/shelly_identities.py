"""What real Shelly gen2+ devices answer on ``GET /shelly``, as captured from real devices.

The emulators take their identities from here and from nowhere else: never from the driver's
model table (``venus_ems.devices.shelly``), so that a wrong code in the driver shows up as a
wrong product name in the tests instead of being copied into the emulator. Each entry names
the capture it was read from (model, ``app``, device-id prefix, generation, firmware,
profile); the MACs are ours. ``tests/sim/test_emulator_identities.py`` checks the Pro 3EM
against the shared vector and that no emulator module imports the driver.

Captures (``repo @ commit : path``):

* Pro 3EM: ``vectors/shelly-gen2-pro3em-shelly-info.json`` (aioshelly @75b7e94 : fixtures/
  gen2_Shelly Pro 3EM_SPEM-003CEBEU_20231219-134001-1.1.0-g34b5d4f.json)
* Pro EM-50: Luligu/matterbridge-shelly @0fcad83 : src/mock/shellyproem50-A0DD6CA09158.json
  (the capture the ``shelly-gen2-proem-*`` vectors come from)
* EM Gen3: Luligu/matterbridge-shelly @0fcad83 : src/mock/shellyemg3-84FCE636582C.json
* 3EM-63 Gen3: Luligu/matterbridge-shelly @3605045 : src/mock/shelly3em63g3-84FCE6367400.json
* Plus 1PM: aioshelly @75b7e94 : fixtures/gen2_Shelly Plus 1PM_SNSW-001P16EU_20231219-133934-
  1.1.0-g34b5d4f.json
* 1PM Mini Gen3: Luligu/matterbridge-shelly @0f5173c : src/mock/
  shelly1pmminig3-543204519264.json
* PM Mini Gen3: Luligu/matterbridge-shelly @0f5173c : src/mock/shellypmminig3-84FCE63957F4.json
"""

from __future__ import annotations

from .shelly_gen2 import Gen2Identity

__all__ = [
    "EM_GEN3",
    "IDENTITIES",
    "MINI_1PM_GEN3",
    "PLUS_1PM",
    "PM_MINI_GEN3",
    "PRO_3EM",
    "PRO_EM",
    "S3EM_63_GEN3",
]

PRO_3EM = Gen2Identity(
    "SPEM-003CEBEU",
    "Pro3EM",
    "shellypro3em",
    "08F9E0A1B201",
    fw_id="20231219-134001/1.1.0-g34b5d4f",
    ver="1.1.0",
    profile="triphase",
)
PRO_EM = Gen2Identity(
    "SPEM-002CEBEU50",
    "ProEM",
    "shellyproem50",
    "08F9E0A1B202",
    fw_id="20241011-114451/1.4.4-g6d2a586",
    ver="1.4.4",
)
EM_GEN3 = Gen2Identity(
    "S3EM-002CXCEU",
    "EMG3",
    "shellyemg3",
    "08F9E0A1B203",
    gen=3,
    fw_id="20250220-082138/1.5.0-g0087a06",
    ver="1.5.0",
)
S3EM_63_GEN3 = Gen2Identity(
    "S3EM-003CXCEU63",
    "S3EMG3",
    "shelly3em63g3",
    "08F9E0A1B207",
    gen=3,
    fw_id="20241112-225656/g5d24c46",
    ver="1.4.99-dev111396",
    profile="triphase",
)
PLUS_1PM = Gen2Identity(
    "SNSW-001P16EU",
    "Plus1PM",
    "shellyplus1pm",
    "08F9E0A1B204",
    fw_id="20231219-133934/1.1.0-g34b5d4f",
    ver="1.1.0",
)
MINI_1PM_GEN3 = Gen2Identity(
    "S3SW-001P8EU",
    "Mini1PMG3",
    "shelly1pmminig3",
    "08F9E0A1B205",
    gen=3,
    fw_id="20250520-083740/1.6.2-gc8a76e2",
    ver="1.6.2",
)
PM_MINI_GEN3 = Gen2Identity(
    "S3PM-001PCEU16",
    "MiniPMG3",
    "shellypmminig3",
    "08F9E0A1B206",
    gen=3,
    fw_id="20250520-083712/1.6.2-gc8a76e2",
    ver="1.6.2",
)

IDENTITIES = (PRO_3EM, PRO_EM, EM_GEN3, S3EM_63_GEN3, PLUS_1PM, MINI_1PM_GEN3, PM_MINI_GEN3)
"""Every captured identity, for tests that walk all of them."""
