"""Commands, inputs and settings: validation with clear errors, normalisation, helpers."""

from __future__ import annotations

import math

import pytest

from venus_ems.control import (
    ActuatorSettings,
    BatterySample,
    Decision,
    EssInputs,
    EssSettings,
    GridSample,
    GridTargetSettings,
    LimiterSettings,
    MultiSample,
    Reason,
    ReasonCode,
    SetGridSetpoint,
    SetMaxDischargePower,
    SetOutputLimit,
    SetPhaseSetpoints,
    SocTargetSettings,
)
from venus_ems.control.baseline import BaselineSettings


def test_phase_setpoints_round_trip() -> None:
    cmd = SetPhaseSetpoints.of((100.0, -50.0, 25.0))
    assert cmd == SetPhaseSetpoints(100.0, -50.0, 25.0)
    assert cmd.phases_w == (100.0, -50.0, 25.0)
    assert cmd.total_w == 75.0
    assert SetPhaseSetpoints.of((10.0,)).phases_w == (10.0,)
    with pytest.raises(ValueError, match="1 to 3"):
        SetPhaseSetpoints.of(())
    with pytest.raises(ValueError, match="l3_w given without l2_w"):
        SetPhaseSetpoints(1.0, None, 2.0)


def test_max_discharge_power_minus_one_means_no_limit() -> None:
    assert SetMaxDischargePower(-1).w is None
    assert SetMaxDischargePower(None).dbus_value == -1.0
    assert SetMaxDischargePower(1500).dbus_value == 1500.0
    with pytest.raises(ValueError, match="expected >= 0"):
        SetMaxDischargePower(-5)


def test_output_limit_as_max_discharge_power() -> None:
    assert SetOutputLimit(None).as_max_discharge_power().dbus_value == -1.0
    assert SetOutputLimit(None).released
    cap = SetOutputLimit(3000.0, (1000.0, 1000.0, 1000.0), excess_w=120.0)
    assert cap.as_max_discharge_power().w == 3000.0
    with pytest.raises(ValueError, match="released"):
        SetOutputLimit(None, (1.0,))
    with pytest.raises(ValueError, match="excess_w"):
        SetOutputLimit(10.0, excess_w=-1.0)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, "12", True])
def test_commands_reject_non_numbers(bad: object) -> None:
    with pytest.raises(ValueError, match="total_w"):
        SetGridSetpoint(bad)  # type: ignore[arg-type]


def test_inputs_validation_names_the_field() -> None:
    with pytest.raises(ValueError, match=r"grid power_w\[1\] = nan"):
        GridSample((1.0, math.nan, 3.0), 0.0)
    with pytest.raises(ValueError, match="1 to 3 phase values"):
        GridSample((1.0, 2.0, 3.0, 4.0), 0.0)
    with pytest.raises(ValueError, match="battery soc_pct = 120"):
        BatterySample(0.0, soc_pct=120.0)
    with pytest.raises(ValueError, match="battery dcl_a = -1"):
        BatterySample(0.0, dcl_a=-1.0)
    with pytest.raises(ValueError, match="allow_charge"):
        BatterySample(0.0, allow_charge=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ac_in_w has 1 phases, ac_out_w 3"):
        MultiSample(0.0, (1.0,), (1.0, 2.0, 3.0))
    assert EssInputs(max_feed_in_w=-1).max_feed_in_w is None
    with pytest.raises(ValueError, match="max_feed_in_w"):
        EssInputs(max_feed_in_w=-2)


def test_grid_sample_total() -> None:
    assert GridSample((100.0, -50.0, 20.0), 1.0).total_w == 70.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "mode4"}, "method = 'mode4': expected one of hub4_override, mode3"),
        ({"phases": 4}, "phases = 4: expected 1, 2 or 3"),
        ({"efficiency": 0.0}, "efficiency = 0.0"),
        ({"efficiency": 1.2}, "efficiency = 1.2"),
        ({"inverter_max_w": 0.0}, "inverter_max_w = 0.0: expected > 0"),
        ({"dead_time_s": -1.0}, "dead_time_s = -1.0: expected >= 0"),
        ({"stale_after_s": math.nan}, "stale_after_s = nan"),
        ({"safe_setpoint_w": math.inf}, "safe_setpoint_w = inf"),
    ],
)
def test_actuator_settings_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ActuatorSettings(**kwargs)  # type: ignore[arg-type]


