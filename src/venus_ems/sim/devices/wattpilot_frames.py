"""The emulated Wattpilot's status keys and frames, in the shapes of the shared vectors.

Key meanings are those of ``devices.md`` §4 (wattpilot.yaml, go-e API v2); the values of keys
the physics does not model (``rfb``, ``tpcm``, ``lps``, ``rcd``, ``mod``, ``acui``, ``adi``, ...)
are the ones in the vectors' examples (``wattpilot-deltastatus.json``, the fullStatus example
of ``wattpilot-handshake.md`` §7). ``utc``/``loc`` use the charger's odd ``.mmm.uuu`` format.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .wallbox import WallboxState
from .wattpilot_faults import WattpilotFaults

__all__ = [
    "CLASSIC",
    "CLASSIC_42",
    "FLEX",
    "FLEX_SILENT",
    "WattpilotIdentity",
    "check_write",
    "full_status_parts",
    "hostile_frame",
    "status_keys",
]


@dataclass(frozen=True)
class WattpilotIdentity:
    """What the charger says in ``hello``; the firmware version picks what it announces."""

    serial: str = "12345678"  # the wattpilot-api test fixture (vectors)
    devicetype: str = "wattpilot"
    firmware: str = "36.3"  # the wattpilot.yaml hello example
    variant: int = 11
    friendly_name: str = "Wattpilot"
    secured: bool = True
    announce_hash: bool | None = None

    @property
    def scheme(self) -> str:
        """``bcrypt`` on Flex hardware, ``pbkdf2`` on the classic one."""
        return "bcrypt" if self.devicetype == "wattpilot_flex" else "pbkdf2"

    @property
    def major(self) -> int:
        """The firmware's major version."""
        return int(self.firmware.split(".")[0])

    @property
    def announces(self) -> bool:
        """Whether ``authRequired`` names the hash (firmware 42 on, unless told otherwise)."""
        return self.major >= 42 if self.announce_hash is None else self.announce_hash


CLASSIC = WattpilotIdentity()
CLASSIC_42 = WattpilotIdentity(firmware="42.5")  # fw 42.5 beta: "hash":"pbkdf2" (joscha82#46)
FLEX = WattpilotIdentity(devicetype="wattpilot_flex", firmware="42.5")
FLEX_SILENT = WattpilotIdentity(devicetype="wattpilot_flex", firmware="42.5", announce_hash=False)


# From the vectors' examples (a real, anonymised frame): values the physics has no say in.
_EXAMPLE_KEYS: dict[str, Any] = {
    "mod": 1,
    "rfb": 1698,
    "stao": None,
    "acui": 6,
    "adi": True,
    "dwo": None,
    "tpa": 0,
    "rcd": 5,
    "lps": 61,
    "tpcm": [4, 0, 3, 1, 0, 0, 0, 0, 45, 0, 3, 0, 0, 47, 44, 0, 0, 0, 0, 0, 12],
}
# car: 1 idle (no car), 2 charging, 3 waiting for the car, 4 complete (devices.md §4)
_NO_CAR, _CHARGING, _WAITING, _COMPLETE = 1, 2, 3, 4
# modelStatus: 3 charging because forced on, 4 not charging because forced off,
# 15 charging because of the fallback default, 23 not charging because of a phase switch
_FORCED_ON, _FORCED_OFF, _DEFAULT, _PHASE_SWITCH = 3, 4, 15, 23


def _stamp(now: datetime) -> str:
    return f"{now:%Y-%m-%dT%H:%M:%S}.{now.microsecond // 1000:03d}.{now.microsecond % 1000:03d}"


