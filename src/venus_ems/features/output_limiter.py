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
from typing import TYPE_CHECKING, Any, get_args

import anyio
from anyio.abc import TaskStatus

from ..clock import Clock, sleep_or_event
from ..control import LimiterSettings, MultiSample
from ..control import limiter_output as core
from ..control.guards import limiter_guard
from ..errors import ConfigError
from ..runtime.actuator import Actuator
from ..runtime.config import OutputLimiterConfig
from ..runtime.outputs import DbusPathWriter, grid_setpoint_actuator
from ..venus import SETTINGS_SERVICE, Monitor, Subscription
from ..venus.active import active_service
from ..venus.names import HUB4, SYSTEM, VEBUS
from .claims import CommandHolder
from .ess_inputs import phase_count, read_guard
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
) -> core.CapSettings:
    """Core settings from the configuration and the tunables (ValueError if invalid)."""
    phase_limits: tuple[float, ...] | None = None
    if config.phase_limits_w is not None:
        if phases != 3:
            raise ValueError(f"phase_limits_w needs a 3-phase Multi system, this one has {phases}")
        phase_limits = tuple(float(values[f"l{p}_limit_w"]) for p in (1, 2, 3))
        limit = max(phase_limits)
    else:
        limit = float(values["limit_w"])
    cap = LimiterSettings(
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
    return core.CapSettings(cap, core.CapMethod(config.method))


def inverter_output(monitor: Monitor, vebus: str, phases: int) -> tuple[float, ...] | None:
    """What the Multi inverts per phase (W, + = DC to AC): AC-out minus AC-in; None if unknown."""
    rng = range(1, phases + 1)
    return core.inverter_output_w(
        [monitor.get_float(vebus, f"/Ac/Out/L{p}/P") for p in rng],
        [monitor.get_float(vebus, f"/Ac/ActiveIn/L{p}/P") for p in rng],
    )


def _complete(values: list[float | None]) -> tuple[float, ...] | None:
    """The values as a tuple, or None when one is unknown."""
    known = tuple(v for v in values if v is not None)
    return known if len(known) == len(values) else None


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
        self.state = core.CapState()
        self.holder = CommandHolder(self.name, PRIORITY, get_args(core.CapCommand))
        self._wake = anyio.Event()
        self._seen_at: float | None = None
        self._held: str | None = None

    def _validate(self, values: dict[str, TunableValue]) -> core.CapSettings:
        return limiter_settings(self.config, values, self.phases)

    def _retune(self) -> None:
        self.settings = limiter_settings(self.config, self.tunables.values, self.phases)
        self._wake.set()

    def _reset(self) -> None:
        self.state = core.CapState()
        self.holder.reset()

    def vebus(self, monitor: Monitor) -> str | None:
        """The Multi's service: configured, else the one systemcalc reports."""
        name = self.config.vebus_service
        return active_service(monitor, VEBUS) if name == "auto" else name

    # ----------------------------------------------------------------- output

    def actuator(self, ctx: FeatureContext) -> Actuator[Any]:
        """The output this method writes (created on first use)."""
        mon, clock = ctx.monitor, ctx.clock
        ttl = 30.0
        if self.settings.method is core.CapMethod.SETPOINT:
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

    def inputs(self, monitor: Monitor, act: Actuator[Any]) -> core.CapInputs:
        """The readings one decision needs, from the monitor and the other claims."""
        vebus = self.vebus(monitor)
        out = None if vebus is None else inverter_output(monitor, vebus, self.phases)
        at = self._seen_at
        grid = [
            monitor.get_float(SYSTEM, f"/Ac/Grid/L{p}/Power") for p in range(1, self.phases + 1)
        ]
        return core.CapInputs(
            output=None if out is None or at is None else MultiSample(at, None, out),
            dc_power_w=None if vebus is None else monitor.get_float(vebus, "/Dc/0/Power"),
            grid_w=_complete(grid),
            others_setpoint_w=act.desired_without(self.name) if self.holds_setpoint else None,
            ess_setpoint_w=monitor.get_float(SETTINGS_SERVICE, "/Settings/CGwacs/AcPowerSetPoint"),
        )

    @property
    def holds_setpoint(self) -> bool:
        """True when the cap goes through the grid setpoint (``method = "setpoint"``)."""
        return self.settings.method is core.CapMethod.SETPOINT

    # ----------------------------------------------------------------- one decision

    def step(self, ctx: FeatureContext, act: Actuator[Any]) -> None:
        """Guards, one core decision on the inverter output, apply its command, report."""
        guard = limiter_guard(*read_guard(ctx.monitor))
        hold = guard.hold
        if hold != self._held:
            ctx.message("warning" if hold else "info", hold or f"resolved: {self._held}")
            self._held = hold
        if hold is not None:
            if guard.abandon:  # Dynamic ESS owns the hub4 overrides: step aside, write nothing
                act.abandon(self.name)
            else:
                act.release(self.name)
            self._reset()
            ctx.report("holding off", [hold])
            return
        now = ctx.clock.monotonic()
        decision = core.decide(self.inputs(ctx.monitor, act), self.state, self.settings, now)
        self.state = decision.next_state
        self.holder.apply(act, decision.commands)
        caps = self.state.limiter.cap_w
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
        self.phases = phase_count(mon, vebus)
        self._reset()
        self._held = None
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
