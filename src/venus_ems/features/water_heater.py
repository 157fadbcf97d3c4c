"""[water_heater]: a stepped Modbus heating rod heated with PV surplus (dbus_water_heater).

The device (``devices.heizstab`` over RTU, TCP or RTU-over-TCP) is read every
``poll_interval_s`` for its temperature, power feedback and FORCE ON switch. Every second (and on
each grid reading, grant or GUI write) the pure core :func:`venus_ems.control.water_heater.decide`
picks the step: modes Off / Auto / On, a boost until a time, the daily minimum window, and in
Auto either the grant of the ``[surplus]`` distributor (``ctx.consumers``) or, without one, its
own surplus from the grid reading plus its own draw. The step is claimed on one owned actuator
(:mod:`venus_ems.runtime.step_output`): written as coils then a new heartbeat, confirmed by
read-back, renewed every ``keepalive_s`` (the device's 300 s watchdog) while claimed. Safe state
is off: on stop, crash or a stalled loop the claim goes, the actuator writes 0 W once and stops
renewing, so the device's watchdog keeps it off even if that write is lost; a killed daemon's
step is cleared at the next start through the output ledger.

On the GX: :mod:`.water_heater_services` (acload with power, energy, writable mode and boost;
temperature sensor). The acload also offers the heater to Victron's Opportunity Loads as an S2
OMBC resource manager, one operation mode per step (:mod:`.water_heater_s2`); while that CEM
drives it, its chosen level takes the place of a grant.
"""

from __future__ import annotations

import math
from contextlib import AsyncExitStack
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from anyio.abc import TaskGroup, TaskStatus

from ..clock import sleep_or_event
from ..control.water_heater import HeaterInputs, HeaterSettings, HeaterState, HeaterStep, decide
from ..devices import Connection, LoadMode, LoadReading
from ..devices.registry import default_steps_w
from ..errors import ConfigError, DeviceError
from ..runtime.config.water_heater import WaterHeaterConfig, parse_window
from ..runtime.consumers import ConsumerHandle, ConsumerSpec
from ..runtime.s2_rm import OmbcResourceManager
from ..runtime.step_output import StepWriter, step_actuator
from ..venus import Subscription
from .counters import CounterFile, EnergyCounters
from .ess_inputs import InputTracker, phase_count
from .water_heater_s2 import offer_heater_as_rm
from .water_heater_services import STATES, HeaterServices
from .water_heater_store import HeaterMemory, load_memory, save_memory

if TYPE_CHECKING:
    from ..runtime.actuator import Actuator
    from ..runtime.feature import FeatureContext

__all__ = ["ACTUATOR", "WaterHeater", "build", "core_settings"]

ACTUATOR = "water_heater"
TICK_S = 1.0


def core_settings(config: WaterHeaterConfig, steps: tuple[float, ...]) -> HeaterSettings:
    """The core's settings for ``steps`` (W); ConfigError when they do not fit."""
    start, end = parse_window(config.daily_window)
    try:
        return HeaterSettings(
            levels_w=steps,
            margin_w=config.margin_w,
            up_delay_s=config.up_delay_s,
            down_delay_s=config.down_delay_s,
            min_switch_interval_s=config.min_switch_interval_s,
            settle_s=config.settle_s,
            grid_stale_s=config.grid_stale_s,
            target_c=config.target_c,
            hysteresis_k=config.hysteresis_k,
            max_c=config.max_c,
            on_w=config.on_w,
            guard_c=config.daily_min_c,
            guard_start_s=start,
            guard_end_s=end,
        )
    except ValueError as err:
        raise ConfigError(f"[water_heater] {err}") from err


