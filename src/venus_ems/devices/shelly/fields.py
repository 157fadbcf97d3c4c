"""Reading Shelly JSON strictly (every bad field is a DeviceProtocolError) and ``/shelly``.

The field readers are the shared bounded ones of ``devices.parsing``, re-exported here.

``GET /shelly`` is never protected, on every generation. Gen1 answers
``{type, mac, auth, fw, num_outputs, num_meters[, num_emeters]}``; gen2+ answers
``{id, mac, model, gen, fw_id, ver, app, auth_en, auth_domain[, profile]}``. The presence of
``gen`` tells them apart.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...errors import DeviceProtocolError
from ..base import DeviceIdentity
from ..parsing import bool_field, number, obj, optional_number

__all__ = [
    "ShellyInfo",
    "bool_field",
    "firmware_version",
    "number",
    "obj",
    "optional_number",
    "parse_info",
]

_GEN1_NAMES = {
    "SHEM": "Shelly EM",
    "SHEM-3": "Shelly 3EM",
    "SHPLG-S": "Shelly Plug S",
    "SHPLG-1": "Shelly Plug",
    "SHPLG2-1": "Shelly Plug",
    "SHPLG-U1": "Shelly Plug US",
    "SHSW-PM": "Shelly 1PM",
    "SHSW-25": "Shelly 2.5",
}
# gen2+ ``app`` codes as real devices report them (EM Gen3 is ``EMG3``, not ``EM``)
_GEN2_NAMES = {
    "Pro3EM": "Shelly Pro 3EM",
    "ProEM": "Shelly Pro EM",
    "EMG3": "Shelly EM Gen3",
    "S3EMG3": "Shelly 3EM-63 Gen3",
    "Plus1PM": "Shelly Plus 1PM",
    "Plus1PMMini": "Shelly Plus 1PM Mini",
    "Mini1PMG3": "Shelly 1PM Mini Gen3",
    "MiniPMG3": "Shelly PM Mini Gen3",
    "PlusPMMini": "Shelly Plus PM Mini",
    "PlugSG3": "Shelly Plug S Gen3",
    "PlusPlugS": "Shelly Plus Plug S",
}
# gen1 models that are energy meters, with their CT channel count
GEN1_METERS = {"SHEM": 2, "SHEM-3": 3}


def _text(doc: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str:
    value = doc.get(key)
    if isinstance(value, str) and value:
        return value
    if value is None and not required:
        return ""
    raise DeviceProtocolError(f"{where}: {key!r} missing or not a string: {value!r}")


def _count(doc: Mapping[str, Any], key: str) -> int:
    value = doc.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


@dataclass(frozen=True, slots=True)
class ShellyInfo:
    """``/shelly``: generation (1..4), model code, MAC, firmware, whether auth is on.

    ``firmware`` is the version (gen2+ ``ver``; on gen1 taken from ``fw``), ``firmware_build``
    the build id (gen2+ ``fw_id``, gen1 ``fw``).

    ``model`` is the gen1 ``type`` (``SHEM-3``) or the gen2+ ``model`` (``SPEM-003CEBEU``);
    ``app`` (gen2+, e.g. ``Pro3EM``) and ``device_id`` (``shellypro3em-<mac>``) are empty on
    gen1. ``channels`` is the CT channel count of a gen1 meter, ``num_outputs``/``num_meters``
    its relays and relay meters (gen2+ devices list their components in ``Shelly.GetStatus``).
    """

    generation: int
    model: str
    mac: str
    firmware: str
    auth: bool
    name: str | None = None
    app: str = ""
    device_id: str = ""
    profile: str | None = None
    channels: int = 0
    num_outputs: int = 0
    num_meters: int = 0
    firmware_build: str = ""

    @property
    def product_name(self) -> str:
        """Human name such as ``Shelly Pro 3EM``."""
        if self.generation == 1:
            return _GEN1_NAMES.get(self.model, f"Shelly {self.model}")
        return _GEN2_NAMES.get(self.app, f"Shelly {self.app or self.model}")

    @property
    def identity(self) -> DeviceIdentity:
        """The generic identity (serial = MAC)."""
        return DeviceIdentity(
            self.product_name,
            self.model,
            self.mac,
            self.firmware,
            self.generation,
            firmware_build=self.firmware_build,
        )


def parse_info(doc: Any) -> ShellyInfo:
    """Parse a ``/shelly`` answer of any generation; DeviceProtocolError if it is not one."""
    where = "/shelly"
    if not isinstance(doc, Mapping):
        raise DeviceProtocolError(f"{where}: expected a JSON object")
    name = doc.get("name") if isinstance(doc.get("name"), str) else None
    mac = _text(doc, "mac", where).upper().replace(":", "")
    gen = doc.get("gen")
    if gen is None:
        model = _text(doc, "type", where)
        channels = doc.get("num_emeters")
        if not isinstance(channels, int) or isinstance(channels, bool):
            channels = GEN1_METERS.get(model, 0)
        build = _text(doc, "fw", where, required=False)
        return ShellyInfo(
            generation=1,
            model=model,
            mac=mac,
            firmware=firmware_version(build),
            firmware_build=build,
            auth=bool_field(doc, "auth", where),
            name=name,
            channels=channels,
            num_outputs=_count(doc, "num_outputs"),
            num_meters=_count(doc, "num_meters"),
        )
    if isinstance(gen, bool) or not isinstance(gen, int) or gen < 2:
        raise DeviceProtocolError(f"{where}: 'gen' is not a generation >= 2: {gen!r}")
    profile = doc.get("profile")
    build = _text(doc, "fw_id", where, required=False)
    return ShellyInfo(
        generation=gen,
        model=_text(doc, "model", where),
        mac=mac,
        firmware=_text(doc, "ver", where, required=not build) or firmware_version(build),
        firmware_build=build,
        auth=bool_field(doc, "auth_en", where),
        name=name,
        app=_text(doc, "app", where, required=False),
        device_id=_text(doc, "id", where),
        profile=profile if isinstance(profile, str) else None,
    )


_BUILD_VERSION = re.compile(r"/v?(\d+\.\d+(?:\.\d+)?(?:-(?!g[0-9a-f]+$)[A-Za-z0-9.]+)?)")


def firmware_version(build: str) -> str:
    """The version inside a Shelly build id: ``20230913-113421/v1.14.0-gcb84623`` -> ``1.14.0``.

    A pre-release keeps its tag (``.../1.5.0-beta1-g1234567`` -> ``1.5.0-beta1``); a text
    without a version is returned as it is.
    """
    found = _BUILD_VERSION.search(build)
    return found.group(1) if found else build
