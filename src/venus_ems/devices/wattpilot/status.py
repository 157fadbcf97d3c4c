"""The Wattpilot's status keys -> a typed :class:`EvChargerReading`; pure, bounded parsers.

The charger pushes its state as key/value pairs: a ``fullStatus`` dump (300 to 560 keys, in
several ``partial`` frames) after login, then ``deltaStatus`` frames with the keys that changed
(``nrg`` about every second). Only the keys below are kept (memory stays bounded whatever the
device sends); every frame is merged into a candidate copy and parsed as a whole, and a frame
that does not parse is refused without touching the state (shared vectors, devices.md §4, the
go-e API v2 key list):

=============== ===========================================================================
``car``         0 unknown/error, 1 idle (no car), 2 charging, 3 waiting for the car, 4 complete,
                5 error; ``null`` when the charger has an internal error
``frc``         force state: 0 neutral, 1 off, 2 on
``amp``         offered current per phase A (R/W); ``ama`` its maximum; ``mca`` minimum (PV
                settings; 6 A when absent, IEC 61851)
``psm``         phase switch mode: 0 auto, 1 force 1-phase, 2 force 3-phase; absent: no switch
``nrg``         U L1 L2 L3 N (V), I L1 L2 L3 (A), P L1 L2 L3 N total (W), pf L1 L2 L3 N; ints on
                older firmware, floats on newer. Power factors come in % on some firmware: a
                magnitude above 1 is divided by 100 [U]
``wh``, ``eto`` energy since the car was plugged in, total energy: Wh
``alw``, ``acu`` charging allowed now (bool); current the car may draw now (A, null if none)
``err``         error code (0 none); ``modelStatus`` why it charges or not (23: switching phases)
``var``         variant: 11 or 22 kW (the maximum current when ``ama`` is absent)
=============== ===========================================================================

Per-phase currents come from ``nrg`` for every phase (never L1 times the phase count);
``phases_in_use`` counts the phases carrying at least 1 A.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...errors import DeviceProtocolError
from ..base import CarState, ChargeForce, EvChargerReading, EvPhase
from ..parsing import MAX_MAGNITUDE

__all__ = [
    "KEPT_KEYS",
    "MAX_STATUS_KEYS",
    "merge_status",
    "parse_reading",
    "status_values",
]

KEPT_KEYS = frozenset(
    {"car", "frc", "amp", "ama", "mca", "psm", "nrg", "wh", "eto", "alw", "acu", "err",
     "modelStatus", "var", "fwv", "sse"}
)  # fmt: skip
"""The status keys the driver keeps; all others are ignored."""

MAX_STATUS_KEYS = 2000
"""Most keys one status frame may carry (a full dump has up to about 560)."""

_CARS: dict[int, CarState] = {
    0: "unknown",
    1: "no_car",
    2: "charging",
    3: "waiting",
    4: "complete",
    5: "error",
}
_FORCES: dict[int, ChargeForce] = {0: "neutral", 1: "off", 2: "on"}
_PSM: dict[int, int | None] = {0: None, 1: 1, 2: 3}
_SWITCHING_PHASES = 23
_IN_USE_A = 1.0
_MIN_CURRENT_A = 6.0
_MAX_CURRENT_A = 80.0


def status_values(frame: Mapping[str, Any], where: str) -> Mapping[str, Any]:
    """The ``status`` object of a status frame; DeviceProtocolError if missing or too large."""
    status = frame.get("status")
    if not isinstance(status, Mapping):
        raise DeviceProtocolError(f"{where}: 'status' missing or not an object")
    if len(status) > MAX_STATUS_KEYS:
        raise DeviceProtocolError(f"{where}: {len(status)} status keys, at most {MAX_STATUS_KEYS}")
    return status


def merge_status(kept: Mapping[str, Any], status: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``kept`` updated with the kept keys of ``status`` (nothing else is stored)."""
    return {**kept, **{key: value for key, value in status.items() if key in KEPT_KEYS}}


def _number(values: Mapping[str, Any], key: str, where: str) -> float | None:
    value = values.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DeviceProtocolError(f"{where}: {key!r} is not a number: {_head(value)}")
    if not -MAX_MAGNITUDE <= value <= MAX_MAGNITUDE:  # False for NaN too
        raise DeviceProtocolError(f"{where}: {key!r} is not a finite number in range")
    return float(value)