def status_keys(
    ident: WattpilotIdentity,
    settings: dict[str, Any],
    st: WallboxState,
    clock: tuple[float, datetime],
) -> dict[str, Any]:
    """Every key the charger reports, from its settings and the wallbox now."""
    uptime_s, now = clock
    drawing = sum(st.power_w) > 0.5
    if not st.plugged:
        car = _NO_CAR
    elif st.complete:
        car = _COMPLETE
    else:
        car = _CHARGING if drawing else _WAITING
    frc = settings["frc"]
    forced = {1: _FORCED_OFF, 2: _FORCED_ON}.get(frc, _DEFAULT)
    reason = _PHASE_SWITCH if st.switching else forced
    floats = ident.major >= 40  # newer firmware sends floats (mk-maddin/wattpilot-HA#30)
    on = [a > 0.05 for a in st.current_a]
    pf = [100.0 if x else 0.0 for x in on]  # percent, 0 when idle as in the vector
    nrg: list[float] = [
        *st.voltage_v,
        0.0,
        *st.current_a,
        *st.power_w,
        0.0,
        sum(st.power_w),
        *pf,
        0.0,
    ]
    nrg = [round(x, 2) if floats else round(x) for x in nrg]
    allowed = st.plugged and st.enabled and not st.complete
    values: dict[str, Any] = {
        **_EXAMPLE_KEYS,
        "sse": ident.serial,
        "typ": "wattpilot",
        "var": ident.variant,
        "fwv": ident.firmware,
        "fna": settings["fna"],
        "car": car,
        "modelStatus": reason,
        "err": 0,
        "amp": settings["amp"],
        "ama": settings["ama"],
        "mca": int(st.min_current_a),
        "frc": frc,
        "psm": settings["psm"],
        "lmo": settings["lmo"],
        "acs": 0,
        "alw": allowed,
        "acu": settings["amp"] if allowed else None,
        "cbl": None,
        "pha": [*on, True, True, True],
        "nrg": nrg,
        "wh": round(st.session_wh, 2),
        "eto": round(st.total_wh),
        "fhz": 50.0,
        "rbt": round(uptime_s * 1000),
        "utc": _stamp(now),
        "loc": _stamp(now) + " +00:00",
    }
    return values


def full_status_parts(values: dict[str, Any]) -> list[dict[str, Any]]:
    """The full status in three ``fullStatus`` frames, the last with ``partial: false``."""
    keys = list(values)
    third = max(len(keys) // 3, 1)
    chunks = [keys[:third], keys[third : 2 * third], keys[2 * third :]]
    return [
        {"type": "fullStatus", "partial": i < 2, "status": {k: values[k] for k in chunk}}
        for i, chunk in enumerate(chunks)
    ]


def hostile_frame(faults: WattpilotFaults) -> str | bytes:
    """The frame of a hostile fault mode (see :mod:`.wattpilot_faults`)."""
    mode = faults.mode
    if mode == "garbage":
        return "<!DOCTYPE html><p>\x07 ERR {not json"
    if mode == "binary":
        return b"\x00\x01\x02 binary"
    if mode == "bad_status":
        return json.dumps({"type": "deltaStatus", "status": {"nrg": "broken"}})
    if mode == "huge_numbers":
        return '{"type": "deltaStatus", "status": {"amp": ' + "9" * faults.digits + "}}"
    if mode == "deep_json":
        return (
            '{"type": "deltaStatus", "status": {"x": '
            + "[" * faults.depth
            + "]" * faults.depth
            + "}}"
        )
    return '{"type": "deltaStatus", "status": {"x": "' + "a" * faults.flood_bytes + '"}}'


def check_write(key: object, value: object, settings: dict[str, Any], variant: int) -> str | None:
    """The charger's refusal of ``key = value`` (its JSON type and range), or None."""
    rules: dict[str, tuple[type, int, int]] = {
        "amp": (int, 6, settings["ama"]),
        "ama": (int, 6, 32 if variant == 22 else 16),
        "frc": (int, 0, 2),
        "psm": (int, 0, 2),
        "lmo": (int, 3, 5),
        "fna": (str, 0, 32),
    }
    if not isinstance(key, str) or key not in rules:
        return f"unknown key {str(key)[:20]}"
    kind, lo, hi = rules[key]
    if isinstance(value, bool) or not isinstance(value, kind):
        return f"value must be {kind.__name__}"
    size = len(value) if isinstance(value, str) else value
    if not isinstance(size, int) or not lo <= size <= hi:
        return "value out of range"
    return None
