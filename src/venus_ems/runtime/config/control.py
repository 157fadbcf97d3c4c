"""``[ess_control]`` (C1) and ``[output_limiter]`` (C2). Setpoints: + = import from the grid."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from .base import FeatureTable, Items

__all__ = ["EssControlConfig", "OutputLimiterConfig"]

_MAX_W = 100_000.0


class EssControlConfig(FeatureTable):
    """ESS grid control: one mode at a time, via the hub4 override or mode-3 setpoints.

    Powers in W, setpoints + = import; battery current in A, + = charging; inverter power
    in W, + = inverting (AC out of the Multi), - = charging from AC.
    """

    feature = "venus_ems.features.ess_control:build"

    mode: Literal["grid_target", "inverter_power", "battery_current", "soc_target"] = "grid_target"
    grid_target: Literal["zero_export", "export_cap", "import_cap", "fixed"] = "zero_export"
    target_w: float = Field(default=0.0, ge=-_MAX_W, le=_MAX_W)
    export_cap_w: float = Field(default=0.0, ge=0.0, le=_MAX_W)
    import_cap_w: float = Field(default=0.0, ge=0.0, le=_MAX_W)
    dead_band_w: float = Field(default=25.0, ge=0.0, le=5000.0)
    max_increase_w: float = Field(default=500.0, gt=0.0, le=_MAX_W)
    method: Literal["hub4_override", "mode3"] = "hub4_override"
    allow_mode3: bool = False
    mode3_refresh_s: float = Field(default=5.0, ge=0.5, le=10.0)
    safe_setpoint_w: float | None = Field(default=None, ge=-_MAX_W, le=_MAX_W)
    stale_input_s: float = Field(default=5.0, ge=0.5, le=300.0)
    dead_time_s: float = Field(default=2.0, ge=0.0, le=60.0)
    per_phase: bool = False
    soc_target_pct: float = Field(default=50.0, ge=0.0, le=100.0)
    soc_hysteresis_pct: float = Field(default=2.0, ge=0.0, le=20.0)
    inverter_power_w: float = Field(default=0.0, ge=-_MAX_W, le=_MAX_W)
    battery_current_a: float = Field(default=0.0, ge=-10_000.0, le=10_000.0)
    min_mode_switch_s: float = Field(default=30.0, ge=0.0, le=3600.0)
    multi_error_w: float = Field(default=100.0, ge=0.0, le=1000.0)
    meter_noise_w: float = Field(default=5.0, ge=0.0, le=1000.0)
    curtail_pv: bool = True
    pv_limit_refresh_s: float = Field(default=20.0, ge=1.0, le=50.0)

    @model_validator(mode="after")
    def _consistent(self) -> EssControlConfig:
        """Mode 3 is opt-in, per-phase needs mode 3, the SoC band stays inside 0..100 %."""
        if self.method == "mode3" and not self.allow_mode3:
            raise ValueError(
                'method = "mode3" takes the ESS loop away from the Multi: '
                "set allow_mode3 = true to confirm"
            )
        if self.per_phase and self.method != "mode3":
            raise ValueError('per_phase = true needs method = "mode3" (per-phase setpoints)')
        if self.mode == "soc_target" and not (
            self.soc_target_pct - self.soc_hysteresis_pct >= 0.0
            and self.soc_target_pct + self.soc_hysteresis_pct <= 100.0
        ):
            raise ValueError(
                f"soc_target_pct +/- soc_hysteresis_pct ({self.soc_target_pct} +/- "
                f"{self.soc_hysteresis_pct}) must stay within 0..100"
            )
        if self.dead_time_s >= self.stale_input_s:
            raise ValueError(
                f"dead_time_s ({self.dead_time_s}) must be < stale_input_s ({self.stale_input_s})"
            )
        return self


_VEBUS = re.compile(r"auto|com\.victronenergy\.vebus\.[A-Za-z0-9_]+")


def _check_vebus(name: str) -> str:
    """``auto`` or a vebus service name."""
    if not _VEBUS.fullmatch(name):
        raise ValueError("expected 'auto' or a name like 'com.victronenergy.vebus.ttyS4'")
    return name


class OutputLimiterConfig(FeatureTable):
    """Cap the Multi's AC output (W, total or per phase) in gradual steps."""

    feature = "venus_ems.features.output_limiter:build"

    limit_w: float | None = Field(default=None, gt=0.0, le=_MAX_W)
    per_phase: bool = False
    phase_limits_w: Items[Annotated[float, Field(gt=0.0, le=_MAX_W)]] | None = None
    floor_w: float = Field(default=0.0, ge=0.0, le=_MAX_W)
    max_step_w: float = Field(default=500.0, gt=0.0, le=_MAX_W)
    release_hysteresis_w: float = Field(default=200.0, ge=0.0, le=_MAX_W)
    release_hysteresis_s: float = Field(default=30.0, ge=0.0, le=3600.0)
    method: Literal["max_discharge_power", "setpoint"] = "max_discharge_power"
    min_write_interval_s: float = Field(default=5.0, ge=1.0, le=3600.0)
    vebus_service: Annotated[str, AfterValidator(_check_vebus)] = "auto"

    @model_validator(mode="after")
    def _consistent(self) -> OutputLimiterConfig:
        """One way to give the limit; the floor is below every limit."""
        if self.limit_w is not None and self.phase_limits_w is not None:
            raise ValueError("set either limit_w or phase_limits_w, not both")
        if self.phase_limits_w is not None:
            if len(self.phase_limits_w) != 3:
                raise ValueError(
                    f"phase_limits_w needs 3 values (L1, L2, L3), got {len(self.phase_limits_w)}"
                )
            if self.per_phase:
                raise ValueError(
                    "per_phase applies to limit_w; phase_limits_w is per phase already"
                )
        if self.enabled and self.limit_w is None and self.phase_limits_w is None:
            raise ValueError("enabled = true needs limit_w or phase_limits_w")
        limits = self.phase_limits_w or ((self.limit_w,) if self.limit_w is not None else ())
        if limits and self.floor_w >= min(limits):
            raise ValueError(f"floor_w ({self.floor_w}) must be < the limit ({min(limits)})")
        return self
