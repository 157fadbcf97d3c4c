"""What ``venus-ems doctor`` checks, as pure functions of the collected :class:`Facts`.

Each check yields :class:`Check` lines: ``ok``, ``note`` (worth knowing), ``WARN`` (probably not
what you want) or ``FAIL`` (something is wrong: the doctor exits non-zero).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..venus.names import BATTERY, GRID, HUB4, OPPORTUNITY_LOADS, SETTINGS
from ..venus.names import VENUSEMS as STATUS
from .service import SvStatus
from .target import MIN_VENUS, Target

__all__ = ["ADDONS", "NATIVE_CONFLICTS", "Check", "Facts", "all_checks"]

OK, NOTE, WARN, FAIL = "ok", "note", "WARN", "FAIL"

NATIVE_CONFLICTS: dict[str, tuple[frozenset[str], str]] = {
    "Dynamic ESS": (
        frozenset({"ess_control", "output_limiter"}),
        "writes the same hub4 overrides; venus-ems stands aside while it runs",
    ),
    "Opportunity Loads": (
        frozenset({"ess_control"}),
        "sizes its battery reservation for stock ESS, which ess_control overrides",
    ),
}
"""Victron feature -> (venus-ems feature tables it conflicts with, why)."""


@dataclass(frozen=True)
class Addon:
    """A third-party add-on that does what venus-ems features do."""

    name: str
    service_dirs: tuple[str, ...]
    markers: tuple[str, ...]
    """Substrings of a D-Bus service name, ``/Mgmt/ProcessName`` or ``/ProductName``."""
    overlaps: frozenset[str]
    """venus-ems feature tables that must not run beside it."""


ADDONS = (
    Addon(
        "es-ESS",
        ("es-ESS",),
        ("esESS_", "es-ESS"),
        frozenset(
            {
                "grid_meter",
                "pv_meter",
                "temperature",
                "mqtt_exporter",
                "time_to_go",
                "surplus",
                "ev_charger",
                "no_battery_to_ev",
                "charge_current_reducer",
            }
        ),
    ),
    # dbus-opendtu(-DC-load) writes the inverters' limits (the DC-load variant) or publishes them
    # as pvinverters: either way two programs would drive or count the same inverters
    Addon(
        "dbus-opendtu",
        ("dbus-opendtu",),
        ("dbus-opendtu", "OpenDTU"),
        frozenset({"micro_inverter_control"}),
    ),
    Addon(
        "dbus_water_heater",
        ("dbus_water_heater",),
        ("dbus_water_heater", ".boiler."),
        frozenset({"water_heater"}),
    ),
)


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    level: str
    title: str
    text: str


@dataclass
class Facts:
    """Everything the doctor found; each check reads only this."""

    target: Target
    installed: str | None = None
    """``0.1.0 (0.1.0-ab12cd34) in /data/...``, None when not installed here."""
    integrity: list[str] = field(default_factory=list)
    service: SvStatus | None = None
    hook: str | None = None
    """None when the boot hook is in place, else what is wrong with it."""
    config_path: str = ""
    config_error: str | None = None
    enabled: list[str] = field(default_factory=list)
    ess_method: str | None = None
    bus_error: str | None = None
    services: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    service_dirs: list[str] = field(default_factory=list)

    def setting(self, path: str) -> Any:
        """A localsettings value, None when absent."""
        return self.services.get(SETTINGS, {}).get(path)

    def tables(self) -> set[str]:
        """Enabled feature tables: ``grid_meter`` for ``grid_meter.house``."""
        return {name.split(".")[0] for name in self.enabled}


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def platform_checks(f: Facts) -> Iterator[Check]:
    """Venus OS, machine, Python."""
    t = f.target
    py = f"Python {t.python[0]}.{t.python[1]}"
    if t.venus is None:
        yield Check(WARN, "platform", f"not a Venus OS device ({t.uname}, {py})")
        return
    text = f"Venus OS {t.venus}, {t.machine or 'unknown machine'} ({t.uname}), {py}"
    too_old = t.venus.release < MIN_VENUS
    yield Check(FAIL if too_old else OK, "platform", text + (" - too old" if too_old else ""))


def install_checks(f: Facts) -> Iterator[Check]:
    """Installed build, its files, the service and the boot hook."""
    if f.installed is None:
        yield Check(NOTE, "install", "venus-ems is not installed here (no /data/.../venus-ems)")
        return
    if f.integrity:
        yield Check(FAIL, "install", f"{f.installed}: files changed: {'; '.join(f.integrity[:3])}")
    else:
        yield Check(OK, "install", f"{f.installed}, every file as shipped")
    s = f.service
    if s is None or not s.supervised:
        yield Check(FAIL, "service", "not supervised (is /service/venus-ems linked?)")
    elif not s.up:
        yield Check(FAIL, "service", s.text)
    else:
        yield Check(OK, "service", f"up (pid {s.pid}) for {s.seconds} s")
    if f.hook is None:
        yield Check(OK, "boot hook", "/data/rc.local re-links the service after a firmware update")
    else:
        yield Check(WARN, "boot hook", f.hook)


def config_checks(f: Facts) -> Iterator[Check]:
    """The config file."""
    if f.config_error is not None:
        yield Check(FAIL, "config", f"{f.config_path}: {f.config_error}")
        return
    enabled = ", ".join(f.enabled) if f.enabled else "no feature enabled"
    yield Check(OK, "config", f"{f.config_path} valid; {enabled}")


def _ess_mode(state: int | None) -> str:
    """The GUI's ESS mode from ``/Settings/CGwacs/BatteryLife/State``."""
    if not state:
        return "mode unknown"
    if state == 9:
        return "Keep batteries charged"
    return "Optimized (without BatteryLife)" if state >= 10 else "Optimized (with BatteryLife)"


