"""Pure parsers of OpenDTU's web API answers (``docs/devices.md``, reference devices.md §3).

Every parser takes decoded JSON and returns frozen readings, or raises ``DeviceProtocolError``
naming the field; unknown keys are ignored (OpenDTU-OnBattery adds root objects, newer
firmware adds ``data_age_ms`` and ``radio_stats``). Values arrive as ``{"v": float32, "u":
unit, "d": decimals}`` objects and are rounded to their ``d`` decimals. Layouts:

* ``/api/livedata/status`` of firmware from 2024-01-29 on: ``inverters`` hold summary fields
  only (``serial``, ``name``, ``data_age`` s, ``reachable``, ``producing``, ``limit_relative``
  %, ``limit_absolute`` W or -1 when the nameplate is unknown); ``?inv=<serial>`` adds ``AC``,
  ``DC`` and ``INV`` channel objects keyed ``"0"``, ``"1"``...
* the 2023 firmware put ``AC``/``DC``/``INV`` into every inverter of the plain call and kept
  ``Power DC``, ``YieldDay``, ``YieldTotal`` and ``Efficiency`` under ``AC`` (``INV`` holds
  only the temperature): the parser looks in both places.
* ``/api/limit/status``: a map serial -> ``{limit_relative, max_power, limit_set_status}``
  (``max_power`` 0 until the inverter's device info was read).
* command answers: ``{"type": "success" | "warning" | ..., "message", "code"}``, always HTTP
  200: only ``type`` tells success.

Hoymiles serials tell the family (digits 1-2: 10 MI, 11 HM/HMS, 13 HMT; digit 3: 2/4/6/8 =
1/2/4/6 inputs; digit 4: 1 HM, 4 HMS), e.g. ``1141...`` = HM-600/700/800 with 2 inputs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from ...errors import DeviceProtocolError
from ..base import DeviceIdentity, InverterReading, LimitState, LimitStatus
from ..parsing import bool_field, items, number, obj, optional_number, text

__all__ = [
    "MAX_INVERTERS",
    "CommandReply",
    "inverter_family",
    "parse_command_reply",
    "parse_limit_status",
    "parse_livedata",
    "parse_system_status",
]

MAX_INVERTERS = 32
"""More inverters than this in one answer is a protocol error (OpenDTU supports 16)."""

MAX_DC_INPUTS = 8
_SERIAL = re.compile(r"[0-9A-Za-z]{1,20}")
_STATES: dict[str, LimitState] = {
    "Ok": "Ok",
    "Pending": "Pending",
    "Failure": "Failure",
    "Unknown": "Unknown",
}
_SERIES = {"10": "MI", "11": "HM", "13": "HMT"}
_INPUTS = {"2": 1, "4": 2, "6": 4, "8": 6}


def inverter_family(serial: str) -> tuple[str, int | None]:
    """(family such as ``"HM 2-input"``, DC inputs) of a Hoymiles serial; ("", None) if unknown."""
    if len(serial) < 4 or not serial[:4].isdigit():
        return "", None
    series = _SERIES.get(serial[:2])
    inputs = _INPUTS.get(serial[2])
    if series is None or inputs is None:
        return "", None
    if series == "HM" and serial[3] == "4":
        series = "HMS"
    return f"{series} {inputs}-input", inputs


def _value(section: Mapping[str, Any], key: str, where: str) -> float | None:
    """``section[key]["v"]`` rounded to its ``d`` decimals; None when the field is absent."""
    field = section.get(key)
    if field is None:
        return None
    if not isinstance(field, Mapping):
        raise DeviceProtocolError(f"{where}: {key!r} is not a value object")
    value = optional_number(field, "v", f"{where} {key}")
    if value is None:
        return None
    digits = optional_number(field, "d", f"{where} {key}")
    places = 3 if digits is None else int(min(max(digits, 0.0), 6.0))
    return round(value, places)


def _channel(doc: Mapping[str, Any], group: str, where: str) -> Mapping[str, Any] | None:
    """``doc[group]["0"]``, or None when the group is absent."""
    if group not in doc:
        return None
    return obj(obj(doc, group, where), "0", f"{where} {group}")


@dataclass(frozen=True, slots=True)
class _Dc:
    power_w: float | None = None
    voltage_v: float | None = None
    current_a: float | None = None
    energy_kwh: float | None = None
    inputs: int = 0


def _add(total: float | None, value: float | None) -> float | None:
    return total if value is None else (total or 0.0) + value


def _dc(doc: Mapping[str, Any], where: str) -> _Dc:
    """DC inputs: W, A and kWh summed, V of input 0, number of inputs."""
    dc = obj(doc, "DC", where)
    if len(dc) > MAX_DC_INPUTS:
        raise DeviceProtocolError(f"{where}: {len(dc)} DC inputs, at most {MAX_DC_INPUTS}")
    out = _Dc(inputs=len(dc))
    for key in sorted(dc, key=lambda k: (len(k), k)):
        chan = obj(dc, key, f"{where} DC")
        at = f"{where} DC[{key}]"
        out = replace(
            out,
            power_w=_add(out.power_w, _value(chan, "Power", at)),
            current_a=_add(out.current_a, _value(chan, "Current", at)),
            energy_kwh=_add(out.energy_kwh, _value(chan, "YieldTotal", at)),
        )
        if key == "0":
            out = replace(out, voltage_v=_value(chan, "Voltage", at))
    return out


def _details(reading: InverterReading, doc: Mapping[str, Any], where: str) -> InverterReading:
    """The AC/DC/INV channel values of one inverter object added to its summary."""
    ac = _channel(doc, "AC", where)
    if ac is None:
        return reading
    inv = _channel(doc, "INV", where) or {}
    at_ac, at_inv = f"{where} AC[0]", f"{where} INV[0]"

    def inv_or_ac(key: str) -> float | None:  # 2024 firmware: INV; 2023: AC
        found = _value(inv, key, at_inv)
        return found if found is not None else _value(ac, key, at_ac)

    power = _value(ac, "Power", at_ac)
    if power is None:
        raise DeviceProtocolError(f"{at_ac}: 'Power' missing")
    dc = _dc(doc, where) if "DC" in doc else _Dc()
    power_dc = inv_or_ac("Power DC")
    return replace(
        reading,
        ac_power_w=power,
        ac_voltage_v=_value(ac, "Voltage", at_ac),
        ac_current_a=_value(ac, "Current", at_ac),
        ac_frequency_hz=_value(ac, "Frequency", at_ac),
        dc_power_w=power_dc if power_dc is not None else dc.power_w,
        dc_voltage_v=dc.voltage_v,
        dc_current_a=dc.current_a,
        dc_inputs=dc.inputs or reading.dc_inputs,
        dc_yield_total_kwh=dc.energy_kwh,
        yield_day_wh=inv_or_ac("YieldDay"),
        yield_total_kwh=inv_or_ac("YieldTotal"),
        temperature_c=_value(inv, "Temperature", at_inv),
        efficiency_pct=inv_or_ac("Efficiency"),
    )


def _inverter(entry: Any, where: str, taken_at: float) -> InverterReading:
    if not isinstance(entry, Mapping):
        raise DeviceProtocolError(f"{where}: expected a JSON object")
    serial = text(entry, "serial", where, max_length=20)
    if not _SERIAL.fullmatch(serial):
        raise DeviceProtocolError(f"{where}: serial {serial!r} is not alphanumeric")
    name = entry.get("name", "")
    if not isinstance(name, str) or len(name) > 64:
        raise DeviceProtocolError(f"{where}: 'name' is not a string of at most 64 characters")
    age_ms = optional_number(entry, "data_age_ms", where)
    age = age_ms / 1000.0 if age_ms is not None else number(entry, "data_age", where)
    if age < 0:
        raise DeviceProtocolError(f"{where}: negative data_age {age:g}")
    relative = optional_number(entry, "limit_relative", where)
    absolute = optional_number(entry, "limit_absolute", where)
    if absolute is not None and absolute < 0:
        absolute = None  # -1: the nameplate is not known yet (e.g. never reached)
    nameplate = None
    if absolute is not None and relative is not None and relative > 0:
        nameplate = round(absolute * 100.0 / relative, 1)
    family, inputs = inverter_family(serial)
    reading = InverterReading(
        serial=serial,
        name=name,
        reachable=bool_field(entry, "reachable", where),
        producing=bool_field(entry, "producing", where),
        data_at=taken_at - age,
        taken_at=taken_at,
        model=family,
        dc_inputs=inputs,
        limit_pct=relative,
        limit_w=absolute,
        max_power_w=nameplate,
    )
    return _details(reading, entry, where)


def parse_livedata(doc: Any, taken_at: float) -> tuple[InverterReading, ...]:
    """``/api/livedata/status`` (any layout) -> one reading per inverter, in the DTU's order."""
    where = "/api/livedata/status"
    if not isinstance(doc, Mapping):
        raise DeviceProtocolError(f"{where}: expected a JSON object")
    entries = items(doc, "inverters", where, max_items=MAX_INVERTERS)
    out = [_inverter(e, f"{where} inverters[{i}]", taken_at) for i, e in enumerate(entries)]
    serials = [r.serial for r in out]
    if len(set(serials)) != len(serials):
        raise DeviceProtocolError(f"{where}: the same serial is listed twice")
    return tuple(out)