def _code(values: Mapping[str, Any], key: str, where: str, allowed: Mapping[int, Any]) -> Any:
    number = _number(values, key, where)
    if number is None or number != int(number) or int(number) not in allowed:
        raise DeviceProtocolError(f"{where}: {key!r} = {_head(values.get(key))} is not one of "
                                  f"{sorted(allowed)}")  # fmt: skip
    return allowed[int(number)]


def _int(values: Mapping[str, Any], key: str, where: str) -> int | None:
    number = _number(values, key, where)
    if number is None:
        return None
    if number != int(number):
        raise DeviceProtocolError(f"{where}: {key!r} = {number!r} is not an integer")
    return int(number)


def _current(values: Mapping[str, Any], key: str, where: str, default: float | None) -> float:
    number = _number(values, key, where)
    if number is None:
        if default is None:
            raise DeviceProtocolError(f"{where}: {key!r} missing")
        return default
    if not 0 <= number <= _MAX_CURRENT_A:
        raise DeviceProtocolError(f"{where}: {key!r} = {number:g} A is outside 0..80 A")
    return number


def _phases(values: Mapping[str, Any], where: str) -> tuple[tuple[EvPhase, ...], float]:
    """``nrg`` -> three phases and the total power W."""
    nrg = values.get("nrg")
    if not isinstance(nrg, list) or not 12 <= len(nrg) <= 16:
        raise DeviceProtocolError(f"{where}: 'nrg' missing or not a list of 12..16 numbers")
    numbers = [_number({"nrg": v}, "nrg", where) for v in nrg]

    def at(i: int) -> float | None:
        return numbers[i] if i < len(numbers) else None

    phases = []
    for i in range(3):
        current = at(4 + i)
        if current is not None and current < 0:
            raise DeviceProtocolError(f"{where}: 'nrg' current L{i + 1} is negative")
        pf = at(12 + i)
        if pf is not None and abs(pf) > 1.0:
            pf /= 100.0  # percent on some firmware
        phases.append(EvPhase(at(i), current, at(7 + i), pf))
    total = at(11)
    if total is None:
        total = sum(p.power_w or 0.0 for p in phases)
    return tuple(phases), total


def parse_reading(values: Mapping[str, Any], taken_at: float) -> EvChargerReading:
    """The kept keys -> a reading stamped ``taken_at``; DeviceProtocolError names a bad key."""
    where = "Wattpilot status"
    car: CarState = "unknown" if values.get("car") is None else _code(values, "car", where, _CARS)
    force: ChargeForce = (
        "neutral" if values.get("frc") is None else _code(values, "frc", where, _FORCES)
    )
    variant = _number(values, "var", where)
    max_default = 32.0 if variant == 22 else 16.0
    selected = None if values.get("psm") is None else _code(values, "psm", where, _PSM)
    phases, power = _phases(values, where)
    in_use = sum(1 for p in phases if (p.current_a or 0.0) >= _IN_USE_A)
    wh = _number(values, "wh", where)
    eto = _number(values, "eto", where)
    allowed = values.get("alw")
    if allowed is not None and not isinstance(allowed, bool):
        raise DeviceProtocolError(f"{where}: 'alw' is not true/false: {_head(allowed)}")
    offered = values.get("acu")
    return EvChargerReading(
        car=car,
        force=force,
        set_current_a=_current(values, "amp", where, None),
        min_current_a=_current(values, "mca", where, _MIN_CURRENT_A),
        max_current_a=_current(values, "ama", where, max_default),
        phases_selected=selected,
        phases_in_use=in_use,
        phase_switching=_int(values, "modelStatus", where) == _SWITCHING_PHASES,
        phases=(phases[0], phases[1], phases[2]),
        power_w=power,
        session_energy_kwh=None if wh is None else wh / 1000.0,
        taken_at=taken_at,
        total_energy_kwh=None if eto is None else eto / 1000.0,
        charging_allowed=allowed,
        offered_current_a=None if offered is None else _current(values, "acu", where, None),
        error_code=_int(values, "err", where),
        reason_code=_int(values, "modelStatus", where),
    )


def _head(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 40 else f"{shown[:37]}..."
