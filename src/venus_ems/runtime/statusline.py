"""``venus-ems status``: one line per second with the salient facts of the site.

Left to right: PV power; the DC system's draw (when a dcsystem service reports one, e.g.
battery-fed micro-inverters); battery voltage, current (+ = charging), SoC and the BMS limits
(``>`` DCL, ``<`` CCL, ``≫``/``≪`` when discharge/charge is not allowed); grid power per phase
(+ = import); the grid setpoint we hold (hub4 override, or mode-3 per phase) and its tracking
error (setpoint - Multi AC-in power in mode 3, setpoint - grid power otherwise); each active
venus-ems feature's decision. Missing values print as ``-``. It reads D-Bus only, so it works
on a real GX and on the simulator alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..venus.active import active_service
from ..venus.monitor import Monitor
from ..venus.names import BATTERY, HUB4, SYSTEM
from ..venus.names import VENUSEMS as STATUS

__all__ = ["format_status"]


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _fmt(v: float | None, spec: str, unit: str = "") -> str:
    return "-" if v is None else f"{v:{spec}}{unit}"


def format_status(r: Monitor, now: str = "") -> str:
    """Build the status line from the current D-Bus values."""
    get: Callable[..., Any] = r.get
    parts: list[str] = [now] if now else []
    parts.append(f"PV {_fmt(_num(get(SYSTEM, '/Dc/Pv/Power')), '.0f', 'W')}")
    dc_system = _num(get(SYSTEM, "/Dc/System/Power"))
    if dc_system is not None:  # dcsystem services (e.g. battery-fed micro-inverters)
        parts.append(f"DC sys {dc_system:.0f}W")

    battery = active_service(r, BATTERY)
    volt = _num(get(SYSTEM, "/Dc/Battery/Voltage"))
    amps = _num(get(SYSTEM, "/Dc/Battery/Current"))
    soc = _num(get(SYSTEM, "/Dc/Battery/Soc"))
    bat = f"Bat {_fmt(volt, '.2f', 'V')} {_fmt(amps, '+.1f', 'A')} {_fmt(soc, '.0f', '%')}"
    if battery is not None:
        dcl = _num(get(battery, "/Info/MaxDischargeCurrent"))
        ccl = _num(get(battery, "/Info/MaxChargeCurrent"))
        dis = "≫" if get(battery, "/Io/AllowToDischarge") == 0 else ">"
        chg = "≪" if get(battery, "/Io/AllowToCharge") == 0 else "<"
        bat += f" {dis}{_fmt(dcl, '.0f')}{chg}{_fmt(ccl, '.0f', 'A')}"
    floor = _num(get(SYSTEM, "/Control/ActiveSocLimit"))
    if floor is not None:
        bat += f" floor {floor:.0f}%"
    parts.append(bat)

    phases = [_num(get(SYSTEM, f"/Ac/Grid/L{n}/Power")) for n in (1, 2, 3)]
    present = [p for p in phases if p is not None]
    count = len(present) if present else 1
    parts.append("Grid " + " ".join(_fmt(p, "+.0f") for p in phases[:count]) + " W")

    vebus = get(SYSTEM, "/VebusService")
    acin = [
        _num(get(vebus, f"/Ac/ActiveIn/L{n}/P")) if vebus else None for n in range(1, count + 1)
    ]
    per_phase, total = _our_setpoints(r, count)
    if per_phase is not None:  # mode 3: setpoints at the Multi's AC-in, per phase
        errs = [
            None if s is None or a is None else s - a for s, a in zip(per_phase, acin, strict=True)
        ]
        parts.append(
            "Set "
            + " ".join(_fmt(s, "+.0f") for s in per_phase)
            + " err "
            + " ".join(_fmt(e, "+.0f") for e in errs)
            + " W"
        )
    else:  # mode 1/2: a grid target for the total
        setpoint = total if total is not None else _num(get(HUB4, "/Overrides/Setpoint"))
        grid = sum(present) if present else None
        err = None if setpoint is None or grid is None else setpoint - grid
        parts.append(f"Set {_fmt(setpoint, '+.0f', 'W')} err {_fmt(err, '+.0f', 'W')}")

    for svc in r.services(STATUS):
        names = {p.rsplit("/", 2)[1] for p in svc.values if p.startswith("/Features/")}
        for key in sorted(names):
            base = f"/Features/{key}"
            state = svc.values.get(f"{base}/State")
            name = svc.values.get(f"{base}/Name") or key
            decision = svc.values.get(f"{base}/Decision") or ""
            if state == "running":
                parts.append(f"{name}: {decision}" if decision else f"{name}: running")
            elif state:
                parts.append(f"{name}: {state}")
    return " | ".join(parts)


def _our_setpoints(r: Monitor, count: int) -> tuple[list[float | None] | None, float | None]:
    """What our actuators hold: (mode-3 per-phase setpoints, grid setpoint), W."""
    for svc in r.services(STATUS):
        v = svc.values
        if v.get("/Outputs/ess_phase_setpoints/Owner"):
            phases = v.get("/Outputs/ess_phase_setpoints/Value")
            if isinstance(phases, list) and phases:
                return [_num(x) for x in phases[:count]], None
        if v.get("/Outputs/ess_grid_setpoint/Owner"):
            return None, _num(v.get("/Outputs/ess_grid_setpoint/Value"))
    return None, None