def parse_limit_status(doc: Any, taken_at: float) -> dict[str, LimitStatus]:
    """``/api/limit/status`` -> limit % and command state per serial (max power 0 = None)."""
    where = "/api/limit/status"
    if not isinstance(doc, Mapping):
        raise DeviceProtocolError(f"{where}: expected a JSON object")
    if len(doc) > MAX_INVERTERS:
        raise DeviceProtocolError(f"{where}: {len(doc)} inverters, at most {MAX_INVERTERS}")
    out: dict[str, LimitStatus] = {}
    for serial, entry in doc.items():
        if not isinstance(serial, str) or not _SERIAL.fullmatch(serial):
            raise DeviceProtocolError(f"{where}: serial {str(serial)[:24]!r} is not alphanumeric")
        at = f"{where} {serial}"
        if not isinstance(entry, Mapping):
            raise DeviceProtocolError(f"{at}: expected a JSON object")
        pct = number(entry, "limit_relative", at)
        nameplate = optional_number(entry, "max_power", at)
        state = entry.get("limit_set_status")
        if not isinstance(state, str):
            raise DeviceProtocolError(f"{at}: 'limit_set_status' missing or not a string")
        out[serial] = LimitStatus(
            serial=serial,
            limit_pct=pct,
            state=_STATES.get(state, "Unknown"),  # a state newer firmware may add: not Ok
            taken_at=taken_at,
            max_power_w=nameplate if nameplate is not None and nameplate > 0 else None,
        )
    return out