_HUB4 = {1: "Hub4Mode 1 (total of phases)", 2: "Hub4Mode 2 (per phase)", 3: "Hub4Mode 3 (external)"}


def _short(text: str, width: int = 100) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) else "?"


def ess_checks(f: Facts) -> Iterator[Check]:
    """ESS mode and settings, DVCC."""
    if f.bus_error is not None:
        yield Check(FAIL, "D-Bus", f.bus_error)
        return
    if SETTINGS not in f.services:
        yield Check(FAIL, "settings", f"{SETTINGS} is not on the bus")
        return
    hub4 = _int(f.setting("/Settings/CGwacs/Hub4Mode"))
    state = _int(f.setting("/Settings/CGwacs/BatteryLife/State"))
    has_ess = hub4 is not None and HUB4 in f.services
    if not has_ess:
        level = FAIL if "ess_control" in f.tables() else NOTE
        yield Check(level, "ESS", "not installed (no hub4 service)")
    else:
        mode = _ess_mode(state)
        feed = f.setting("/Settings/CGwacs/MaxFeedInPower")
        text = (
            f"{mode}, {_HUB4.get(hub4 or 0, '?')}; setpoint "
            f"{_num(f.setting('/Settings/CGwacs/AcPowerSetPoint'))} W, feed-in limit "
            f"{'none' if feed in (None, -1) else f'{_num(feed)} W'}, minimum SoC "
            f"{_num(f.setting('/Settings/CGwacs/BatteryLife/MinimumSocLimit'))} %"
        )
        level = OK
        if hub4 == 3 and f.ess_method != "mode3":
            level, text = WARN, text + "; external control but no venus-ems mode-3 controller"
        yield Check(level, "ESS", text)
    bol = _int(f.setting("/Settings/Services/Bol"))
    bms = any(
        name.startswith(BATTERY + ".") and values.get("/Info/MaxChargeCurrent") is not None
        for name, values in f.services.items()
    )
    if bol is None:
        yield Check(NOTE, "DVCC", "unknown (no /Settings/Services/Bol)")
    elif bol >= 1:
        yield Check(OK, "DVCC", "on")
    else:
        yield Check(WARN if bms else NOTE, "DVCC", "off" + (" with a BMS present" if bms else ""))


def _ours(name: str, values: Mapping[str, Any]) -> bool:
    return ".venusems" in name or values.get("/Mgmt/ProcessName") == "venus-ems"


