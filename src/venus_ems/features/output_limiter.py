"""C2: Multi output limiter — keep what the Multi inverts at or below a contract or fuse limit.

The controlled quantity is the Multi's inverter output per phase, vebus ``/Ac/Out/Lx/P`` minus
``/Ac/ActiveIn/Lx/P`` (W, + = DC to AC). It equals ``/Ac/Out/P`` when islanded; on the grid it
leaves out the power passed through from AC-in, which no ESS control can reduce (seed A read
``/Ac/Out/P`` and so fought the grid's share). The Multi is the one systemcalc reports
(``/VebusService``) unless ``vebus_service`` names one.

The pure core :func:`venus_ems.control.output_limiter.decide` engages at the limit, steps the
cap by at most ``max_step_w`` per effect delay (gradual, so the Multi never swings hard) and
releases after ``release_hysteresis_s`` well below it. The cap is applied (docs/decisions.md
D10) through:

* ``method = "max_discharge_power"`` (default): hub4 ``/Overrides/MaxDischargePower`` — not
  persisted, hub4control honours it between our decisions, -1 = no limit. Only on a GX without
  that override does it fall back to the persisted ``/Settings/CGwacs/MaxDischargePower``, written
  on change and at most once a minute, and the user's value is put back on stop;
* ``method = "setpoint"``: the grid setpoint actuator (hub4 ``/Overrides/Setpoint``) claimed with
  a priority above ESS grid control at ``max(what the others would hold, net AC load - cap)``,
  recomputed every second: it only ever adds import.

Both act through hub4control, so the limiter holds off in ESS mode 3 (external control) and
while Dynamic ESS runs. Safe state: no limit. Runtime tunables:
``/Settings/VenusEms/OutputLimiter/LimitW`` (or ``L1LimitW``..``L3LimitW`` with
``phase_limits_w``), MQTT ``<prefix>/output_limiter/set/limit_w`` (``l1_limit_w``...).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskStatus

from ..clock import Clock, sleep_or_event
from ..control import LimiterSettings, LimiterState, MultiSample, SetOutputLimit
from ..control import output_limiter as core
from ..control.ess import EssMethod
from ..errors import ConfigError
from ..runtime.actuator import Actuator
from ..runtime.config import OutputLimiterConfig
from ..runtime.outputs import DbusPathWriter, active_vebus, grid_setpoint_actuator
from ..venus import SETTINGS_SERVICE, Monitor, Subscription
from .ess_inputs import HUB4, SYSTEM, VEBUS, ess_guard
from .ess_tunables import Tunable, Tunables, TunableValue, shielded_stop

if TYPE_CHECKING:
    from ..runtime.feature import FeatureContext

__all__ = ["OutputLimiter", "build", "inverter_output", "limiter_settings", "tunables_for"]

TICK_S = 1.0
PRIORITY = 10
"""Claim priority on the grid setpoint: a limit outranks ESS grid control (priority 0)."""
OVERRIDE = "/Overrides/MaxDischargePower"
PERSISTED = "/Settings/CGwacs/MaxDischargePower"
PERSISTED_MIN_INTERVAL_S = 60.0
"""Flash wear: the persisted setting is written at most this often."""
DEAD_TIME_S = 5.0
"""hub4control needs a few seconds to settle on a new MaxDischargePower."""


def tunables_for(config: OutputLimiterConfig) -> list[Tunable]:
    """``limit_w``, or one limit per phase when ``phase_limits_w`` is configured."""
    if config.phase_limits_w is not None:
        return [
            Tunable(f"l{p}_limit_w", f"L{p}LimitW", w, 1.0, 100_000.0)
            for p, w in enumerate(config.phase_limits_w, start=1)
        ]
    return [Tunable("limit_w", "LimitW", config.limit_w or 1.0, 1.0, 100_000.0)]


def limiter_settings(
    config: OutputLimiterConfig, values: Mapping[str, TunableValue], phases: int
) -> LimiterSettings:
    """Core settings from the configuration and the tunables (ValueError if invalid)."""
    phase_limits: tuple[float, ...] | None = None
    if config.phase_limits_w is not None:
        if phases != 3:
            raise ValueError(f"phase_limits_w needs a 3-phase Multi system, this one has {phases}")
        phase_limits = tuple(float(values[f"l{p}_limit_w"]) for p in (1, 2, 3))
        limit = max(phase_limits)
    else:
        limit = float(values["limit_w"])
    return LimiterSettings(
        limit_w=limit,
        phases=phases,
        per_phase=config.per_phase or phase_limits is not None,
        phase_limits_w=phase_limits,
        floor_w=config.floor_w,
        max_step_w=config.max_step_w,
        release_hysteresis_w=config.release_hysteresis_w,
        release_after_s=config.release_hysteresis_s,
        dead_time_s=DEAD_TIME_S,
        meter_interval_s=1.0,
    )


def inverter_output(monitor: Monitor, vebus: str, phases: int) -> tuple[float, ...] | None:
    """What the Multi inverts per phase (W, + = DC to AC): AC-out minus AC-in; None if unknown."""
    out: list[float] = []
    for p in range(1, phases + 1):
        ac_out = monitor.get_float(vebus, f"/Ac/Out/L{p}/P")
        ac_in = monitor.get_float(vebus, f"/Ac/ActiveIn/L{p}/P")
        if ac_out is None:
            return None
        out.append(ac_out - (ac_in or 0.0))  # islanded: AC-in is invalid, the output is all ours
    return tuple(out)


def _loss_ratio(monitor: Monitor, vebus: str | None, out: tuple[float, ...]) -> float:
    """DC draw per W of AC output (>= 1) from vebus ``/Dc/0/Power`` (+ = charging)."""
    dc = None if vebus is None else monitor.get_float(vebus, "/Dc/0/Power")
    ac = sum(out)
    if dc is None or ac < 500.0 or -dc <= 0:
        return 1.0
    return min(max(-dc / ac, 1.0), 1.3)


class OutputLimiter:
    """The Multi output limiter feature (C2)."""

    name = "output_limiter"

    def __init__(self, config: OutputLimiterConfig) -> None:
        """Check the configuration (ConfigError); nothing runs until :meth:`run`."""
        self.config = config
        self.phases = 3 if config.phase_limits_w is not None else 1
        self.tunables = Tunables(
            self.name, "OutputLimiter", tunables_for(config), self._validate, self._retune
        )
        self.settings = limiter_settings(config, self.tunables.values, self.phases)
        self.state = LimiterState()
        self._wake = anyio.Event()
        self._seen_at: float | None = None
        self._held: str | None = None
        self._claimed: float | None = None
        self._cap_total: float | None = None

    def _validate(self, values: dict[str, TunableValue]) -> LimiterSettings:
        return limiter_settings(self.config, values, self.phases)

    def _retune(self) -> None:
        self.settings = limiter_settings(self.config, self.tunables.values, self.phases)
        self._wake.set()

    def vebus(self, monitor: Monitor) -> str | None:
        """The Multi's service: configured, else the one systemcalc reports."""
        name = self.config.vebus_service
        return active_vebus(monitor) if name == "auto" else name

    # ----------------------------------------------------------------- output

    def actuator(self, ctx: FeatureContext) -> Actuator[Any]:
        """The output this method writes (created on first use)."""
        mon, clock = ctx.monitor, ctx.clock
        ttl = 30.0
        if self.config.method == "setpoint":
            return ctx.actuators.ensure(
                "ess.grid_setpoint",
                lambda: grid_setpoint_actuator(mon, clock, safe_w=None, claim_ttl_s=ttl),
            )
        hub4 = mon.service(HUB4)
        if hub4 is not None and OVERRIDE in hub4.values:
            writer = DbusPathWriter(mon, HUB4, OVERRIDE)
            safe, interval = -1.0, self.config.min_write_interval_s
        else:
            writer = DbusPathWriter(mon, SETTINGS_SERVICE, PERSISTED)
            original = mon.get_float(SETTINGS_SERVICE, PERSISTED)
            safe = -1.0 if original is None else original
            interval = max(self.config.min_write_interval_s, PERSISTED_MIN_INTERVAL_S)
            ctx.message("warning", f"no hub4 {OVERRIDE}: using the persisted {PERSISTED}")
        return ctx.actuators.ensure(
            "ess.max_discharge_power",
            lambda: Actuator(
                "ess.max_discharge_power",
                writer,
                safe_value=safe,
                clock=clock,
                min_interval_s=interval,
                claim_ttl_s=ttl,
            ),
        )

    def _max_discharge(
        self, ctx: FeatureContext, cmd: SetOutputLimit, out: tuple[float, ...]
    ) -> float:
        """MaxDischargePower (W) for a cap on the AC output.

        MaxDischargePower limits what the Multi draws from the battery; the cap is on its AC
        output, so it is scaled by the DC draw / AC output ratio measured now (the conversion
        loss, 1 to 1.3; 1 while the Multi inverts too little to tell).
        """
        assert cmd.total_w is not None
        return float(round(cmd.total_w * _loss_ratio(ctx.monitor, self.vebus(ctx.monitor), out)))

    def _setpoint(
        self, ctx: FeatureContext, act: Actuator[Any], cap_w: float, out: tuple[float, ...]
    ) -> float | None:
        """Grid setpoint (W, + = import) that keeps the output at most ``cap_w``, else None.

        Output = net AC load - grid, so the grid must import at least net load - cap. The
        setpoint is never lowered below what the other claims (ESS grid control) or the ESS
        setting would hold: the cap only ever adds import, it never forces the Multi to
        invert up to the cap (which would export when the load drops).
        """
        mon = ctx.monitor
        grid = [mon.get_float(SYSTEM, f"/Ac/Grid/L{p}/Power") for p in range(1, self.phases + 1)]
        if any(g is None for g in grid):
            return None
        floor = sum(g for g in grid if g is not None) + sum(out) - cap_w
        other = act.desired_without(self.name)
        if other is None:
            other = mon.get_float(SETTINGS_SERVICE, "/Settings/CGwacs/AcPowerSetPoint")
        return float(10 * round(max(floor, other if other is not None else floor) / 10))

    def _claim(
        self,
        ctx: FeatureContext,
        act: Actuator[Any],
        cmd: SetOutputLimit | None,
        out: tuple[float, ...] | None,
    ) -> None:
        """Claim (or renew, or release) the output for the cap in force."""
        caps = self.state.cap_w
        if caps is None or (cmd is not None and cmd.released):
            self._claimed = None
            act.release(self.name)
            return
        value = self._claimed
        if self.config.method == "setpoint":
            total = cmd.total_w if cmd is not None else None
            if total is None and self._cap_total is not None:
                total = self._cap_total
            if total is not None and out is not None:
                self._cap_total = total
                value = self._setpoint(ctx, act, total, out)
        elif cmd is not None and out is not None:
            value = self._max_discharge(ctx, cmd, out)
        if value is not None:
            self._claimed = value
            act.claim(self.name, value, priority=PRIORITY)  # repeated each step: a renewal

    # ----------------------------------------------------------------- one decision

    def step(self, ctx: FeatureContext, act: Actuator[Any]) -> None:
        """Guards, one core decision on the inverter output, claim or release, report."""
        mon = ctx.monitor
        guard = ess_guard(mon, EssMethod.HUB4_OVERRIDE)
        hold = guard.hold
        if guard.hub4_mode == 3:
            hold = "ESS mode 3 (external control): the Multi ignores MaxDischargePower; holding off"
        if hold != self._held:
            ctx.message("warning" if hold else "info", hold or f"resolved: {self._held}")
            self._held = hold
        if hold is not None:
            if guard.dess_mode:  # Dynamic ESS owns the hub4 overrides: step aside, write nothing
                act.abandon(self.name)
            else:
                act.release(self.name)
            self._claimed = self._cap_total = None
            self.state = LimiterState()
            ctx.report("holding off", [hold])
            return
        now = ctx.clock.monotonic()
        vebus = self.vebus(mon)
        out = None if vebus is None else inverter_output(mon, vebus, self.phases)
        at = self._seen_at
        sample = None if out is None or at is None else MultiSample(at, None, out)
        decision = core.decide(sample, self.state, self.settings, now)
        self.state = decision.next_state
        cmd = next((c for c in decision.commands if isinstance(c, SetOutputLimit)), None)
        self._claim(ctx, act, cmd, out)
        caps = self.state.cap_w
        text = "no cap" if caps is None else "cap " + "/".join(f"{c:.0f}" for c in caps) + " W"
        ctx.report(text, [r.text for r in decision.reasons])

    # ----------------------------------------------------------------- lifecycle

    async def _follow(self, sub: Subscription, clock: Clock) -> None:
        async for changes in sub:
            self._seen_at = clock.monotonic()
            if any(path.startswith("/Ac/") for _, path in changes):
                self._wake.set()

    async def run(self, ctx: FeatureContext, *, task_status: TaskStatus[None]) -> None:
        """Limit until cancelled; the actuator puts the output back to no limit."""
        mon = ctx.monitor
        await mon.wait_for_service(SYSTEM, timeout=30.0)
        vebus = self.vebus(mon) or (await mon.wait_for_service(VEBUS, timeout=30.0)).name
        n = mon.get_int(vebus, "/Ac/NumberOfPhases")
        self.phases = n if n in (1, 2, 3) and n is not None else 1
        self.state = LimiterState()
        self._held = None
        self._claimed = self._cap_total = None
        self._seen_at = ctx.clock.monotonic()
        try:
            self.settings = limiter_settings(self.config, self.tunables.values, self.phases)
        except ValueError as err:
            raise ConfigError(f"[output_limiter] {err}") from None
        sub = mon.subscribe([VEBUS])
        try:
            async with anyio.create_task_group() as tg:
                await self.tunables.start(ctx, tg)
                self.settings = limiter_settings(self.config, self.tunables.values, self.phases)
                act = self.actuator(ctx)
                tg.start_soon(self._follow, sub, ctx.clock)
                task_status.started()
                while True:
                    self._wake = anyio.Event()
                    self.step(ctx, act)
                    await sleep_or_event(ctx.clock, TICK_S, self._wake)
        finally:
            mon.unsubscribe(sub)
            await shielded_stop(self.tunables)


def build(config: OutputLimiterConfig) -> OutputLimiter:
    """Registry factory for ``[output_limiter]`` (ConfigError for values the core refuses)."""
    return OutputLimiter(config)
