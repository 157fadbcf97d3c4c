"""C1: ESS grid control (zero export, export/import cap, fixed target and the power modes).

Each new grid reading (and a 1 s timer) runs the pure core
:func:`venus_ems.control.modes.decide` on the GX's readings (:mod:`.ess_inputs`). The
decision's commands are the only data path to the output: the last one is claimed (and so
renewed) on the one actuator of the output at every step (:mod:`.claims`):

* ``method = "hub4_override"``: hub4 ``/Overrides/Setpoint`` (W, + = import; not persisted;
  hub4control keeps running the fast loop), needs ESS mode 1 or 2;
* ``method = "mode3"``: the vebus ``/Hub4/L1..L3/AcPowerSetpoint`` (W at AC-in, + = import),
  rewritten every ``mode3_refresh_s`` (<= 10 s) because the Multi drops setpoints that are not
  renewed. It needs ``allow_mode3 = true`` and the GX set to ESS mode 3 by the user: venus-ems
  never writes ``/Settings/CGwacs/Hub4Mode`` (or any other persisted ESS setting).

It holds off (no claim, the output goes to its safe value) while Dynamic ESS is active or the
ESS mode does not fit the method (:mod:`venus_ems.control.guards`). Stale or missing readings
make the core command ``safe_setpoint_w``, or release the output when none is configured; a
stalled feature's claim expires after twice ``stale_input_s``; on stop or crash the actuator
writes the safe value. In mode 3 it watches that the Multi follows
(:mod:`venus_ems.control.mode3_watch`): failing or stopped refreshes and a Multi that fell
back to passthrough are reported.

Runtime tunables (localsettings ``/Settings/VenusEms/EssControl/*``, MQTT
``<prefix>/ess_control/set/<name>``): ``mode``, ``grid_target``, ``target_w``, ``export_cap_w``,
``import_cap_w``, ``soc_target_pct``, ``inverter_power_w``, ``battery_current_a``.

With ``curtail_pv`` (default on) and the grid-target mode, AC-coupled PV inverters
(``com.victronenergy.pvinverter`` with ``/Ac/PowerLimit``) are limited when the battery and
the Multi cannot absorb their export (:mod:`.ess_pv`), in both methods; the limit is
released as soon as they can, and on stop, crash or stale readings (safe state).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskStatus

from ..clock import sleep_or_event
from ..control import (
    ActuationState,
    ActuatorSettings,
    EssMethod,
    EssMode,
    EssSettings,
    EssState,
    GridTargetKind,
    GridTargetSettings,
    MultiSample,
    ReleaseSetpoint,
    SetGridSetpoint,
    SetPhaseSetpoints,
    SocTargetSettings,
    mode3_watch,
    modes,
)
from ..control.reasons import safe_note, stable_text
from ..runtime.actuator import Actuator
from ..runtime.config import EssControlConfig
from ..runtime.outputs import grid_setpoint_actuator, phase_setpoints_actuator
from ..venus import Subscription
from ..venus.names import SYSTEM, VEBUS
from .claims import CommandHolder
from .ess_inputs import InputTracker, ess_guard, phase_count
from .ess_pv import PvCurtailment, acin_pv_w
from .ess_tunables import Tunable, Tunables, TunableValue, shielded_stop

if TYPE_CHECKING:
    from ..runtime.feature import FeatureContext

__all__ = ["EssControl", "build", "ess_settings", "tunables_for"]

TICK_S = 1.0
"""Decide at least this often (s) even without a new grid reading (staleness, guards)."""


def tunables_for(config: EssControlConfig) -> list[Tunable]:
    """The runtime tunables of ``[ess_control]``, defaults from the configuration."""
    big = 100_000.0
    return [
        Tunable("mode", "Mode", config.mode, choices=tuple(m.value for m in EssMode)),
        Tunable(
            "grid_target",
            "GridTarget",
            config.grid_target,
            choices=tuple(k.value for k in GridTargetKind),
        ),
        Tunable("target_w", "TargetW", config.target_w, -big, big),
        Tunable("export_cap_w", "ExportCapW", config.export_cap_w, 0.0, big),
        Tunable("import_cap_w", "ImportCapW", config.import_cap_w, 0.0, big),
        Tunable("soc_target_pct", "SocTargetPct", config.soc_target_pct, 0.0, 100.0),
        Tunable("inverter_power_w", "InverterPowerW", config.inverter_power_w, -big, big),
        Tunable("battery_current_a", "BatteryCurrentA", config.battery_current_a, -1e4, 1e4),
    ]


def ess_settings(
    config: EssControlConfig, values: Mapping[str, TunableValue], phases: int
) -> EssSettings:
    """Core settings from the configuration and the tunables in force (ValueError if invalid)."""
    kind = GridTargetKind(str(values["grid_target"]))
    cap: float | None = None
    if kind is GridTargetKind.EXPORT_CAP:
        cap = float(values["export_cap_w"])
    elif kind is GridTargetKind.IMPORT_CAP:
        cap = float(values["import_cap_w"])
    soc = float(values["soc_target_pct"])
    hyst = config.soc_hysteresis_pct
    if not hyst <= soc <= 100.0 - hyst:
        raise ValueError(f"soc_target_pct = {soc:g} +/- {hyst:g} % leaves 0..100 %")
    return EssSettings(
        mode=EssMode(str(values["mode"])),
        actuator=ActuatorSettings(
            method=EssMethod(config.method),
            phases=phases,
            dead_time_s=config.dead_time_s,
            meter_interval_s=1.0,
            stale_after_s=config.stale_input_s,
            safe_setpoint_w=config.safe_setpoint_w,
            # no safe setpoint configured: give the output back to ESS instead
            release_when_safe=config.safe_setpoint_w is None,
            soc_hysteresis_pct=hyst,
            per_phase_balancing=config.per_phase,
            low_power_error_w=config.multi_error_w,
            meter_noise_w=config.meter_noise_w,
        ),
        grid_target=GridTargetSettings(
            kind=kind,
            target_w=float(values["target_w"]),
            cap_w=cap,
            dead_band_w=config.dead_band_w,
            max_increase_w=config.max_increase_w,
        ),
        inverter_power_w=float(values["inverter_power_w"]),
        battery_current_a=float(values["battery_current_a"]),
        soc_target=SocTargetSettings(target_pct=soc, hysteresis_pct=hyst),
        min_mode_interval_s=config.min_mode_switch_s,
    )


class EssControl:
    """The ESS grid control feature (C1)."""

    name = "ess_control"

    def __init__(self, config: EssControlConfig) -> None:
        """Check the configuration (ConfigError); nothing runs until :meth:`run`."""
        self.config = config
        self.method = EssMethod(config.method)
        self.phases = 1
        self.tunables = Tunables(
            self.name, "EssControl", tunables_for(config), self._validate, self._retune
        )
        self.settings = ess_settings(config, self.tunables.values, self.phases)
        self.state = EssState()
        self.holder = CommandHolder(
            self.name, kinds=(SetGridSetpoint, SetPhaseSetpoints, ReleaseSetpoint)
        )
        self.watch = mode3_watch.PassthroughState()
        self._wake = anyio.Event()
        self._notes: dict[str, str] = {}
        self._reaim = False
        self._shift_w = 0.0
        self.pv = PvCurtailment(self.name, config.pv_limit_refresh_s, 2.0 * config.stale_input_s)

    def _validate(self, values: dict[str, TunableValue]) -> EssSettings:
        return ess_settings(self.config, values, self.phases)

    def _retune(self) -> None:
        self.settings = ess_settings(self.config, self.tunables.values, self.phases)
        self._reaim = True
        self._wake.set()

    def _reset(self) -> None:
        self.state = EssState()
        self.holder.reset()
        self.watch = mode3_watch.PassthroughState()
        self.pv.release()

    # ----------------------------------------------------------------- output

    def actuator(self, ctx: FeatureContext) -> Actuator[Any]:
        """The actuator of this method's output, created on first use."""
        cfg = self.config
        ttl = 2.0 * cfg.stale_input_s
        if self.method is EssMethod.MODE3:
            phases = self.phases
            return ctx.actuators.ensure(
                "ess.phase_setpoints",
                lambda: phase_setpoints_actuator(
                    ctx.monitor,
                    ctx.clock,
                    phases=phases,
                    safe_w=(cfg.safe_setpoint_w or 0.0) / phases,
                    refresh_s=cfg.mode3_refresh_s,
                    claim_ttl_s=ttl,
                ),
            )
        return ctx.actuators.ensure(
            "ess.grid_setpoint",
            lambda: grid_setpoint_actuator(
                ctx.monitor, ctx.clock, safe_w=cfg.safe_setpoint_w, claim_ttl_s=ttl
            ),
        )

    def _note(self, ctx: FeatureContext, key: str, text: str | None) -> None:
        """Send ``text`` as a message when it appears or changes, and say when it clears."""
        old = self._notes.get(key)
        if text == old:
            return
        if text is None:
            del self._notes[key]
            ctx.message("info", f"resolved: {old}")
            return
        self._notes[key] = text
        ctx.message("warning", text)

    # ----------------------------------------------------------------- one decision

    def step(self, ctx: FeatureContext, act: Actuator[Any], tracker: InputTracker) -> None:
        """Check the guards, decide on the current readings, apply its command, report."""
        now = ctx.clock.monotonic()
        guard = ess_guard(ctx.monitor, self.method)
        self._note(ctx, "guard", guard.hold)
        if guard.hold is not None:
            if guard.abandon:  # Dynamic ESS owns the overrides: step aside, write nothing
                act.abandon(self.name)
            else:
                act.release(self.name)
            self._reset()
            ctx.report("holding off", [guard.hold])
            return
        inputs = tracker.inputs(ctx.monitor, self.phases, self.method)
        if self.pv.state.limit_w is None:  # AC-in PV we do not limit: fed forward (mode 3)
            inputs = replace(inputs, acin_producers_w=acin_pv_w(ctx.monitor))
        settings, shift_reasons = self._shifted(ctx, now)
        if self._reaim:  # a new target from the user: aim at it now, not by trims
            self._reaim = False
            blocked = self.state.actuation.soc_blocked
            self.state = replace(self.state, actuation=ActuationState(soc_blocked=blocked))
            inputs = replace(inputs, setpoint_w=None)
        try:
            decision = modes.decide(inputs, self.state, settings, now)
        except ValueError as err:  # readings that do not fit the site (phase counts...)
            ctx.report("readings rejected", [*tracker.rejected, str(err)])
            return
        self.state = decision.next_state
        self.holder.apply(act, decision.commands)
        self._note(ctx, "safe", safe_note(decision.reasons))
        reasons = [*tracker.rejected, *shift_reasons, *(r.text for r in decision.reasons)]
        if self.config.curtail_pv and settings.mode is EssMode.GRID_TARGET:
            limited = self.pv.step(ctx, inputs, settings, now)
            if limited is not None:
                reasons.append(limited)
        else:
            self.pv.release()
        if self.method is EssMethod.MODE3:
            reasons.extend(self._mode3_health(ctx, act, inputs.multi, now))
        ctx.report(self._describe(), reasons)

    def _shifted(self, ctx: FeatureContext, now: float) -> tuple[EssSettings, list[str]]:
        """Settings with the grid target moved by other features' live requests (W, + import)."""
        live = ctx.grid_requests.live(now)
        shift = sum(r.shift_w for r in live)
        if shift != self._shift_w:  # a new target: aim at it now, not by trims
            self._shift_w = shift
            self._reaim = True
        if not live:
            return self.settings, []
        gt = self.settings.grid_target
        target = gt.target_w + shift
        kind = gt.kind
        if kind is GridTargetKind.ZERO_EXPORT and target < 0:
            kind = GridTargetKind.FIXED  # a feature asked for export (charge-current reducer)
        reasons = [f"grid target {shift:+.0f} W for {r.owner}: {r.reason}" for r in live]
        try:
            moved = replace(gt, kind=kind, target_w=target)
        except ValueError as err:  # a request the target kind cannot take: not applied
            return self.settings, [*reasons, f"requests not applied: {err}"]
        return replace(self.settings, grid_target=moved), reasons

    def _mode3_health(
        self, ctx: FeatureContext, act: Actuator[Any], multi: MultiSample | None, now: float
    ) -> list[str]:
        cmd = self.holder.command
        setpoints = cmd.phases_w if isinstance(cmd, SetPhaseSetpoints) else None
        watch = mode3_watch.decide(
            mode3_watch.Mode3WatchInputs(multi, setpoints, act.last_error, act.last_write_at),
            self.watch,
            mode3_watch.Mode3WatchSettings(
                refresh_s=self.config.mode3_refresh_s,
                effect_delay_s=self.settings.actuator.effect_delay_s,
            ),
            now,
        )
        self.watch = watch.next_state
        self._note(ctx, "mode3", "; ".join(stable_text(r) for r in watch.reasons) or None)
        return [r.text for r in watch.reasons]

    def _describe(self) -> str:
        cmd = self.holder.command
        if cmd is None:
            return "waiting for readings"
        if isinstance(cmd, ReleaseSetpoint):
            return "setpoint released"
        value = self.holder.value
        if isinstance(value, tuple):
            return "AC-in setpoints " + "/".join(f"{w:+.0f}" for w in value) + " W"
        assert value is not None
        return f"grid setpoint {value:+.0f} W"

    # ----------------------------------------------------------------- lifecycle

    def _wake_up(self) -> None:
        self._wake.set()

    async def _follow(self, sub: Subscription, tracker: InputTracker) -> None:
        async for changes in sub:
            if tracker.update(changes):
                self._wake.set()

    async def run(self, ctx: FeatureContext, *, task_status: TaskStatus[None]) -> None:
        """Decide on every grid reading until cancelled; the actuator owns the safe state."""
        mon = ctx.monitor
        await mon.wait_for_service(SYSTEM, timeout=30.0)
        await mon.wait_for_service(VEBUS, timeout=30.0)  # the Multi tells the phase count
        self.phases = phase_count(mon)
        self._reset()
        self._notes.clear()
        tracker = InputTracker(ctx.clock)
        tracker.start()
        sub = mon.subscribe()
        try:
            async with anyio.create_task_group() as tg:
                await self.tunables.start(ctx, tg)
                self.settings = ess_settings(self.config, self.tunables.values, self.phases)
                act = self.actuator(ctx)
                ctx.grid_requests.on_change(self._wake_up)
                tg.start_soon(self._follow, sub, tracker)
                task_status.started()
                while True:
                    self._wake = anyio.Event()
                    self.step(ctx, act, tracker)
                    await sleep_or_event(ctx.clock, TICK_S, self._wake)
        finally:
            mon.unsubscribe(sub)
            await shielded_stop(self.tunables)


def build(config: EssControlConfig) -> EssControl:
    """Registry factory for ``[ess_control]`` (ConfigError for values the core refuses)."""
    return EssControl(config)