def grid_checks(f: Facts) -> Iterator[Check]:
    """Grid meters, and who else writes com.victronenergy.grid."""
    if f.bus_error is not None:
        return
    grids = {n: v for n, v in f.services.items() if n.startswith(GRID + ".")}
    if not grids:
        yield Check(WARN, "grid meter", "none on the bus")
        return
    ordered = sorted(grids, key=lambda n: (_int(grids[n].get("/DeviceInstance")) or 0, n))
    shown = ", ".join(
        f"{n.split('.', 3)[3]} (instance {grids[n].get('/DeviceInstance')}"
        f"{', venus-ems' if _ours(n, grids[n]) else ''})"
        for n in ordered
    )
    others = [n for n in ordered if not _ours(n, grids[n])]
    if "grid_meter" in f.tables() and others:
        yield Check(FAIL, "grid meter", f"{shown}: another process publishes a grid meter too")
    elif len(grids) > 1:
        yield Check(WARN, "grid meter", f"{shown}: systemcalc uses the lowest instance only")
    else:
        yield Check(OK, "grid meter", shown)


def addon_checks(f: Facts) -> Iterator[Check]:
    """Add-ons that do what venus-ems does."""
    tables = f.tables()
    for addon in ADDONS:
        where = [f"/service/{d}" for d in addon.service_dirs if d in f.service_dirs]
        where += [
            n
            for n, v in f.services.items()
            if any(
                m in n or m in str(v.get("/Mgmt/ProcessName", "")) or m == v.get("/ProductName")
                for m in addon.markers
            )
        ]
        if not where:
            continue
        clash = sorted(addon.overlaps & tables)
        if clash:
            text = f"runs ({', '.join(where[:3])}) beside venus-ems {', '.join(clash)}"
            yield Check(FAIL, addon.name, text + ": disable one of the two")
        else:
            yield Check(NOTE, addon.name, f"runs ({', '.join(where[:3])})")


def native_checks(f: Facts) -> Iterator[Check]:
    """Dynamic ESS and Opportunity Loads against the enabled features."""
    if f.bus_error is not None:
        return
    dess = _int(f.setting("/Settings/DynamicEss/Mode")) or 0
    ol = _int(f.setting("/Settings/Services/OpportunityLoads")) or 0
    active = {
        "Dynamic ESS": dess > 0,
        "Opportunity Loads": ol > 0 or OPPORTUNITY_LOADS in f.services,
    }
    for native, on in active.items():
        if not on:
            continue
        tables, why = NATIVE_CONFLICTS[native]
        clash = sorted(tables & f.tables())
        if clash:
            yield Check(FAIL, native, f"is on while {', '.join(clash)} is enabled: it {why}")
        else:
            yield Check(NOTE, native, "is on")


def feature_checks(f: Facts) -> Iterator[Check]:
    """Each feature's state on com.victronenergy.venusems."""
    if f.bus_error is not None:
        return
    status = f.services.get(STATUS)
    if status is None:
        level = FAIL if f.installed is not None or f.enabled else NOTE
        yield Check(level, "daemon", f"{STATUS} is not on the bus: venus-ems is not running")
        return
    yield Check(OK, "daemon", f"venus-ems {status.get('/Version')} on the bus")
    running = set()
    for path, value in sorted(status.items()):
        if not (path.startswith("/Features/") and path.endswith("/State")):
            continue
        base = path[: -len("/State")]
        name = str(status.get(f"{base}/Name", base.split("/")[2]))
        running.add(name)
        error = status.get(f"{base}/LastError") or ""
        restarts = status.get(f"{base}/Restarts") or 0
        decision = str(status.get(f"{base}/Decision") or "")
        reasons = str(status.get(f"{base}/Reasons") or "")
        if reasons:
            decision += f" ({reasons})"
        text = f"{value}" + (f", {restarts} restarts" if restarts else "")
        text += f": {error}" if error else (f": {_short(decision)}" if decision else "")
        level = {"running": OK, "failed": FAIL, "stopped": FAIL}.get(str(value), WARN)
        yield Check(level, f"feature {name}", text)
    stale = sorted(set(f.enabled) ^ running) if f.config_error is None else []
    if stale:
        yield Check(WARN, "features", f"config and daemon differ ({', '.join(stale)}): restart")


CHECKS = (
    platform_checks,
    install_checks,
    config_checks,
    ess_checks,
    grid_checks,
    native_checks,
    addon_checks,
    feature_checks,
)


def all_checks(f: Facts) -> list[Check]:
    """Every check, in report order."""
    return [c for check in CHECKS for c in check(f)]
