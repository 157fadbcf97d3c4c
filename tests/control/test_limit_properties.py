"""For any readings and state, no mode commands beyond the battery limits or the SoC floor.

The check re-derives the limits from the readings on its own (pessimistic conversion loss):
a command may bring the battery back inside a violated limit, never push it further out.
Mode 3 on three phases also never makes one phase charge while another inverts.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from venus_ems.control import (
    ActuationState,
    ActuatorSettings,
    BatterySample,
    EssInputs,
    EssMethod,
    EssMode,
    EssSettings,
    EssState,
    GridSample,
    GridTargetSettings,
    MultiSample,
    SetGridSetpoint,
    SetPhaseSetpoints,
)
from venus_ems.control.modes import decide

NOW = 100.0
maybe = st.none() | st.floats(0, 300)
watts = st.floats(-5000, 5000)


@dataclass(frozen=True)
class World:
    settings: EssSettings
    inputs: EssInputs
    state: EssState


@st.composite
def worlds(draw: st.DrawFn) -> World:
    method = draw(st.sampled_from(list(EssMethod)))
    phases = draw(st.sampled_from([1, 2, 3]))
    n_cmd = phases if method is EssMethod.MODE3 else 1
    act = ActuatorSettings(
        method=method,
        phases=phases,
        efficiency=draw(st.floats(0.8, 1.0)),
        dead_time_s=draw(st.floats(0, 5)),
        fast_export=draw(st.booleans()),
        safe_setpoint_w=draw(st.none() | st.floats(-500, 500)),
    )
    ess = EssSettings(
        mode=draw(st.sampled_from(list(EssMode))),
        actuator=act,
        grid_target=GridTargetSettings(
            kind="fixed",  # type: ignore[arg-type]
            target_w=draw(st.floats(-3000, 3000)),
            max_increase_w=draw(st.none() | st.floats(50, 3000)),
        ),
        inverter_power_w=draw(st.floats(-6000, 6000)),
        battery_current_a=draw(st.floats(-200, 200)),
        min_mode_interval_s=0.0,
    )
    phase_watts = st.tuples(*[watts] * phases)
    battery = BatterySample(
        measured_at=draw(st.floats(90, NOW)),
        soc_pct=draw(st.none() | st.floats(0, 100)),
        voltage_v=draw(st.none() | st.floats(10, 60)),
        power_w=draw(st.none() | watts),
        ccl_a=draw(maybe),
        dcl_a=draw(maybe),
        allow_charge=draw(st.none() | st.booleans()),
        allow_discharge=draw(st.none() | st.booleans()),
        active_soc_limit_pct=draw(st.none() | st.floats(0, 100)),
    )
    inputs = EssInputs(
        grid=GridSample(draw(phase_watts), draw(st.floats(90, NOW))),
        battery=battery,
        multi=MultiSample(
            draw(st.floats(90, NOW)),
            draw(phase_watts),
            draw(st.tuples(*[st.floats(0, 3000)] * phases)),
        ),
    )
    command = draw(st.none() | st.tuples(*[watts] * n_cmd))
    actuation = ActuationState(
        command_w=command,
        sent_at=None if command is None else draw(st.floats(80, NOW)),
        last_sample_at=draw(st.none() | st.floats(80, NOW)),
        soc_blocked=draw(st.booleans()),
        unseen_rise_w=draw(st.floats(0, 2000)),
    )
    return World(ess, inputs, EssState(ess.mode, 0.0, actuation))


def _limits(world: World) -> tuple[float | None, float | None]:
    """(charge, discharge) limits in W, None when unknown — the spec, written out again."""
    b, act = world.inputs.battery, world.settings.actuator
    assert b is not None
    chg: float | None
    if b.allow_charge is False:
        chg = 0.0
    elif b.allow_charge is None or b.ccl_a is None or b.voltage_v is None:
        chg = None
    else:
        chg = b.ccl_a * b.voltage_v
    blocked = world.state.actuation.soc_blocked
    if b.soc_pct is not None and b.active_soc_limit_pct is not None:
        floor = b.active_soc_limit_pct
        blocked = b.soc_pct < floor + act.soc_hysteresis_pct if blocked else b.soc_pct <= floor
    dis: float | None
    if b.allow_discharge is False:
        dis = 0.0
    elif b.soc_pct is None or b.active_soc_limit_pct is None:
        dis = None
    elif blocked:
        dis = 0.0
    elif b.allow_discharge is None or b.dcl_a is None or b.voltage_v is None:
        dis = None
    else:
        dis = b.dcl_a * b.voltage_v
    return chg, dis


TOL = 1.0  # commands are whole watts and their total is rounded once: at most 0.5 W off


def _down_ok(
    pb: float | None, delta: float, chg: float | None, dis: float | None, eta: float
) -> bool:
    """Lowering u by -delta keeps the battery within the discharge limit (or backs off a charge
    limit that is being exceeded, to no further than the discharge limit)."""
    if pb is not None and chg is not None and pb > chg:
        return pb + delta >= min(chg, -dis if dis is not None else chg) - TOL
    if pb is None or dis is None:
        return False
    if pb < -dis:
        return False
    return pb + (delta + TOL / 2) / eta >= -dis - 1e-6


def _up_ok(
    pb: float | None, delta: float, chg: float | None, dis: float | None, eta: float
) -> bool:
    """Mirror of :func:`_down_ok` for raising u."""
    if pb is not None and dis is not None and pb < -dis:
        return pb + delta <= max(-dis, chg if chg is not None else -dis) + TOL
    if pb is None or chg is None:
        return False
    if pb > chg:
        return False
    return pb + (delta - TOL / 2) / eta <= chg + 1e-6


def _check_battery(
    u: float,
    fb: float,
    anchor: float,
    pb: float | None,
    chg: float | None,
    dis: float | None,
    eta: float,
    relaxed: bool,
    zero_conv: float,
) -> None:
    """The command moves the battery only where its limits allow.

    Mode 3 (and the first override command): measured from the operating point ``fb``; a
    move that is not allowed is one that discharges (charges) beyond a known limit under
    the pessimistic conversion loss, goes past both the command in force and ``fb`` where
    the limit is unknown, or fails to back off a limit already exceeded. Override with a
    command in force: hub4control enforces the limits, so only a move away from the command
    in force is judged.

    With a known charge limit the Multi may always invert less, up to converting nothing
    (``zero_conv``): only its own charging counts against CCL, DVCC curtails the DC chargers;
    inverting more to hold a battery at CCL would only send their power to the grid.
    """
    delta = u - fb
    # inverting less, from where the Multi is (or the command in force) up to converting nothing
    if pb is not None and chg is not None and min(anchor, fb) - TOL <= u <= zero_conv + TOL:
        return
    if relaxed:
        if u < anchor - TOL:
            assert _down_ok(pb, delta, chg, dis, eta) or u >= fb - TOL, ("down", u, anchor, fb)
        if u > anchor + TOL:
            assert _up_ok(pb, delta, chg, dis, eta) or u <= fb + TOL, ("up", u, anchor, fb)
        return
    if pb is not None and dis is not None and pb < -dis:
        assert delta >= -TOL, ("discharging beyond the limit, yet not backing off", pb, dis)
    if pb is not None and chg is not None and pb > chg:
        assert delta <= TOL, ("charging beyond the limit, yet not backing off", pb, chg)
    if delta < -TOL:
        assert _down_ok(pb, delta, chg, dis, eta) or u >= min(anchor, fb) - TOL, ("down", u)
    if delta > TOL:
        assert _up_ok(pb, delta, chg, dis, eta) or u <= max(anchor, fb) + TOL, ("up", u)


@settings(max_examples=300, deadline=None)
@given(worlds())
def test_no_command_goes_beyond_battery_limits(world: World) -> None:
    d = decide(world.inputs, world.state, world.settings, NOW)
    if not d.commands or "safe_setpoint" in d.codes():
        return
    (cmd,) = d.commands
    act = world.settings.actuator
    assert isinstance(cmd, SetPhaseSetpoints if act.method is EssMethod.MODE3 else SetGridSetpoint)
    u = cmd.total_w
    grid, multi, b = world.inputs.grid, world.inputs.multi, world.inputs.battery
    assert grid is not None
    assert multi is not None
    assert b is not None
    assert multi.ac_in_w is not None
    assert multi.ac_out_w is not None
    fb = grid.total_w if act.method is EssMethod.HUB4_OVERRIDE else sum(multi.ac_in_w)
    old = world.state.actuation.command_total_w
    anchor = old if old is not None else fb
    chg, dis = _limits(world)
    relaxed = act.method is EssMethod.HUB4_OVERRIDE and old is not None

    zero_conv = fb - (sum(multi.ac_in_w) - sum(multi.ac_out_w))
    _check_battery(u, fb, anchor, b.power_w, chg, dis, act.efficiency, relaxed, zero_conv)

    if isinstance(cmd, SetPhaseSetpoints) and len(cmd.phases_w) > 1:
        conv = [sp - o for sp, o in zip(cmd.phases_w, multi.ac_out_w, strict=True)]
        assert all(c >= -1 for c in conv) or all(c <= 1 for c in conv), conv
        # within the Multi ratings, unless battery limits demand a total beyond them
        share = sum(conv) / len(conv)
        low, high = min(-act.inverter_max_w, share), max(act.charger_max_w, share)
        assert all(low - 1 <= c <= high + 1 for c in conv), conv


@settings(max_examples=100, deadline=None)
@given(worlds())
def test_the_state_passed_in_is_never_changed(world: World) -> None:
    before = copy.deepcopy(world.state)  # a copy: comparing with an alias could never fail
    first = decide(world.inputs, world.state, world.settings, NOW)
    assert world.state == before
    # and nothing else is remembered between calls: the same call decides the same again
    assert decide(world.inputs, world.state, world.settings, NOW) == first