def test_actuator_settings_accepts_text_method() -> None:
    assert ActuatorSettings(method="mode3").method.value == "mode3"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "zero"}, "kind = 'zero': expected one of"),
        ({"kind": "export_cap"}, "export_cap needs cap_w"),
        ({"kind": "import_cap", "cap_w": -5.0}, "cap_w = -5.0: expected >= 0"),
        ({"kind": "fixed", "cap_w": 100.0}, "cap_w is only used with export_cap or import_cap"),
        ({"kind": "zero_export", "target_w": -10.0}, "zero_export needs a target >= 0"),
        ({"kind": "export_cap", "cap_w": 100.0, "target_w": -200.0}, "exports more than"),
        ({"kind": "import_cap", "cap_w": 100.0, "target_w": 200.0}, "imports more than"),
        ({"dead_band_w": -1.0}, "dead_band_w = -1.0"),
        ({"max_increase_w": 0.0}, "max_increase_w = 0.0: expected > 0 or None"),
    ],
)
def test_grid_target_settings_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GridTargetSettings(**kwargs)  # type: ignore[arg-type]


def test_mode_and_soc_settings_validation() -> None:
    with pytest.raises(ValueError, match="mode = 'off': expected one of grid_target"):
        EssSettings(mode="off")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="min_mode_interval_s = -1"):
        EssSettings(min_mode_interval_s=-1)
    with pytest.raises(ValueError, match="target_pct = 101"):
        SocTargetSettings(target_pct=101)
    with pytest.raises(ValueError, match="charge_power_w = -1"):
        SocTargetSettings(charge_power_w=-1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit_w": 0.0}, "limit_w = 0.0: expected > 0"),
        ({"limit_w": 1000.0, "floor_w": 1000.0}, "floor_w = 1000.0: expected below the limit"),
        ({"limit_w": 1000.0, "max_step_w": 0.0}, "max_step_w = 0.0"),
        ({"limit_w": 1000.0, "phase_limits_w": (1.0,)}, "phase_limits_w needs per_phase"),
        (
            {"limit_w": 1000.0, "phases": 3, "per_phase": True, "phase_limits_w": (1.0, 2.0)},
            "phase_limits_w has 2 values; expected 3",
        ),
        ({"limit_w": 1000.0, "release_after_s": -1.0}, "release_after_s = -1.0"),
    ],
)
def test_limiter_settings_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LimiterSettings(**kwargs)  # type: ignore[arg-type]


def test_limiter_channel_limits() -> None:
    assert LimiterSettings(5000.0, phases=3).channel_limits_w == (5000.0,)
    per_phase = LimiterSettings(2000.0, phases=3, per_phase=True)
    assert per_phase.channel_limits_w == (2000.0, 2000.0, 2000.0)
    custom = LimiterSettings(2000.0, phases=2, per_phase=True, phase_limits_w=(1500.0, 2500.0))
    assert custom.channel_limits_w == (1500.0, 2500.0)


def test_baseline_settings_validation() -> None:
    with pytest.raises(ValueError, match="gain = 0"):
        BaselineSettings(gain=0)
    with pytest.raises(ValueError, match="min_w = 10 is above max_w = 0"):
        BaselineSettings(min_w=10, max_w=0)


def test_decision_helpers() -> None:
    reasons = (
        Reason(ReasonCode.DCL, "capped by DCL 120 A", 120.0),
        Reason(ReasonCode.IN_BAND, "ok"),
    )
    d = Decision((), None, reasons)
    assert d.held
    assert d.text == "capped by DCL 120 A; ok"
    assert d.codes() == {"dcl", "in_band"}
    assert str(reasons[0]) == "capped by DCL 120 A"
