"""The charge limit never makes the Multi invert DC PV to the grid (fix in control/ess.py).

With DVCC the solar chargers are kept within CCL; when they hold the battery there, inverting
more does not relieve the battery (the MPPTs take back what the Multi inverts), it only
exports. Before the fix the core bounded the setpoint at the measured (noisy) AC-in whenever
the battery sat at CCL, so each reading ratcheted it lower: 2.2 kWh exported in four hours of
the sunny benchmark day instead of 0.1.
"""

from __future__ import annotations

import pytest

from venus_ems.control import (
    ActuatorSettings,
    BatterySample,
    EssInputs,
    EssSettings,
    EssState,
    GridSample,
    MultiSample,
)
from venus_ems.control.modes import decide

NOW = 100.0
SETTINGS = EssSettings(
    actuator=ActuatorSettings(method="mode3", phases=1, efficiency=0.94, dead_time_s=0.0)  # type: ignore[arg-type]
)


def inputs(battery_w: float, ac_in: float, ac_out: float, grid: float) -> EssInputs:
    battery = BatterySample(
        measured_at=NOW,
        soc_pct=97.0,
        voltage_v=53.0,
        power_w=battery_w,
        ccl_a=64.0,  # 3392 W
        dcl_a=200.0,
        allow_charge=True,
        allow_discharge=True,
        active_soc_limit_pct=10.0,
    )
    return EssInputs(
        GridSample((grid,), NOW), battery, MultiSample(NOW, (ac_in,), (ac_out,)), None, (ac_in,)
    )


@pytest.mark.parametrize(
    ("battery_w", "ac_in", "ac_out", "grid", "expected"),
    [
        # at CCL from PV, the Multi inverts 500 W of it into a 300 W export: back to the aim
        (3400.0, -300.0, 200.0, -300.0, 25.0),
        # the same just below CCL: the same answer (the room left does not matter)
        (3380.0, -300.0, 200.0, -300.0, 25.0),
        # above CCL, the Multi charging 500 W from AC PV that still exports 100 W: it backs
        # off its own charging by the excess (3600 - 3392 W) instead of absorbing the export
        (3600.0, 700.0, 200.0, -100.0, 700.0 - 208.0),
    ],
)
def test_charge_limit_only_limits_the_multis_own_charging(battery_w, ac_in, ac_out, grid, expected):
    d = decide(inputs(battery_w, ac_in, ac_out, grid), EssState(), SETTINGS, NOW)
    (cmd,) = d.commands
    assert cmd.total_w == pytest.approx(expected, abs=1.0)
    zero_conversion = ac_out
    if battery_w >= 3392.0 and ac_in < ac_out:
        assert cmd.total_w <= zero_conversion  # never more charging from AC
