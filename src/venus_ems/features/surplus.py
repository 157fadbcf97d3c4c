"""S1/S2 ``[surplus]``: the solar surplus distributor and its switched consumers.

Every ``interval_s`` the distributor reads the site from systemcalc (``/Ac/Grid/Lx/Power`` +
= import, ``/Dc/Battery/Power`` + = charging, ``/Dc/Battery/Soc``, PV from ``/Dc/Pv/Power``
and ``/Ac/PvOn*/Lx/Power``), every consumer seated on the consumer board (``ctx.consumers``:
its own ``[[surplus.consumer]]`` relays, ``[water_heater]``, ``[ev_charger]``, es-ESS request
topic consumers) with its reported draw, runs the pure core
(:func:`venus_ems.control.surplus.decide`) and grants each consumer its allowance
(``board.grant``). It holds the board's distributor seat while it runs
(``board.activate("surplus")``) and gives it up when it stops, so consumers fall back to their
standalone behaviour (switched consumers: off).

Outputs: each switched consumer's relay is an owned actuator ``surplus.<name>`` (safe state
``safe_state``, default off, written and read back on stop, crash and SIGTERM; a restart
switches off what a killed run left on); each is published as
``com.victronenergy.acload.venusems_surplus_<name>`` (decision D-surplus-acload in
docs/decisions.md: an AC load, never a fake battery); the figures on MQTT in venus-ems's and
es-ESS's layouts (:mod:`.surplus_mqtt`). Tunables in localsettings
``/Settings/VenusEms/Surplus/{HysteresisW,SettleS,IntervalS,BorrowS}`` and MQTT
``<prefix>/surplus/set/{hysteresis_w,settle_s,interval_s,borrow_s}``. A missing or stale grid
reading grants every consumer 0. :attr:`Surplus.hold_checks` lets another module make the
distributor stand down (Victron's Opportunity Loads), leaving the board to the consumers'
standalone rules.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskStatus

from ..clock import sleep_or_event
from ..control import surplus as core
from ..runtime.actuator import Actuator
from ..runtime.config import SurplusConfig
from ..runtime.consumers import ConsumerBoard, ConsumerHandle
from ..venus import Monitor
from ..venus.names import SYSTEM
from .ess_inputs import InputTracker, phase_count
from .ess_tunables import Tunable, Tunables, TunableValue, shielded_stop
from .opportunity_loads import opportunity_loads_check
from .surplus_consumer import ConsumerRunner, ConsumerWriter
from .surplus_mqtt import SurplusMqtt
from .surplus_stats import ConsumerStats

if TYPE_CHECKING:
    from ..runtime.feature import FeatureContext

__all__ = ["DISTRIBUTOR", "Surplus", "build", "load_of", "pv_power", "site_settings"]

DISTRIBUTOR = "surplus"
SAVE_INTERVAL_S = 60.0
_PV_PATHS = (
    "/Dc/Pv/Power",
    *(f"/Ac/PvOnGrid/L{p}/Power" for p in (1, 2, 3)),
    *(f"/Ac/PvOnOutput/L{p}/Power" for p in (1, 2, 3)),
    *(f"/Ac/PvOnGenset/L{p}/Power" for p in (1, 2, 3)),
)


def tunables_for(config: SurplusConfig) -> list[Tunable]:
    """Hysteresis, settle time, interval and battery buffer: changeable at run time."""
    return [
        Tunable("hysteresis_w", "HysteresisW", config.hysteresis_w, 0.0, 10_000.0),
        Tunable("settle_s", "SettleS", config.settle_s, 0.0, 300.0),
        Tunable("interval_s", "IntervalS", config.interval_s, 1.0, 600.0),
        Tunable("borrow_s", "BorrowS", config.borrow_s, 0.0, 3600.0),
    ]


def site_settings(
    config: SurplusConfig, values: Mapping[str, TunableValue]
) -> core.SurplusSettings:
    """Core settings from the config and the tunables (ValueError when invalid)."""
    return core.SurplusSettings(
        reservation=config.reservation_curve(),
        hysteresis_w=float(values["hysteresis_w"]),
        settle_s=float(values["settle_s"]),
        request_max_age_s=config.request_max_age_s,
        input_max_age_s=config.stale_input_s,
        borrow_s=float(values["borrow_s"]),
    )


def pv_power(monitor: Monitor) -> float | None:
    """PV production the system reports (W), None when it reports none."""
    values = [monitor.get_float(SYSTEM, p) for p in _PV_PATHS]
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def load_of(seat: ConsumerHandle) -> core.Load:
    """A board seat as the core sees it."""
    s = seat.spec
    return core.Load(
        s.name,
        priority=float(s.priority),
        priority_shift=s.priority_shift,
        levels_w=s.levels_w if s.levels_w is None or len(s.levels_w) > 1 else None,
        min_w=s.min_w,
        max_w=s.max_w if s.levels_w is None else 0.0,
        step_w=s.step_w,
        min_on_s=s.min_on_s,
        min_off_s=s.min_off_s,
        ignore_reservation=s.ignore_reservation,
        draw_w=seat.draw_w,
        ready=seat.ready,
        reported_at=seat.reported_at,
    )


class Surplus:
    """The ``[surplus]`` feature (see the module doc)."""

    name = "surplus"

    def __init__(self, config: SurplusConfig) -> None:
        """Check the configuration (ConfigError); nothing runs until :meth:`run`."""
        self.config = config
        self.tunables = Tunables(
            self.name, "Surplus", tunables_for(config), self._validate, self._retune
        )
        self.settings = site_settings(config, self.tunables.values)
        self.memory: dict[str, core.LoadMemory] = {}
        self.last: core.Distribution | None = None
        self.runners: dict[str, ConsumerRunner] = {}
        self.mqtt: SurplusMqtt | None = None
        self._site: dict[str, float | None] = {}
        self._wake = anyio.Event()
        self.hold_checks: list[Callable[[FeatureContext], str | None]] = [opportunity_loads_check]
        """Reasons to stand down (e.g. Victron's Opportunity Loads runs): each returns a
        reason or None; while one gives a reason the distributor leaves the board (its
        consumers fall back to standalone) and reports why. Other modules append here."""
        self.held: str | None = None

    def _validate(self, values: dict[str, TunableValue]) -> core.SurplusSettings:
        return site_settings(self.config, values)

    def _retune(self) -> None:
        self.settings = site_settings(self.config, self.tunables.values)
        self._wake.set()

    @property
    def interval_s(self) -> float:
        """Seconds between distributions (tunable)."""
        return float(self.tunables.values["interval_s"])

    def site_values(self) -> Mapping[str, float | None]:
        """What a ``when`` expression sees: soc, grid_w, battery_w, pv_w, hour, minute."""
        return self._site

    def read_site(self, ctx: FeatureContext, tracker: InputTracker) -> core.Site:
        """The site now, from systemcalc (grid stamped by the tracker)."""
        mon = ctx.monitor
        grid = tracker.grid(mon, phase_count(mon))
        battery = tracker.battery(mon)
        pv = pv_power(mon)
        now = ctx.clock.now().astimezone()
        soc = battery.soc_pct if battery is not None else None
        bat_w = battery.power_w if battery is not None else None
        self._site = {
            "soc": soc,
            "grid_w": None if grid is None else grid.total_w,
            "battery_w": bat_w,
            "pv_w": pv,
            "hour": float(now.hour),
            "minute": float(now.minute),
        }
        if grid is None:
            return core.Site(None, bat_w, soc, pv, ctx.clock.monotonic())
        return core.Site(grid.total_w, bat_w, soc, pv, grid.measured_at)

    def distribute(self, ctx: FeatureContext, tracker: InputTracker) -> core.Distribution:
        """One distribution: core decision, grants on the board, report and MQTT."""
        board = ctx.consumers
        now = ctx.clock.monotonic()
        site = self.read_site(ctx, tracker)
        seats = board.consumers()
        d = core.decide(site, [load_of(s) for s in seats], self.memory, self.settings, now)
        self.memory = dict(d.memory)
        self.last = d
        # consumers with a shorter own grant age (water heater 15 s) must not fall back to
        # standalone between two distributions of a long interval_s
        valid_s = 3.0 * self.interval_s + 5.0
        for name, alloc in d.allocations.items():
            board.grant(name, alloc.power_w, now, alloc.reason, valid_s=valid_s)
        if d.stale is not None:
            ctx.report("all consumers off", [d.stale])
        else:
            ctx.report(
                f"surplus {d.surplus_w:.0f} W, reservation {d.reservation_w:.0f} W, "
                f"assigned {d.assigned_w:.0f} W",
                [f"{n}: {a.power_w:.0f} W ({a.reason})" for n, a in d.allocations.items()],
            )
        if self.mqtt is not None:
            self.mqtt.publish_distribution(d, site, self.runners)
        return d

    def stand_down(self, ctx: FeatureContext) -> str | None:
        """Check :attr:`hold_checks`: leave or retake the board; the reason while held."""
        reason = next((r for check in self.hold_checks if (r := check(ctx)) is not None), None)
        if reason != self.held:
            if reason is not None:
                ctx.consumers.deactivate(DISTRIBUTOR)
                self.memory = {}
                ctx.message("info", f"standing down: {reason}")
            else:
                ctx.consumers.activate(DISTRIBUTOR)
                ctx.message("info", f"distributing again ({self.held} is over)")
            self.held = reason
        if reason is not None:
            ctx.report("standing down", [reason])
        return reason

    def stats_path(self, ctx: FeatureContext, name: str) -> Path:
        """Where a consumer's counters live."""
        return ctx.state_dir / "surplus" / f"{name}.json"

    async def _start_consumers(
        self, ctx: FeatureContext, stack: AsyncExitStack, tg: Any, board: ConsumerBoard
    ) -> None:
        for index, cfg in enumerate(c for c in self.config.consumer if c.enabled):
            stats, problem = await anyio.to_thread.run_sync(
                ConsumerStats.load, self.stats_path(ctx, cfg.name)
            )
            if problem:
                ctx.message("warning", problem)
            runner = ConsumerRunner(
                cfg,
                grant_max_age_s=self.config.grant_max_age_s,
                site_values=self.site_values,
                stats=stats,
                feature=self.name,
            )
            act = ctx.actuators.ensure(f"surplus.{cfg.name}", _maker(ctx, runner))
            await stack.enter_async_context(runner.make_service(ctx.bus_address, index, ctx.clock))
            self.runners[cfg.name] = runner
            tg.start_soon(runner.run, ctx, board, act)

    async def _save_stats(self, ctx: FeatureContext, *, force: bool = False) -> None:
        now = ctx.clock.now().astimezone()
        today = now.date()
        every = [(name, r.stats) for name, r in self.runners.items()]
        if self.mqtt is not None:
            every += self.mqtt.all_stats()
        for name, st in every:
            st.roll(today.isoformat(), (today - dt.timedelta(days=1)).isoformat())
            if st.dirty or force:
                try:
                    await anyio.to_thread.run_sync(st.save)
                except OSError as err:
                    ctx.message("warning", f"{name}: counters not saved: {err}")

    async def _saver(self, ctx: FeatureContext) -> None:
        while True:
            await self._save_stats(ctx)
            await ctx.clock.sleep(SAVE_INTERVAL_S)

    async def _follow(self, ctx: FeatureContext, tracker: InputTracker) -> None:
        sub = ctx.monitor.subscribe()
        try:
            async for changes in sub:
                tracker.update(changes)
        finally:
            ctx.monitor.unsubscribe(sub)

    async def run(self, ctx: FeatureContext, *, task_status: TaskStatus[None]) -> None:
        """Distribute until cancelled; the actuators put every consumer in its safe state."""
        board = ctx.consumers
        self.memory, self.last, self.runners, self.held = {}, None, {}, None
        tracker = InputTracker(ctx.clock)
        tracker.start()
        board.activate(DISTRIBUTOR)
        try:
            async with AsyncExitStack() as stack:
                tg = await stack.enter_async_context(anyio.create_task_group())
                stack.callback(tg.cancel_scope.cancel)
                await self.tunables.start(ctx, tg)
                tg.start_soon(self._follow, ctx, tracker)
                await self._start_consumers(ctx, stack, tg, board)
                if ctx.mqtt is not None and self.config.es_ess_topics:
                    self.mqtt = SurplusMqtt(self.config, ctx, board)
                    await self.mqtt.start(tg)
                tg.start_soon(self._saver, ctx)
                task_status.started()
                await ctx.clock.sleep(min(1.0, self.interval_s))  # let the consumers report
                while True:
                    self._wake = anyio.Event()
                    if self.stand_down(ctx) is None:
                        self.distribute(ctx, tracker)
                    await sleep_or_event(ctx.clock, self.interval_s, self._wake)
        finally:
            board.deactivate(DISTRIBUTOR)
            with anyio.CancelScope(shield=True), anyio.move_on_after(5.0):
                await self._save_stats(ctx, force=True)
                if self.mqtt is not None:
                    await self.mqtt.stop()
            self.mqtt = None
            await shielded_stop(self.tunables)


def _maker(ctx: FeatureContext, runner: ConsumerRunner) -> Callable[[], Actuator[Any]]:
    mqtt, clock = ctx.mqtt, ctx.clock

    def make() -> Actuator[Any]:
        return runner.actuator(ConsumerWriter(runner.cfg, mqtt, clock), clock)

    return make


def build(config: SurplusConfig) -> Surplus:
    """Registry factory for ``[surplus]``."""
    return Surplus(config)