@dataclass(frozen=True, slots=True)
class CommandReply:
    """A command answer: success or not, the device's message and code."""

    ok: bool
    message: str
    code: int | None


def parse_command_reply(doc: Any, what: str) -> CommandReply:
    """``{"type", "message", "code"}`` of a POST; DeviceProtocolError if malformed."""
    if not isinstance(doc, Mapping):
        raise DeviceProtocolError(f"{what}: expected a JSON object")
    kind = text(doc, "type", what, max_length=16)
    message = doc.get("message", "")
    if not isinstance(message, str):
        raise DeviceProtocolError(f"{what}: 'message' is not a string")
    code = optional_number(doc, "code", what)
    return CommandReply(kind == "success", message[:120], None if code is None else int(code))


def parse_system_status(doc: Any) -> DeviceIdentity:
    """``/api/system/status`` -> the DTU's identity (hostname as serial, git tag as firmware)."""
    where = "/api/system/status"
    if not isinstance(doc, Mapping):
        raise DeviceProtocolError(f"{where}: expected a JSON object")
    hostname = text(doc, "hostname", where)
    version = doc.get("git_hash")
    firmware = version if isinstance(version, str) and 0 < len(version) <= 64 else ""
    pioenv = doc.get("pioenv")
    model = pioenv if isinstance(pioenv, str) and 0 < len(pioenv) <= 64 else "OpenDTU"
    return DeviceIdentity(
        product_name="OpenDTU", model=model, serial=hostname, firmware=firmware.lstrip("v")
    )
