"""EV tables: ``[ev_charger]`` (S4), ``[no_battery_to_ev]`` (C4), ``[charge_current_reducer]`` (C5).

Currents in A per phase, powers in W (+ = drawn / more import), times in s, SoC in %, clock
times ``HH:MM`` local.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from ...control.charge_reducer import SocFormula
from .base import DeviceInstance, FeatureTable, Host, Items, StrictModel
from .secrets import Secret

__all__ = [
    "ChargeCurrentReducerConfig",
    "ChargeWindow",
    "EvChargerConfig",
    "NoBatteryToEvConfig",
]


def _minutes(text: str) -> int:
    hh, colon, mm = text.partition(":")
    if not colon or not (hh.isdigit() and mm.isdigit()) or len(mm) != 2:
        raise ValueError(f"expected HH:MM, got {text!r}")
    h, m = int(hh), int(mm)
    if not (0 <= h <= 24 and 0 <= m < 60) or (h == 24 and m):
        raise ValueError(f"{text!r} is not a time of day")
    return h * 60 + m


class ChargeWindow(StrictModel):
    """A daily window (local time; ``end`` before ``start`` crosses midnight) to charge in."""

    start: str
    end: str
    current_a: float = Field(default=16.0, ge=6.0, le=32.0)
    phases: Literal[1, 3] = 3

    @field_validator("start", "end")
    @classmethod
    def _time(cls, value: str) -> str:
        """HH:MM."""
        _minutes(value)
        return value

    def contains(self, minute_of_day: int) -> bool:
        """Whether ``minute_of_day`` (0..1439) falls in the window."""
        a, b = _minutes(self.start), _minutes(self.end)
        if a <= b:
            return a <= minute_of_day < b
        return minute_of_day >= a or minute_of_day < b


class EvChargerConfig(FeatureTable):
    """A Fronius Wattpilot published as com.victronenergy.evcharger, with surplus charging."""

    feature = "venus_ems.features.ev_charger:build"

    driver: Literal["wattpilot"] = "wattpilot"
    host: Host | None = None
    password: Secret | None = None
    auth: Literal["auto", "pbkdf2", "bcrypt"] = "auto"
    timeout_s: float = Field(default=5.0, ge=0.5, le=30.0)
    mode: Literal["manual", "auto", "scheduled"] = "auto"
    manual_current_a: float = Field(default=16.0, ge=6.0, le=32.0)
    manual_phases: Literal[1, 3] = 3
    min_current_a: float = Field(default=6.0, ge=6.0, le=16.0)
    max_current_a: float = Field(default=16.0, ge=6.0, le=32.0)
    max_phases: Literal[1, 3] = 3
    start_delay_s: float = Field(default=60.0, ge=0.0, le=3600.0)
    stop_delay_s: float = Field(default=180.0, ge=0.0, le=3600.0)
    up_delay_s: float = Field(default=120.0, ge=0.0, le=3600.0)
    down_delay_s: float = Field(default=180.0, ge=0.0, le=3600.0)
    min_on_off_s: float = Field(default=300.0, ge=0.0, le=7200.0)
    min_phase_switch_s: float = Field(default=600.0, ge=60.0, le=7200.0)
    start_margin: float = Field(default=1.1, ge=1.0, le=2.0)
    battery_soc_pct: float | None = Field(default=95.0, ge=0.0, le=100.0)
    """Above this house-battery SoC its charge power counts as surplus (None: never)."""
    windows: Items[ChargeWindow] = ()
    low_price_neutral: bool = False
    """Without surplus in auto mode hand the charger back to its own (low-price) logic."""
    safe_state: Literal["pause", "neutral"] = "pause"
    stale_input_s: float = Field(default=15.0, ge=3.0, le=300.0)
    priority: int = Field(default=40, ge=0, le=100)
    position: Literal["ac-out", "ac-in"] = "ac-out"
    device_instance: DeviceInstance | None = None
    custom_name: str | None = Field(default=None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _consistent(self) -> EvChargerConfig:
        """Enabled needs a host and a password; min <= max current."""
        if self.enabled and (self.host is None or self.password is None):
            raise ValueError("enabled = true needs host and password (the Wattpilot's)")
        if self.min_current_a > self.max_current_a:
            raise ValueError(
                f"min_current_a ({self.min_current_a}) must be <= max_current_a "
                f"({self.max_current_a})"
            )
        if self.timeout_s >= self.stale_input_s:
            raise ValueError("timeout_s must be below stale_input_s")
        return self


class NoBatteryToEvConfig(FeatureTable):
    """While the car charges, its draw comes from the grid, not the house battery (C4)."""

    feature = "venus_ems.features.no_battery_to_ev:build"

    min_car_w: float = Field(default=100.0, ge=0.0, le=5000.0)
    stale_input_s: float = Field(default=10.0, ge=2.0, le=120.0)
    interval_s: float = Field(default=2.0, ge=0.5, le=30.0)
    relay: int | None = Field(default=None, ge=0, le=8)
    """Active only while GX relay ``relay`` is on (es-ESS ``UseRelay``); None: always."""
    inverter_efficiency: float = Field(default=0.94, ge=0.8, le=1.0)
    """DC PV reaches AC loads through the Multi: this share of it (MultiPlus-II ~0.94)."""


class ChargeCurrentReducerConfig(FeatureTable):
    """Keep the battery charge current at or below ``limit_a`` by exporting DC PV (C5)."""

    feature = "venus_ems.features.charge_current_reducer:build"

    limit_a: str = Field(default="max(100 - soc, 30)", min_length=1, max_length=200)
    gain: float = Field(default=0.3, gt=0.0, le=1.0)
    max_export_w: float = Field(default=5000.0, gt=0.0, le=50_000.0)
    dead_band_a: float = Field(default=2.0, ge=0.0, le=50.0)
    stale_input_s: float = Field(default=10.0, ge=2.0, le=120.0)
    interval_s: float = Field(default=5.0, ge=1.0, le=60.0)

    @field_validator("limit_a")
    @classmethod
    def _formula(cls, text: str) -> str:
        """The formula evaluates to 0..10000 A at every SoC 0..100 (simpleeval, no eval)."""
        SocFormula(text)
        return text
