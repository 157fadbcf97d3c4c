"""Readings for the ESS features, from the shared Monitor, stamped with when they were current.

The Monitor reports changes only, so freshness is tracked here from the change stream:

* the grid reading (``system /Ac/Grid/Lx/Power``, + = import) is stamped with the time one of
  its paths last changed: a live meter's noise changes it every sample, so a meter that stops
  updating goes stale after ``stale_input_s`` even while systemcalc keeps publishing;
* battery (``system /Dc/Battery/*``, and ``/Info/*``, ``/Io/*`` of the battery systemcalc uses,
  chosen by :func:`venus_ems.venus.active.active_service`) and Multi (vebus ``/Ac/ActiveIn/Lx/P``,
  ``/Ac/Out/Lx/P``) readings are stamped with the last time their
  publisher sent anything: a constant value of a live service is still current.

Values that fail validation (a SoC of 140 %, a negative voltage) make their group missing,
with the reason, never 0. Also here: the settings the ESS guards read (Hub4Mode, Dynamic ESS;
the rule itself is :mod:`venus_ems.control.guards`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..clock import Clock
from ..control import BatterySample, EssInputs, EssMethod, GridSample, MultiSample
from ..control.guards import EssGuard
from ..control.guards import ess_guard as _guard
from ..venus import SETTINGS_SERVICE, Monitor, Value
from ..venus.active import active_service
from ..venus.names import BATTERY, HUB4, SYSTEM, VEBUS

__all__ = ["InputTracker", "ess_guard", "phase_count", "read_guard"]

HUB4_MODE = "/Settings/CGwacs/Hub4Mode"
DESS_MODE = "/Settings/DynamicEss/Mode"
_GRID_PATHS = frozenset(f"/Ac/Grid/L{p}/Power" for p in (1, 2, 3))


def phase_count(monitor: Monitor, vebus: str | None = None) -> int:
    """Phases of the site: vebus ``/Ac/NumberOfPhases``, else the grid phases shown, else 1.

    ``vebus`` names the Multi's service; by default the one systemcalc reports.
    """
    vebus = vebus or active_service(monitor, VEBUS)
    n = monitor.get_int(vebus, "/Ac/NumberOfPhases") if vebus else None
    if n in (1, 2, 3):
        assert n is not None
        return n
    shown = [p for p in (1, 2, 3) if monitor.get_float(SYSTEM, f"/Ac/Grid/L{p}/Power") is not None]
    return max(shown) if shown else 1


def read_guard(monitor: Monitor) -> tuple[int | None, int | None]:
    """ESS mode (``Hub4Mode``) and Dynamic ESS mode from localsettings (None = unknown)."""
    return monitor.get_int(SETTINGS_SERVICE, HUB4_MODE), monitor.get_int(
        SETTINGS_SERVICE, DESS_MODE
    )


def ess_guard(monitor: Monitor, method: EssMethod) -> EssGuard:
    """The ESS guard (:func:`venus_ems.control.guards.ess_guard`) on the settings in force."""
    return _guard(*read_guard(monitor), method)


def _tuple(values: list[float | None]) -> tuple[float, ...] | None:
    if any(v is None for v in values):
        return None
    return tuple(v for v in values if v is not None)


def _flag(value: Value) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    return None


@dataclass
class InputTracker:
    """Follows the change stream; builds :class:`EssInputs` stamped on the monitor's clock."""

    clock: Clock
    seen_at: dict[str, float] = field(default_factory=dict)
    grid_at: float | None = None
    started_at: float | None = None
    rejected: list[str] = field(default_factory=list)

    def start(self) -> None:
        """Values already on the bus count as current now."""
        self.started_at = self.clock.monotonic()

    def update(self, changes: Mapping[tuple[str, str], Value]) -> bool:
        """Record a batch of changes; True if the grid reading changed."""
        now = self.clock.monotonic()
        grid = False
        for service, path in changes:
            self.seen_at[service] = now
            if service == SYSTEM and path in _GRID_PATHS:
                grid = True
        if grid:
            self.grid_at = now
        return grid

    def _at(self, service: str | None) -> float | None:
        if service is None:
            return None
        return self.seen_at.get(service, self.started_at)

    def grid(self, monitor: Monitor, phases: int) -> GridSample | None:
        """Grid power per phase (W, + = import); None when a phase is invalid."""
        values = _tuple(
            [monitor.get_float(SYSTEM, f"/Ac/Grid/L{p}/Power") for p in range(1, phases + 1)]
        )
        at = self.grid_at if self.grid_at is not None else self.started_at
        if values is None or at is None:
            return None
        try:
            return GridSample(values, at)
        except ValueError as err:
            self.rejected.append(f"grid readings rejected: {err}")
            return None

    def battery(self, monitor: Monitor) -> BatterySample | None:
        """Battery and BMS readings (power + = charging); None when nothing is known."""
        at = self._at(SYSTEM)
        soc = monitor.get_float(SYSTEM, "/Dc/Battery/Soc")
        volt = monitor.get_float(SYSTEM, "/Dc/Battery/Voltage")
        power = monitor.get_float(SYSTEM, "/Dc/Battery/Power")
        if at is None or (soc is None and volt is None and power is None):
            return None
        bms = active_service(monitor, BATTERY)  # the BMS systemcalc uses
        ccl = dcl = None
        allow_c = allow_d = None
        if bms is not None:
            ccl = monitor.get_float(bms, "/Info/MaxChargeCurrent")
            dcl = monitor.get_float(bms, "/Info/MaxDischargeCurrent")
            allow_c = _flag(monitor.get(bms, "/Io/AllowToCharge"))
            allow_d = _flag(monitor.get(bms, "/Io/AllowToDischarge"))
            bms_at = self._at(bms)
            at = min(at, bms_at) if bms_at is not None else at
        try:
            return BatterySample(
                measured_at=at,
                soc_pct=soc,
                voltage_v=volt,
                power_w=power,
                ccl_a=ccl,
                dcl_a=dcl,
                allow_charge=allow_c,
                allow_discharge=allow_d,
                active_soc_limit_pct=monitor.get_float(SYSTEM, "/Control/ActiveSocLimit"),
            )
        except ValueError as err:
            self.rejected.append(f"battery readings rejected: {err}")
            return None

    def multi(self, monitor: Monitor, phases: int) -> MultiSample | None:
        """The Multi's AC-in (+ = into the Multi) and AC-out (+ = to loads) per phase, W."""
        vebus = active_service(monitor, VEBUS)
        at = self._at(vebus)
        if vebus is None or at is None:
            return None
        rng = range(1, phases + 1)
        ac_in = _tuple([monitor.get_float(vebus, f"/Ac/ActiveIn/L{p}/P") for p in rng])
        ac_out = _tuple([monitor.get_float(vebus, f"/Ac/Out/L{p}/P") for p in rng])
        if ac_in is None and ac_out is None:
            return None
        try:
            return MultiSample(at, ac_in, ac_out)
        except ValueError as err:
            self.rejected.append(f"Multi readings rejected: {err}")
            return None

    def inputs(self, monitor: Monitor, phases: int, method: EssMethod) -> EssInputs:
        """Everything the ESS core reads, now; rejected groups are listed in ``rejected``."""
        self.rejected = []
        feed = monitor.get_float(SETTINGS_SERVICE, "/Settings/CGwacs/MaxFeedInPower")
        setpoint: tuple[float, ...] | None = None
        if method is EssMethod.HUB4_OVERRIDE:
            # Seed the core with an override in force (a restart); without one it starts by
            # writing its own aim, so the output is ours from the first decision.
            value = monitor.get_float(HUB4, "/Overrides/Setpoint")
            setpoint = None if value is None else (value,)
        try:
            return EssInputs(
                self.grid(monitor, phases),
                self.battery(monitor),
                self.multi(monitor, phases),
                None if feed is None or feed < 0 else feed,
                setpoint,
            )
        except ValueError as err:  # a non-finite setpoint or feed-in limit: drop both
            self.rejected.append(f"ESS settings rejected: {err}")
            return EssInputs(
                self.grid(monitor, phases), self.battery(monitor), self.multi(monitor, phases)
            )
