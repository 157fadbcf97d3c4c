"""Settings, readings and state of the micro-inverter core (:mod:`.micro`).

Powers in W: grid + = import, inverter AC + = producing. Limits are whole percent of an
inverter's nameplate (OpenDTU's relative limit), so the core decides in the steps the inverter
really takes. Times are seconds on the caller's monotonic clock. Constructors reject NaN,
negative powers and inconsistent bounds with ValueError.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .commands import check_finite
from .inputs import BatterySample, GridSample
from .micro_battery import BatteryRules, BatteryState

__all__ = [
    "InverterSample",
    "InverterSettings",
    "InverterState",
    "MicroInputs",
    "MicroSettings",
    "MicroState",
]


@dataclass(frozen=True, slots=True)
class InverterSettings:
    """One battery-fed inverter: nameplate W, own maximum W, minimum and safe limit in %.

    ``priority``: higher is raised first and lowered last. ``dead_time_s``: from a command to
    its full effect (HM-600 ~3 s, HM-1500 18-25 s); with ``learn_dead_time`` it is only the
    starting value of what the core measures.
    """

    serial: str
    max_power_w: float
    max_w: float | None = None
    min_pct: int = 3
    safe_pct: int | None = None
    priority: int = 0
    dead_time_s: float = 10.0
    learn_dead_time: bool = True

    def __post_init__(self) -> None:
        """Validate (ValueError naming the field)."""
        if not self.serial:
            raise ValueError("serial must not be empty")
        check_finite("max_power_w", self.max_power_w)
        if self.max_power_w <= 0:
            raise ValueError(f"max_power_w = {self.max_power_w}: expected > 0")
        if self.max_w is not None:
            check_finite("max_w", self.max_w)
        if not 0 <= self.min_pct <= self.max_pct:
            raise ValueError(f"min_pct = {self.min_pct}: expected 0..{self.max_pct} (max_w)")
        if self.safe_pct is not None and not self.min_pct <= self.safe_pct <= self.max_pct:
            raise ValueError(f"safe_pct = {self.safe_pct}: expected min_pct..{self.max_pct}")
        check_finite("dead_time_s", self.dead_time_s)
        if not 0 < self.dead_time_s <= 120:
            raise ValueError(f"dead_time_s = {self.dead_time_s}: expected 0 < s <= 120")

    @property
    def step_w(self) -> float:
        """W per percent."""
        return self.max_power_w / 100.0

    @property
    def max_pct(self) -> int:
        """Highest limit in whole percent (``max_w`` rounded down, at most 100)."""
        if self.max_w is None:
            return 100
        return int(min(max(math.floor(self.max_w / self.step_w + 1e-9), 0), 100))

    @property
    def safe(self) -> int:
        """The safe limit in %: ``safe_pct``, else the minimum."""
        return self.min_pct if self.safe_pct is None else self.safe_pct

    def watts(self, pct: float) -> float:
        """``pct`` % in W."""
        return pct * self.step_w


@dataclass(frozen=True, slots=True)
class MicroSettings:
    """The whole control: inverters, grid aim and band, caps, staleness, failures, battery.

    The grid is held inside ``[target_w - down_band_w, target_w + up_band_w]``. ``total_cap_w``
    bounds the AC of every micro-inverter the feature knows (the legal limit of a plug-in
    system), PV-fed ones included. ``max_increase_w`` caps one raise (None = none). An import
    must last ``up_delay_s`` before the fastest inverter is raised, and k times as long for one
    with k times its dead time (a short peak is over before a slow inverter would follow it,
    and a followed peak ends in export). Readings older than ``stale_after_s`` (grid) or
    ``dtu_stale_after_s`` (the DTU's answers) put every inverter at its safe limit.
    ``meter_latency_s``: how long after a change the grid reading shows it. After
    ``max_failures`` failed limit writes an inverter is restarted, at most every
    ``restart_backoff_s``, and its limit is set anew ``restart_settle_s`` later.
    """

    inverters: tuple[InverterSettings, ...]
    target_w: float = 25.0
    down_band_w: float = 25.0
    up_band_w: float = 25.0
    max_increase_w: float | None = None
    up_delay_s: float = 0.0
    total_cap_w: float | None = 800.0
    stale_after_s: float = 5.0
    dtu_stale_after_s: float = 30.0
    meter_latency_s: float = 1.0
    max_failures: int = 3
    restart_backoff_s: float = 600.0
    restart_settle_s: float = 60.0
    rotate_s: float = 3600.0
    battery: BatteryRules = field(default_factory=BatteryRules)

    def __post_init__(self) -> None:
        """Validate (ValueError naming the field)."""
        if not self.inverters:
            raise ValueError("at least one inverter is needed")
        serials = [i.serial for i in self.inverters]
        if len(set(serials)) != len(serials):
            raise ValueError("inverter serials must be unique")
        for name in (
            "target_w",
            "down_band_w",
            "up_band_w",
            "up_delay_s",
            "meter_latency_s",
            "rotate_s",
        ):
            check_finite(name, getattr(self, name))
        if self.down_band_w < 0 or self.up_band_w < 0:
            raise ValueError("bands must be >= 0 W")
        if self.up_delay_s < 0:
            raise ValueError("up_delay_s must be >= 0")
        for name in ("max_increase_w", "total_cap_w"):
            value = getattr(self, name)
            if value is not None:
                check_finite(name, value)
                if value <= 0:
                    raise ValueError(f"{name} = {value}: expected > 0 or None")
        for name in ("stale_after_s", "dtu_stale_after_s", "restart_backoff_s"):
            check_finite(name, getattr(self, name))
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")
        if self.max_failures < 1:
            raise ValueError("max_failures must be >= 1")

    def inverter(self, serial: str) -> InverterSettings:
        """The settings of ``serial`` (KeyError if unknown)."""
        for inv in self.inverters:
            if inv.serial == serial:
                return inv
        raise KeyError(serial)


@dataclass(frozen=True, slots=True)
class InverterSample:
    """What is known of one inverter now.

    From the DTU: ``reachable``; ``ac_power_w``/``dc_power_w`` as of ``data_at`` (when the DTU
    last polled it; None = unknown, never 0); the limit it reports (``limit_pct``, with
    ``limit_state`` Ok/Pending/Failure/Unknown). From our writer: the last limit it confirmed by
    read-back (``confirmed_pct`` at ``confirmed_at``) and how many writes failed in a row.
    """

    serial: str
    reachable: bool
    data_at: float
    ac_power_w: float | None = None
    dc_power_w: float | None = None
    limit_pct: float | None = None
    limit_state: str | None = None
    confirmed_pct: int | None = None
    confirmed_at: float | None = None
    write_failures: int = 0

    def __post_init__(self) -> None:
        """Reject NaN and negative powers (ValueError)."""
        check_finite("data_at", self.data_at)
        for name in ("ac_power_w", "dc_power_w", "limit_pct"):
            value = getattr(self, name)
            if value is not None:
                check_finite(name, value)
                if value < 0:
                    raise ValueError(f"{name} = {value}: expected >= 0")


@dataclass(frozen=True, slots=True)
class MicroInputs:
    """One decision's readings; ``dtu_at``: when the DTU last answered (None: never).

    ``other_w``: AC W of the PV-fed micro-inverters under the same total cap (None: unknown,
    counted at their maximum ``other_max_w``). ``hold_off``: why another controller owns the
    grid target now (the inverters then go to their safe limit).
    """

    grid: GridSample | None
    battery: BatterySample | None
    inverters: tuple[InverterSample, ...] = ()
    dtu_at: float | None = None
    other_w: float | None = 0.0
    other_max_w: float = 0.0
    hold_off: str | None = None


@dataclass(frozen=True, slots=True)
class InverterState:
    """The core's memory of one inverter.

    ``commanded_pct`` is the limit last commanded (None: none yet, the next is the safe one),
    sent at ``commanded_at`` while ``from_pct`` was in force (None: unknown). ``applied_at``:
    when the DTU showed the output at the new limit; ``dead_s``: the dead time learnt.
    """

    commanded_pct: int | None = None
    commanded_at: float = -math.inf
    from_pct: float | None = None
    applied_at: float | None = None
    dead_s: float | None = None
    restarted_at: float | None = None
    lost: bool = False


@dataclass(frozen=True, slots=True)
class MicroState:
    """Per-inverter memory (serial -> state), the last grid reading used, battery and rotation."""

    inverters: tuple[tuple[str, InverterState], ...] = ()
    grid_used_at: float | None = None
    up_since: float | None = None
    battery: BatteryState = field(default_factory=BatteryState)
    rotation: int = 0
    rotated_at: float | None = None
    safe: bool = False

    def of(self, serial: str) -> InverterState:
        """The state of ``serial`` (a fresh one if unknown)."""
        for s, st in self.inverters:
            if s == serial:
                return st
        return InverterState()
