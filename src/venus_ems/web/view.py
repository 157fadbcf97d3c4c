"""What the dashboard shows, read from D-Bus only (the shared Monitor): JSON-ready dicts.

Nothing here knows a feature or a device driver: features and outputs come from our status
service (``/Features/*``, ``/Outputs/*``), devices from any ``com.victronenergy.*`` service of
a known class (or one with a power path), tunables from localsettings ``/Settings/VenusEms/*``.
A new feature or device therefore appears without a change here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..runtime.status import STATUS_SERVICE
from ..venus import SETTINGS_SERVICE, Monitor, ServiceState, Value, active_service
from ..venus.names import BATTERY, HUB4, SYSTEM

__all__ = [
    "DEVICE_CLASSES",
    "TUNABLE_ROOT",
    "devices",
    "ess_tracking",
    "features",
    "history_sample",
    "outputs",
    "site",
    "tunables",
]

TUNABLE_ROOT = "/Settings/VenusEms/"

_PHASES = ("L1", "L2", "L3")
_AC = [("/Ac/Power", "power", "W")] + [(f"/Ac/{p}/Power", p, "W") for p in _PHASES]
_DC = [("/Dc/0/Power", "power", "W"), ("/Dc/0/Voltage", "voltage", "V")]

DEVICE_CLASSES: dict[str, tuple[str, list[tuple[str, str, str]]]] = {
    "grid": ("Grid meter", _AC),
    "pvinverter": ("PV inverter", [*_AC, ("/Ac/PowerLimit", "limit", "W")]),
    "acload": ("AC load", _AC),
    "genset": ("Generator", _AC),
    "heatpump": ("Heat pump", _AC),
    "evcharger": (
        "EV charger",
        [
            ("/Ac/Power", "power", "W"),
            ("/Current", "current", "A"),
            ("/SetCurrent", "set", "A"),
            ("/Status", "status", ""),
            ("/Mode", "mode", ""),
            ("/Session/Energy", "session", "kWh"),
        ],
    ),
    "battery": (
        "Battery",
        [
            *_DC,
            ("/Soc", "SoC", "%"),
            ("/Info/MaxChargeCurrent", "CCL", "A"),
            ("/Info/MaxDischargeCurrent", "DCL", "A"),
        ],
    ),
    "vebus": (
        "Multi",
        [
            ("/Ac/ActiveIn/P", "AC-in", "W"),
            ("/Ac/Out/P", "AC-out", "W"),
            ("/Dc/0/Power", "DC", "W"),
            ("/Mode", "mode", ""),
            ("/State", "state", ""),
        ],
    ),
    "solarcharger": (
        "Solar charger",
        [("/Yield/Power", "PV", "W"), ("/Dc/0/Current", "current", "A"), ("/State", "state", "")],
    ),
    "dcsystem": ("DC system", _DC),
    "dcload": ("DC load", _DC),
    "dcsource": ("DC source", _DC),
    "temperature": (
        "Temperature",
        [("/Temperature", "temperature", "°C"), ("/Humidity", "humidity", "%")],
    ),
}
"""Service class (after ``com.victronenergy.``) -> (title, [(path, label, unit)])."""

_NOT_DEVICES = {"system", "settings", "venusems", "hub4", "platform", "logger", "modem"}
_FALLBACK = [("/Ac/Power", "power", "W"), ("/Dc/0/Power", "power", "W"), ("/Power", "power", "W")]


def _num(v: Value) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _sum(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _phases(mon: Monitor, fmt: str) -> list[float | None]:
    """Per-phase values of the system service, as many phases as the site reports."""
    vals = [_num(mon.get(SYSTEM, fmt.format(p))) for p in _PHASES]
    while len(vals) > 1 and vals[-1] is None:
        vals.pop()
    return vals


def site(mon: Monitor) -> dict[str, Any]:
    """Power flows as systemcalc reports them: PV, grid and loads per phase, battery, DC system."""
    g = mon.get
    pv_ac = [
        _num(g(SYSTEM, f"/Ac/{grp}/{p}/Power"))
        for grp in ("PvOnGrid", "PvOnOutput")
        for p in _PHASES
    ]
    pv_dc = _num(g(SYSTEM, "/Dc/Pv/Power"))
    grid = _phases(mon, "/Ac/Grid/{}/Power")
    load = _phases(mon, "/Ac/Consumption/{}/Power")
    battery: dict[str, Any] = {
        "power_w": _num(g(SYSTEM, "/Dc/Battery/Power")),
        "soc_pct": _num(g(SYSTEM, "/Dc/Battery/Soc")),
        "voltage_v": _num(g(SYSTEM, "/Dc/Battery/Voltage")),
        "current_a": _num(g(SYSTEM, "/Dc/Battery/Current")),
        "soc_floor_pct": _num(g(SYSTEM, "/Control/ActiveSocLimit")),
        "time_to_go_s": _num(g(SYSTEM, "/Dc/Battery/TimeToGo")),
    }
    bms = active_service(mon, BATTERY)
    if bms is not None:
        battery["ccl_a"] = _num(g(bms, "/Info/MaxChargeCurrent"))
        battery["dcl_a"] = _num(g(bms, "/Info/MaxDischargeCurrent"))
        battery["allow_charge"] = g(bms, "/Io/AllowToCharge")
        battery["allow_discharge"] = g(bms, "/Io/AllowToDischarge")
    return {
        "pv_w": _sum([pv_dc, *pv_ac]),
        "pv_dc_w": pv_dc,
        "pv_ac_w": _sum(pv_ac),
        "grid_w": _sum(grid),
        "grid_phases_w": grid,
        "load_w": _sum(load),
        "load_phases_w": load,
        "dc_system_w": _num(g(SYSTEM, "/Dc/System/Power")),
        "battery": battery,
    }


def _status_items(mon: Monitor, group: str) -> dict[str, dict[str, Value]]:
    """``{key: {leaf: value}}`` of ``/<group>/<key>/<leaf>`` on our status service."""
    out: dict[str, dict[str, Value]] = {}
    svc = mon.service(STATUS_SERVICE)
    if svc is None:
        return out
    prefix = f"/{group}/"
    for path, value in svc.values.items():
        if path.startswith(prefix):
            key, _, leaf = path[len(prefix) :].partition("/")
            if leaf and "/" not in leaf:
                out.setdefault(key, {})[leaf] = value
    return out


def features(mon: Monitor) -> list[dict[str, Any]]:
    """Each feature: name, state, decision, reasons, restarts, last error, last message."""
    out = []
    for key, v in sorted(_status_items(mon, "Features").items()):
        reasons = v.get("Reasons")
        out.append(
            {
                "key": key,
                "name": v.get("Name") or key,
                "state": v.get("State") or "",
                "decision": v.get("Decision") or "",
                "reasons": [r for r in reasons.split("; ") if r]
                if isinstance(reasons, str)
                else [],
                "restarts": v.get("Restarts") or 0,
                "error": v.get("LastError") or "",
                "message": v.get("Message") or "",
            }
        )
    return out


def outputs(mon: Monitor) -> list[dict[str, Any]]:
    """Each output: name, owner (empty = nobody), value in force, last written, target, error."""
    return [
        {
            "key": key,
            "name": v.get("Name") or key,
            "owner": v.get("Owner") or "",
            "value": v.get("Value"),
            "written": v.get("Written"),
            "target": v.get("Target") or "",
            "error": v.get("Error") or "",
            "writes": v.get("Writes") or 0,
        }
        for key, v in sorted(_status_items(mon, "Outputs").items())
    ]


def ess_tracking(mon: Monitor) -> dict[str, Any]:
    """The ESS setpoint in force and its tracking error (setpoint - measured), W.

    Mode 3 (our per-phase setpoints held): error against the Multi's AC-in per phase. Otherwise
    the grid setpoint (ours, else hub4's override) against the grid total.
    """
    outs = _status_items(mon, "Outputs")
    phase = outs.get("ess_phase_setpoints", {})
    held = phase.get("Value")
    if phase.get("Owner") and isinstance(held, list):
        vebus = mon.get_str(SYSTEM, "/VebusService")
        sps = [_num(x) for x in held]
        acin = [
            _num(mon.get(vebus, f"/Ac/ActiveIn/L{n}/P")) if vebus else None
            for n in range(1, len(sps) + 1)
        ]
        errs = [None if s is None or a is None else s - a for s, a in zip(sps, acin, strict=True)]
        return {
            "method": "mode3",
            "owner": phase.get("Owner"),
            "setpoint_w": _sum(sps),
            "setpoints_w": sps,
            "error_w": _sum(errs) if all(e is not None for e in errs) else None,
            "errors_w": errs,
        }
    grid_out = outs.get("ess_grid_setpoint", {})
    owner = grid_out.get("Owner") or ""
    setpoint = _num(grid_out.get("Value")) if owner else None
    if setpoint is None:
        setpoint = _num(mon.get(HUB4, "/Overrides/Setpoint"))
    grid = _sum(_phases(mon, "/Ac/Grid/{}/Power"))
    return {
        "method": "grid setpoint",
        "owner": owner,
        "setpoint_w": setpoint,
        "error_w": None if setpoint is None or grid is None else setpoint - grid,
    }


def _title(state: ServiceState, default: str) -> str:
    for path in ("/CustomName", "/ProductName"):
        v = state.values.get(path)
        if isinstance(v, str) and v.strip():
            return v.strip()[:64]
    return default


def devices(mon: Monitor) -> list[dict[str, Any]]:
    """Every device service of a known class (or with a power path), with its key values."""
    out = []
    for state in mon.services():
        cls = state.device_class.rpartition(".")[2]
        if cls in _NOT_DEVICES:
            continue
        title, fields = DEVICE_CLASSES.get(cls, (cls, _FALLBACK))
        values = [
            [label, v, unit]
            for path, label, unit in fields
            if (v := state.values.get(path)) is not None and not isinstance(v, (list, dict))
        ]
        if cls not in DEVICE_CLASSES and not values:
            continue
        out.append(
            {
                "service": state.name,
                "class": cls,
                "kind": title,
                "title": _title(state, title),
                "instance": state.device_instance,
                "connected": state.values.get("/Connected"),
                "values": values,
            }
        )
    return out


def tunables(
    mon: Monitor, bounds: Mapping[str, tuple[float | None, float | None]]
) -> list[dict[str, Any]]:
    """Our settings in localsettings: path, group, name, value, kind and the known bounds."""
    svc = mon.service(SETTINGS_SERVICE)
    if svc is None:
        return []
    out = []
    for path, value in sorted(svc.values.items()):
        if not path.startswith(TUNABLE_ROOT) or value is None:
            continue
        group, _, name = path[len(TUNABLE_ROOT) :].partition("/")
        lo, hi = bounds.get(path, (None, None))
        out.append(
            {
                "path": path,
                "group": group,
                "name": name or group,
                "value": value,
                "kind": "text" if isinstance(value, str) else "number",
                "min": lo,
                "max": hi,
            }
        )
    return out


def history_sample(view_site: Mapping[str, Any], ess: Mapping[str, Any]) -> dict[str, float | None]:
    """The values the charts keep, from a site view and ESS tracking."""
    bat = view_site["battery"]
    return {
        "pv_w": view_site["pv_w"],
        "load_w": view_site["load_w"],
        "grid_w": view_site["grid_w"],
        "battery_w": bat["power_w"],
        "soc_pct": bat["soc_pct"],
        "setpoint_w": ess.get("setpoint_w"),
    }