class WaterHeater:
    """The water heater feature (see the module docstring)."""

    name = "water_heater"

    def __init__(self, config: WaterHeaterConfig) -> None:
        """Check the configuration against the core (ConfigError); nothing runs until run()."""
        self.config = config
        self.steps = tuple(config.steps_w) if config.steps_w else default_steps_w(config.driver)
        self.settings = core_settings(config, self.steps)
        self.state = HeaterState()
        self.memory = HeaterMemory(config.mode, config.mode)
        self.counters = EnergyCounters()
        self.decision: HeaterStep | None = None
        self._wake = anyio.Event()
        self._last_tick: float | None = None
        self._notes: dict[str, str] = {}
        self._dirty_memory = False
        self.rm: OmbcResourceManager | None = None
        self.cem_w: float | None = None  # the level Victron's CEM chose (None: not driving)
        self.stepped = anyio.Event()  # set after each decision (the RM waits for it)

    # ----------------------------------------------------------------- GUI writes

    def _wake_up(self) -> None:
        self._wake.set()

    def wake(self) -> None:
        """Decide now (a CEM instruction or release)."""
        self._wake.set()

    def _set_mode(self, mode: str) -> None:
        self.memory = replace(self.memory, mode=mode)
        self._dirty_memory = True
        self._wake.set()

    def _set_boost(self, minutes: int, now_ts: float) -> None:
        until = now_ts + 60.0 * minutes if minutes > 0 else None
        self.memory = replace(self.memory, boost_until=until)
        self._dirty_memory = True
        self._wake.set()

    # ----------------------------------------------------------------- one decision

    def _reading(self, writer: StepWriter, now: float) -> LoadReading | None:
        r = writer.reading
        if r is None or now - r.taken_at > self.config.temperature_stale_s:
            return None
        return r

    def _grant(self, handle: ConsumerHandle, now: float) -> float | None:
        if self.cem_w is not None:
            return self.cem_w
        if self.rm is not None and self.rm.controlled:  # before its first instruction
            return self.rm.mode.power_w
        g = handle.allowance(now, max_age_s=self.config.grant_max_age_s)
        return None if g is None else g.power_w

    def step(
        self,
        ctx: FeatureContext,
        act: Actuator[Any],
        tracker: InputTracker,
        handle: ConsumerHandle,
        services: HeaterServices,
    ) -> None:
        """Decide on the current readings, claim the step, count, publish, report."""
        now = ctx.clock.monotonic()
        writer: StepWriter = act.writer
        reading = self._reading(writer, now)
        grid = tracker.grid(ctx.monitor, phase_count(ctx.monitor))
        battery = tracker.battery(ctx.monitor)
        wall = ctx.clock.now()
        local = wall.astimezone()
        boost_until = self.memory.boost_until
        boost = boost_until is not None and wall.timestamp() < boost_until
        if boost_until is not None and not boost:
            self.memory = replace(self.memory, boost_until=None)
            self._dirty_memory = True
        state = self.state
        inputs = HeaterInputs(
            mode=self.memory.mode,  # type: ignore[arg-type]
            temperature_c=None if reading is None else reading.temperature_c,
            grid_w=None if grid is None else grid.total_w,
            grid_at=None if grid is None else grid.measured_at,
            draw_w=None if reading is None else reading.power_w,
            battery_w=None if battery is None else battery.power_w,
            grant_w=self._grant(handle, now),
            forced=reading is not None and reading.mode is LoadMode.FORCED_ON,
            boost=boost,
            day=local.toordinal(),
            time_of_day_s=local.hour * 3600.0 + local.minute * 60.0 + local.second,
        )
        decision = decide(inputs, state, self.settings, now)
        if decision.source == "grant" and self.rm is not None and self.rm.controlled:
            why = f"Victron Opportunity Loads: {inputs.grant_w:.0f} W"
            decision = replace(decision, reason=why)
        self._count(decision, reading, grid.total_w if grid is not None else None, now)
        self.state = decision.next_state
        if self.state.guard_met_day != self.memory.guard_met_day:
            self.memory = replace(self.memory, guard_met_day=self.state.guard_met_day)
            self._dirty_memory = True
        self.decision = decision
        act.claim(self.name, decision.level_w)
        draw = None if reading is None else reading.power_w
        if self.rm is not None:  # the CEM may drive it only where it would decide from surplus
            self.rm.offer(
                reading is not None
                and self.memory.mode == "auto"
                and not boost
                and decision.source != "grid"  # the daily minimum
                and not handle.board.distributor_active
            )
            self.rm.measured(draw)
        # ready: it would take surplus now (auto, below its target, temperature known, no switch)
        ready = (
            self.memory.mode == "auto"
            and not decision.next_state.satisfied
            and decision.source in ("off", "surplus", "grant")
            and inputs.temperature_c is not None
            and inputs.temperature_c < self.settings.max_c
            and not inputs.forced
        )
        handle.report(draw, now, ready=ready)
        self._publish(services, decision, reading, writer)
        self._report(ctx, decision, writer)

    def _count(
        self, d: HeaterStep, reading: LoadReading | None, grid_w: float | None, now: float
    ) -> None:
        """Count the kWh drawn (from surplus / from the grid, by the grid reading) and switches."""
        last, self._last_tick = self._last_tick, now
        switched = d.next_state.switches - self.state.switches
        if switched > 0:
            self.counters.add("switches", float(switched))
        if last is None or reading is None:
            return
        dt = min(max(now - last, 0.0), 10.0)
        p = max(reading.power_w, 0.0)
        if not p or not dt:
            return
        kwh = p * dt / 3.6e6
        self.counters.add("energy", kwh)
        if grid_w is not None and math.isfinite(grid_w):
            from_grid = min(p, max(grid_w, 0.0)) * dt / 3.6e6
            self.counters.add("grid", from_grid)
            self.counters.add("surplus", kwh - from_grid)

    def _publish(
        self,
        services: HeaterServices,
        d: HeaterStep,
        reading: LoadReading | None,
        writer: StepWriter,
    ) -> None:
        c = self.counters
        if reading is None:
            state = STATES["fault"]
        elif d.reason.startswith("target"):
            state = STATES["satisfied"]
        elif reading.temperature_c is None:
            state = STATES["fault"]
        else:
            state = STATES[d.source] if d.level_w else STATES["off"]
        error = (
            1
            if reading is None
            else 2
            if reading.temperature_c is None
            else 3
            if writer.write_error is not None
            else 0
        )
        switches = c.published("switches")
        services.publish(
            {
                "/Ac/Power": None if reading is None else reading.power_w,
                "/Ac/Energy/Forward": c.published("energy"),
                "/Mode": ("off", "auto", "on").index(self.memory.mode),
                "/Boost/Until": self.memory.boost_until,
                "/State": state,
                "/StateText": d.reason[:200],
                "/Step": d.level_w,
                "/Steps": ",".join(f"{s:g}" for s in self.steps),
                "/History/Switches": None if switches is None else round(switches),
                "/History/SurplusEnergy": c.published("surplus"),
                "/History/GridEnergy": c.published("grid"),
                "/ErrorCode": error,
            },
            None if reading is None else reading.temperature_c,
        )

    def _report(self, ctx: FeatureContext, d: HeaterStep, writer: StepWriter) -> None:
        self._note(ctx, "device", writer.error)
        self._note(ctx, "step", writer.write_error)
        reasons = [d.reason, *(e for e in (writer.error, writer.write_error) if e)]
        ctx.report(f"{self.memory.mode}: {d.level_w:.0f} W", [r[:200] for r in reasons])

    def _note(self, ctx: FeatureContext, key: str, text: str | None) -> None:
        old = self._notes.get(key)
        if text == old:
            return
        if text is None:
            del self._notes[key]
            ctx.message("info", f"resolved: {old}")
            return
        self._notes[key] = text
        ctx.message("warning", text)

    # ----------------------------------------------------------------- I/O loops

    async def _poll(self, ctx: FeatureContext, writer: StepWriter) -> None:
        """Read the device every ``poll_interval_s`` (a failure leaves the reading to age)."""
        clock = ctx.clock
        while True:
            try:
                reading = await writer.poll()
            except DeviceError:
                pass  # writer.error holds it; the reading ages into "unknown"
            else:
                self._check_steps(writer, reading)
            self._wake.set()
            await clock.sleep(self.config.poll_interval_s)

    def _check_steps(self, writer: StepWriter, _reading: LoadReading) -> None:
        device = writer.device
        if device is not None and not set(self.steps) <= set(device.steps_w):
            raise ConfigError(
                f"[water_heater] steps_w {self.steps} are not all steps of the device "
                f"{device.steps_w}"
            )

    async def _follow(self, sub: Subscription, tracker: InputTracker) -> None:
        async for changes in sub:
            if tracker.update(changes):
                self._wake.set()

    async def _persist(self, ctx: FeatureContext, counters: CounterFile) -> None:
        """Save the memory when it changed and the counters at their ceilings."""
        if self._dirty_memory:
            self._dirty_memory = False
            try:
                await anyio.to_thread.run_sync(save_memory, self._memory_path(ctx), self.memory)
            except OSError as err:
                ctx.message("warning", f"cannot save the water heater's mode: {err}")
        if self.counters.over_ceiling() or not self.counters.ceiling:
            snapshot = self.counters.snapshot()
            try:
                await anyio.to_thread.run_sync(counters.save, snapshot)
            except OSError as err:
                ctx.message("warning", f"cannot save the water heater's counters: {err}")
            self.counters.saved(snapshot)

    def _memory_path(self, ctx: FeatureContext) -> Path:
        return ctx.state_dir / "water_heater.json"

    # ----------------------------------------------------------------- lifecycle

    def _actuator(self, ctx: FeatureContext) -> Actuator[Any]:
        cfg = self.config
        assert cfg.host is not None
        conn = Connection(cfg.host, cfg.timeout_s, options=cfg.connection_options)

        def make() -> Actuator[Any]:
            writer = StepWriter(cfg.driver, conn, clock=ctx.clock, refresh_s=cfg.keepalive_s)
            ttl = max(3 * TICK_S, 2 * cfg.poll_interval_s) + 5.0
            return step_actuator(ACTUATOR, writer, ctx.clock, claim_ttl_s=ttl)

        act = ctx.actuators.ensure(ACTUATOR, make)
        if not isinstance(act.writer, StepWriter):
            raise ConfigError(f"actuator {ACTUATOR} is not a heater step")
        return act

    async def _load(self, ctx: FeatureContext, counters: CounterFile) -> None:
        mem, problem = await anyio.to_thread.run_sync(
            load_memory, self._memory_path(ctx), self.config.mode
        )
        if problem:
            ctx.message("warning", problem)
        self.memory = mem
        loaded = await anyio.to_thread.run_sync(counters.load)
        if loaded.problem:
            ctx.message("warning", loaded.problem)
        self.counters = loaded.counters or EnergyCounters()

    async def run(self, ctx: FeatureContext, *, task_status: TaskStatus[None]) -> None:
        """Poll, decide and claim until cancelled; the actuator owns the safe state."""
        self.state, self.decision, self._last_tick = HeaterState(), None, None
        self.cem_w = None
        self._notes.clear()
        act = self._actuator(ctx)
        writer: StepWriter = act.writer
        counters = CounterFile(ctx.state_dir / "water_heater_counters.json")
        await self._load(ctx, counters)
        self.state = HeaterState(guard_met_day=self.memory.guard_met_day)
        mon = ctx.monitor
        tracker = InputTracker(ctx.clock)
        tracker.start()
        sub = mon.subscribe()
        spec = ConsumerSpec(
            self.name,
            priority=self.config.priority,
            levels_w=self.steps,
            min_on_s=self.config.min_on_s,
            min_off_s=self.config.min_off_s,
        )
        try:
            async with AsyncExitStack() as stack:
                services = HeaterServices(
                    self.config,
                    address=ctx.bus_address,
                    connection=writer.conn.host,
                    on_mode=self._set_mode,
                    on_boost=lambda m: self._set_boost(m, ctx.clock.now().timestamp()),
                )
                self.rm = offer_heater_as_rm(self, services.load, ctx.clock)
                for svc in services.services:
                    await stack.enter_async_context(svc)
                handle = ctx.consumers.join(spec)
                stack.callback(handle.leave)
                handle.on_grant(self._wake_up)
                stack.callback(act.release, self.name)  # 0 W once, then the watchdog
                tg: TaskGroup = await stack.enter_async_context(anyio.create_task_group())
                stack.callback(tg.cancel_scope.cancel)
                act.claim(self.name, 0.0)  # clears whatever a previous run left on the device
                tg.start_soon(self._follow, sub, tracker)
                tg.start_soon(self._poll, ctx, writer)
                await tg.start(self.rm.run)
                task_status.started()
                while True:
                    self._wake = anyio.Event()
                    self.step(ctx, act, tracker, handle, services)
                    self.stepped.set()
                    self.stepped = anyio.Event()
                    await self._persist(ctx, counters)
                    await sleep_or_event(ctx.clock, TICK_S, self._wake)
        finally:
            mon.unsubscribe(sub)
            with anyio.CancelScope(shield=True), anyio.move_on_after(2.0):
                snapshot = self.counters.snapshot()
                try:
                    await anyio.to_thread.run_sync(counters.save, snapshot)
                except OSError:
                    pass


def build(config: WaterHeaterConfig) -> WaterHeater:
    """Registry factory for ``[water_heater]`` (ConfigError for refused values)."""
    return WaterHeater(config)
