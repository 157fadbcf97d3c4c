"""Grid target step responses as time-series tables: {time, readings, expected command, reasons}.

Each row feeds one decision with readings taken at ``t``; ``expect`` is the command total
(``None`` = hold) and ``codes`` the reason codes that must be present.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest

from venus_ems.control import (
    ActuationState,
    ActuatorSettings,
    BatterySample,
    EssInputs,
    EssMethod,
    GridControlSettings,
    GridSample,
    GridTargetSettings,
    MultiSample,
    SetGridSetpoint,
    SetPhaseSetpoints,
)
from venus_ems.control.grid_target import decide


@dataclass(frozen=True)
class Row:
    t: float
    grid: float | tuple[float, ...]
    expect: float | tuple[float, ...] | None
    codes: frozenset[str] = field(default_factory=frozenset)
    acin: float | tuple[float, ...] = 0.0
    out: float | tuple[float, ...] = 0.0
    battery_w: float | None = None  # default: AC-in - AC-out (no DC PV)
    soc: float = 50.0
    dcl_a: float = 100.0
    grid_at: float | None = None  # when the grid reading was taken (default t)


def _tuple(v: float | tuple[float, ...]) -> tuple[float, ...]:
    return v if isinstance(v, tuple) else (v,)


def inputs_for(row: Row) -> EssInputs:
    acin, out = _tuple(row.acin), _tuple(row.out)
    battery_w = row.battery_w if row.battery_w is not None else sum(acin) - sum(out)
    at = row.grid_at if row.grid_at is not None else row.t
    return EssInputs(
        grid=GridSample(_tuple(row.grid), at),
        battery=BatterySample(
            measured_at=row.t,
            soc_pct=row.soc,
            voltage_v=50.0,
            power_w=battery_w,
            ccl_a=100.0,
            dcl_a=row.dcl_a,
            allow_charge=True,
            allow_discharge=True,
            active_soc_limit_pct=10.0,
        ),
        multi=MultiSample(row.t, acin, out),
    )


def play(rows: list[Row], settings: GridControlSettings) -> None:
    state = ActuationState()
    for row in rows:
        d = decide(inputs_for(row), state, settings, row.t)
        got: float | tuple[float, ...] | None = None
        if d.commands:
            (cmd,) = d.commands
            if isinstance(cmd, SetGridSetpoint):
                got = cmd.total_w
            else:
                assert isinstance(cmd, SetPhaseSetpoints)
                got = cmd.phases_w if len(cmd.phases_w) > 1 else cmd.total_w
        assert got == row.expect, f"t={row.t}: {got} != {row.expect} ({d.text})"
        missing = row.codes - d.codes()
        assert not missing, f"t={row.t}: missing {missing} in {d.codes()} ({d.text})"
        state = d.next_state


def codes(*names: str) -> frozenset[str]:
    return frozenset(names)


MODE3 = GridControlSettings(
    ActuatorSettings(method=EssMethod.MODE3, dead_time_s=2.0, meter_interval_s=1.0),
    GridTargetSettings(kind="zero_export", dead_band_w=25.0, max_increase_w=1000.0),  # type: ignore[arg-type]
)


def test_mode3_zero_export_step_responses() -> None:
    play(
        [
            # start: import 500 W, Multi idle -> discharge to reach the aim (25 W: band above 0)
            Row(0, 500, -475, codes("zero_export", "regulating")),
            Row(1, 480, None, codes("dead_time"), acin=-200),
            Row(3, 25, None, codes("in_band"), acin=-475),
            # load drops: export is corrected in one step
            Row(4, -600, 150, codes("regulating"), acin=-475),
            Row(5, -580, None, codes("dead_time"), acin=-300),
            Row(7, 20, None, codes("in_band"), acin=150),
            # load rises by 2 kW: discharge is raised by at most 1000 W per decision
            Row(8, 2020, -850, codes("step_limit"), acin=150),
            Row(11, 1020, -1845, codes("regulating"), acin=-850),
            Row(14, 25, None, codes("in_band"), acin=-1845),
            # import, then the load drops while that command is still in flight: the export
            # is acted on at once, bounded by what the readings prove (grid >= 0)
            Row(16, 800, -2620, codes("regulating"), acin=-1845),
            Row(17, -900, -945, codes("fast_export", "zero_export"), acin=-1845),
            Row(18, -880, None, codes("dead_time"), acin=-1845),
            Row(20, 25, None, codes("in_band"), acin=-945),
            # the BMS lowers DCL to 20 A (1000 W): discharge capped
            Row(22, 3000, -996, codes("dcl", "step_limit"), acin=-945, dcl_a=20.0),
            Row(25, 2950, None, codes("small_change", "dcl"), acin=-996, dcl_a=20.0),
            # SoC reaches the floor (10 %): discharge stopped even without a grid error
            Row(27, 2950, 0, codes("soc_floor"), acin=-996, dcl_a=20.0, soc=10.0),
            Row(28, 3946, None, codes("dead_time"), acin=0, dcl_a=20.0, soc=11.0),
            # released only 2 % above the floor
            Row(30, 3946, None, codes("soc_floor"), acin=0, dcl_a=20.0, soc=11.9),
            Row(31, 3946, -920, codes("dcl"), acin=0, dcl_a=20.0, soc=12.0),
            # the grid reading stops: 15 s old -> safe decision (none configured: hold)
            Row(50, 3946, None, codes("stale", "safe_setpoint"), acin=-920, grid_at=35),
        ],
        MODE3,
    )


def test_mode3_safe_setpoint_on_stale_grid() -> None:
    settings = replace(MODE3, actuator=replace(MODE3.actuator, safe_setpoint_w=0.0))
    play(
        [
            Row(0, 500, -475, codes("regulating")),
            Row(20, 500, 0, codes("stale", "safe_setpoint"), grid_at=5),
            Row(21, 500, None, codes("stale", "safe_setpoint"), grid_at=5),
        ],
        settings,
    )


def test_mode3_three_phases_never_charge_and_invert_at_once() -> None:
    settings = replace(MODE3, actuator=replace(MODE3.actuator, phases=3))
    play(
        [
            # PV on L2 exports 600 W while L1 imports: the Multi inverts on L1 only,
            # L2 is not made to charge; the total reaches the aim.
            Row(
                0,
                (800, -600, 100),
                (-475, 0, 200),
                codes("phase_split", "regulating"),
                acin=(0, 0, 0),
                out=(300, 0, 200),
            ),
        ],
        settings,
    )


OVERRIDE = GridControlSettings(
    ActuatorSettings(method=EssMethod.HUB4_OVERRIDE, dead_time_s=2.0, meter_interval_s=1.0),
    GridTargetSettings(kind="fixed", target_w=0.0, dead_band_w=25.0),  # type: ignore[arg-type]
)


def test_override_aims_then_trims_a_steady_offset_only() -> None:
    play(
        [
            Row(0, 300, 0, codes("regulating")),
            Row(1, 200, None, codes("dead_time")),
            Row(3, -1, None, codes("in_band")),
            # hub4control settles 65 W high: confirmed for the dead time, then trimmed
            Row(10, 65, None, codes("tracking")),
            Row(11, 67, None, codes("tracking")),
            Row(13, 66, -66, codes("regulating")),
            Row(14, 30, None, codes("dead_time")),
            Row(16, 1, None, codes("in_band")),
            # a load step: hub4control is moving, not our business
            Row(20, 900, None, codes("tracking")),
            Row(22, 2, None, codes("in_band")),
            # DCL reached: hub4control cannot follow; reported, setpoint not chased
            Row(30, 400, None, codes("tracking", "dcl"), battery_w=-1000, dcl_a=20.0),
            Row(40, 410, None, codes("tracking", "dcl"), battery_w=-1000, dcl_a=20.0),
        ],
        OVERRIDE,
    )


def test_override_follows_a_new_target_at_once() -> None:
    moved = replace(OVERRIDE, target=GridTargetSettings(kind="fixed", target_w=-500.0))  # type: ignore[arg-type]
    state = ActuationState(command_w=(0.0,), sent_at=0.0, last_sample_at=0.0)
    d = decide(inputs_for(Row(10, 3, None)), state, moved, 10.0)
    assert d.commands == (SetGridSetpoint(-500.0),)


@pytest.mark.parametrize("cap", [0.0, 600.0])
def test_override_setpoint_never_asks_for_export_beyond_the_cap(cap: float) -> None:
    target = GridTargetSettings(kind="export_cap", cap_w=cap, target_w=-cap)  # type: ignore[arg-type]
    settings = replace(OVERRIDE, target=target)
    d = decide(inputs_for(Row(0, 500, None)), ActuationState(), settings, 0.0)
    (cmd,) = d.commands
    assert isinstance(cmd, SetGridSetpoint)
    assert cmd.total_w == -cap + 25.0  # the band's lower edge sits on the cap
    assert "export_cap" in d.codes()


def test_max_feed_in_power_caps_every_kind() -> None:
    target = GridTargetSettings(kind="fixed", target_w=-3000.0)  # type: ignore[arg-type]
    settings = replace(OVERRIDE, target=target)
    readings = replace(inputs_for(Row(0, 0, None)), max_feed_in_w=1000.0)
    d = decide(readings, ActuationState(), settings, 0.0)
    assert d.commands == (SetGridSetpoint(-975.0),)
    assert "max_feed_in" in d.codes()
