"""Pure control cores: ``decide(inputs, state, settings, now) -> Decision`` with no I/O.

Nothing here reads a clock, logs, sleeps or imports the I/O layers; every timer, filter and
hysteresis lives in a frozen state, so a decision can be replayed. Modules:

* :mod:`.grid_target` — grid target (zero export, export cap, import cap, fixed)
* :mod:`.modes` — the ESS mode machine: grid target, inverter power, battery current, SoC target
* :mod:`.output_limiter` — cap the Multi's AC output at a contract / fuse limit
* :mod:`.limiter_output` — that cap as MaxDischargePower or as a grid setpoint
* :mod:`.mode3_watch` — mode 3: failing or stopped setpoint writes, a Multi in passthrough
* :mod:`.guards` — when ESS lets a feature act (ESS mode, Dynamic ESS)
* :mod:`.micro` — zero feed-in with battery-fed micro-inverters (with :mod:`.micro_model`,
  :mod:`.micro_view`, :mod:`.micro_battery`, :mod:`.micro_guard`)
* :mod:`.baseline` — the naive controller the benchmark compares against
* :mod:`.phases`, :mod:`.limits`, :mod:`.actuation`, :mod:`.ess` — shared pieces
* :mod:`.commands`, :mod:`.reasons`, :mod:`.inputs` — the values that cross the boundary
"""

from __future__ import annotations

from .commands import (
    Command,
    Decision,
    ReleaseSetpoint,
    RestartInverter,
    SetGridSetpoint,
    SetInverterLimit,
    SetMaxDischargePower,
    SetOutputLimit,
    SetPhaseSetpoints,
)
from .ess import ActuationState, ActuatorSettings, EssMethod
from .grid_target import GridControlSettings, GridTargetKind, GridTargetSettings, target_band
from .inputs import BatterySample, EssInputs, GridSample, MultiSample
from .modes import EssMode, EssSettings, EssState, SocPhase, SocTargetSettings
from .output_limiter import LimiterSettings, LimiterState
from .phases import split_same_sign
from .reasons import Reason, ReasonCode

__all__ = [
    "ActuationState",
    "ActuatorSettings",
    "BatterySample",
    "Command",
    "Decision",
    "EssInputs",
    "EssMethod",
    "EssMode",
    "EssSettings",
    "EssState",
    "GridControlSettings",
    "GridSample",
    "GridTargetKind",
    "GridTargetSettings",
    "LimiterSettings",
    "LimiterState",
    "MultiSample",
    "Reason",
    "ReasonCode",
    "ReleaseSetpoint",
    "RestartInverter",
    "SetGridSetpoint",
    "SetInverterLimit",
    "SetMaxDischargePower",
    "SetOutputLimit",
    "SetPhaseSetpoints",
    "SocPhase",
    "SocTargetSettings",
    "split_same_sign",
    "target_band",
]
