"""Readings the ESS cores decide on: plain numbers with units in names and the time taken.

Each group (grid, battery, Multi) carries ``measured_at``, seconds on the injected clock's
monotonic scale. A group that is absent or older than the staleness limit is treated as
missing — never as 0. Constructors reject NaN/inf and malformed tuples with ValueError.
Signs (Victron): grid + = import; battery power + = charging; Multi AC-in + = into the Multi;
Multi AC-out + = to the loads.
"""

from __future__ import annotations

from dataclasses import dataclass

from .commands import check_finite

__all__ = ["BatterySample", "EssInputs", "GridSample", "MultiSample", "check_phases"]


def check_phases(name: str, values: tuple[float, ...]) -> None:
    """Raise ValueError unless ``values`` is a 1-3 tuple of finite numbers."""
    if not isinstance(values, tuple) or not 1 <= len(values) <= 3:
        raise ValueError(f"{name} = {values!r}: expected a tuple of 1 to 3 phase values")
    for i, value in enumerate(values):
        check_finite(f"{name}[{i}]", value)


@dataclass(frozen=True, slots=True)
class GridSample:
    """Grid meter reading per phase (W, + = import); a 1-tuple on a 3-phase site = total only."""

    power_w: tuple[float, ...]
    measured_at: float

    def __post_init__(self) -> None:
        """Validate (ValueError)."""
        check_phases("grid power_w", self.power_w)
        check_finite("grid measured_at", self.measured_at)

    @property
    def total_w(self) -> float:
        """Sum over phases (W, + = import)."""
        return sum(self.power_w)


@dataclass(frozen=True, slots=True)
class BatterySample:
    """Battery and BMS readings; any field may be ``None`` (unknown).

    ``power_w`` + = charging; ``ccl_a``/``dcl_a`` are the BMS charge/discharge current limits;
    ``active_soc_limit_pct`` is systemcalc's ``/Control/ActiveSocLimit`` (the ESS SoC floor).
    """

    measured_at: float
    soc_pct: float | None = None
    voltage_v: float | None = None
    power_w: float | None = None
    ccl_a: float | None = None
    dcl_a: float | None = None
    allow_charge: bool | None = None
    allow_discharge: bool | None = None
    active_soc_limit_pct: float | None = None

    def __post_init__(self) -> None:
        """Validate ranges and types (ValueError)."""
        check_finite("battery measured_at", self.measured_at)
        for name in ("soc_pct", "voltage_v", "power_w", "ccl_a", "dcl_a", "active_soc_limit_pct"):
            value = getattr(self, name)
            if value is not None:
                check_finite(f"battery {name}", value)
        for name in ("ccl_a", "dcl_a", "voltage_v"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"battery {name} = {value}: expected >= 0")
        for name in ("soc_pct", "active_soc_limit_pct"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 100:
                raise ValueError(f"battery {name} = {value}: expected 0..100 %")
        for name in ("allow_charge", "allow_discharge"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, bool):
                raise ValueError(f"battery {name} = {value!r}: expected a bool or None")


@dataclass(frozen=True, slots=True)
class MultiSample:
    """Multi (VE.Bus) AC readings per phase (W); either tuple may be ``None`` (unknown)."""

    measured_at: float
    ac_in_w: tuple[float, ...] | None = None
    ac_out_w: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        """Validate (ValueError)."""
        check_finite("multi measured_at", self.measured_at)
        if self.ac_in_w is not None:
            check_phases("multi ac_in_w", self.ac_in_w)
        if self.ac_out_w is not None:
            check_phases("multi ac_out_w", self.ac_out_w)
        if (
            self.ac_in_w is not None
            and self.ac_out_w is not None
            and len(self.ac_in_w) != len(self.ac_out_w)
        ):
            raise ValueError(
                f"multi ac_in_w has {len(self.ac_in_w)} phases, ac_out_w {len(self.ac_out_w)}"
            )


@dataclass(frozen=True, slots=True)
class EssInputs:
    """Everything the ESS cores read in one decision.

    ``max_feed_in_w`` is ESS MaxFeedInPower (W >= 0, ``None`` = no limit, -1 accepted as none).
    ``setpoint_w`` is the setpoint in force as read back (per phase in mode 3, a 1-tuple for the
    grid setpoint); it seeds the core when its state holds no command yet (start-up).
    ``acin_producers_w`` is what known producers on AC-in make now (W >= 0, e.g. AC-coupled PV
    not limited by us; ``None`` = unknown): mode 3 feeds its changes forward.
    """

    grid: GridSample | None = None
    battery: BatterySample | None = None
    multi: MultiSample | None = None
    max_feed_in_w: float | None = None
    setpoint_w: tuple[float, ...] | None = None
    acin_producers_w: float | None = None

    def __post_init__(self) -> None:
        """Validate; normalise ``max_feed_in_w`` -1 to ``None`` (ValueError on other negatives)."""
        if self.max_feed_in_w is not None:
            check_finite("max_feed_in_w", self.max_feed_in_w)
            if self.max_feed_in_w == -1:
                object.__setattr__(self, "max_feed_in_w", None)
            elif self.max_feed_in_w < 0:
                raise ValueError(f"max_feed_in_w = {self.max_feed_in_w}: expected >= 0 or -1")
        if self.setpoint_w is not None:
            check_phases("setpoint_w", self.setpoint_w)
        if self.acin_producers_w is not None:
            check_finite("acin_producers_w", self.acin_producers_w)
