"""Bad input gets a clear ValueError and loses nothing: the state stays usable as it was."""

from __future__ import annotations

import copy
import math

import pytest

from venus_ems.control import (
    ActuatorSettings,
    BatterySample,
    EssInputs,
    EssMethod,
    EssSettings,
    EssState,
    GridSample,
    MultiSample,
)
from venus_ems.control.modes import decide

SETTINGS = EssSettings(actuator=ActuatorSettings(method=EssMethod.MODE3, phases=3))


def good(t: float) -> EssInputs:
    return EssInputs(
        grid=GridSample((300.0, 200.0, 100.0), t),
        battery=BatterySample(
            measured_at=t,
            soc_pct=60.0,
            voltage_v=52.0,
            power_w=0.0,
            ccl_a=50.0,
            dcl_a=50.0,
            allow_charge=True,
            allow_discharge=True,
            active_soc_limit_pct=10.0,
        ),
        multi=MultiSample(t, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0)),
    )


@pytest.mark.parametrize(
    ("inputs", "now", "message"),
    [
        (
            EssInputs(grid=GridSample((1.0, 2.0), 0.0)),
            0.0,
            "grid power_w has 2 phases; expected 1 or 3",
        ),
        (
            EssInputs(multi=MultiSample(0.0, (1.0,), (1.0,))),
            0.0,
            "multi ac_in_w has 1 phases; expected 3",
        ),
        (EssInputs(setpoint_w=(1.0,)), 0.0, "setpoint_w has 1 values; expected 3"),
        (good(5.0), 4.0, "grid measured_at 5.0 is after now 4.0"),
        (good(0.0), math.nan, "now = nan"),
    ],
)
def test_refused_with_a_clear_message(inputs: EssInputs, now: float, message: str) -> None:
    state = decide(good(0.0), EssState(), SETTINGS, 0.0).next_state
    snapshot = copy.deepcopy(state)  # a copy: comparing with an alias could never fail
    with pytest.raises(ValueError, match=message):
        decide(inputs, state, SETTINGS, now)
    assert state == snapshot
    # the same state goes on working with good readings, exactly as if the bad call never was
    d = decide(good(10.0), state, SETTINGS, 10.0)
    assert d == decide(good(10.0), snapshot, SETTINGS, 10.0)
    assert d.next_state.actuation.command_w is not None


def test_malformed_readings_cannot_be_built() -> None:
    with pytest.raises(ValueError, match=r"grid power_w\[0\] = inf"):
        GridSample((math.inf,), 0.0)
    with pytest.raises(ValueError, match="battery voltage_v = -1"):
        BatterySample(0.0, voltage_v=-1.0)
