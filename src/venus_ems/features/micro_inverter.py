"""C3: zero feed-in with battery-fed micro-inverters behind an OpenDTU (micro_inverter_control).

Replaces dbus-opendtu-DC-load. The DTU is read every ``poll_interval_s`` (summary, and each
inverter's channel values when the DTU has polled it anew); the grid and battery come from the
GX (``system /Ac/Grid/*``, ``/Dc/Battery/*`` and the active BMS). On each new grid reading, each
DTU answer and at least every second the pure core :func:`venus_ems.control.micro.decide` runs;
its ``SetInverterLimit`` commands are the only way to an inverter: each inverter's limit is an
output with one actuator (:mod:`venus_ems.runtime.limit_output`: written as a non-persistent
whole percent, verified by reading the DTU back, retried; safe state the inverter's safe limit,
written on stop, crash, stale inputs and at start, which also clears what a killed process left).
``RestartInverter`` goes to the DTU directly. Another grid regulator too close to our band
(Victron ESS mode 1/2, our ``[ess_control]``: :mod:`venus_ems.control.micro_guard`) puts the
inverters at their safe limits with the reason.

On the GX: the battery-fed group as ``com.victronenergy.dcsystem`` and each such inverter as a
``dcload`` (:mod:`.micro_services`); PV-fed inverters as ``pvinverter`` with a writable
``/Ac/PowerLimit`` (:mod:`.micro_pv`). Runtime tunables (localsettings
``/Settings/VenusEms/MicroInverterControl/*``, MQTT ``<prefix>/micro_inverter_control/set/<name>``):
``target_w``, ``total_cap_w`` (0 = none), ``stop_soc_pct``/``start_soc_pct`` (-1 = not used),
``full_soc_pct`` (0 = off) and ``soc_floating_max`` (seed B's seasonal memory, kept there).
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import aiohttp
import anyio
from anyio.abc import TaskGroup, TaskStatus

from ..clock import sleep_or_event
from ..control import GridSample, RestartInverter
from ..control.micro import decide
from ..control.micro_guard import conflict
from ..control.micro_model import MicroInputs, MicroSettings, MicroState
from ..control.reasons import ReasonCode
from ..devices import PowerLimiter
from ..devices.registry import open_device
from ..errors import ConfigError, DeviceAuthError, DeviceConnectionError, DeviceError
from ..runtime.config import MicroInverterControlConfig
from ..venus import Subscription
from .ess_inputs import InputTracker, phase_count
from .ess_tunables import Tunable, Tunables, TunableValue, shielded_stop
from .micro_inputs import DtuSnapshot, core_settings, grid_owners, inverter_samples, nameplate_of
from .micro_outputs import MicroOutputs, connection

if TYPE_CHECKING:
    from ..runtime.feature import FeatureContext

__all__ = ["MicroInverterControl", "build", "tunables_for"]

TICK_S = 1.0
MAX_REASONS = 8
"""Reasons published per decision (each cut at 200 characters): the status paths are bounded."""


def tunables_for(config: MicroInverterControlConfig) -> list[Tunable]:
    """The runtime tunables, defaults from the configuration (-1 / 0 = not used)."""
    b = config.battery
    stop = -1.0 if b.stop_soc_pct is None else b.stop_soc_pct
    start = -1.0 if b.start_soc_pct is None else b.start_soc_pct
    return [
        Tunable("target_w", "TargetW", config.target_w, -5000.0, 5000.0),
        Tunable("total_cap_w", "TotalCapW", config.total_cap_w or 0.0, 0.0, 50_000.0),
        Tunable("stop_soc_pct", "StopSoc", stop, -1.0, 99.0),
        Tunable("start_soc_pct", "StartSoc", start, -1.0, 100.0),
        Tunable("full_soc_pct", "FullSoc", b.full_soc_pct or 0.0, 0.0, 100.0),
        Tunable("soc_floating_max", "SocFloatingMax", 74.0, 10.0, 110.0),
    ]


class MicroInverterControl:
    """The micro-inverter zero feed-in feature (C3)."""

    name = "micro_inverter_control"

    def __init__(self, config: MicroInverterControlConfig) -> None:
        """Check the configuration against the core (ConfigError); nothing runs until run()."""
        self.config = config
        self.battery_fed = [i for i in config.inverters if i.source == "battery"]
        self.tunables = Tunables(
            self.name, "MicroInverterControl", tunables_for(config), self._validate, self._retune
        )
        self._validate(dict(self.tunables.values))
        self.state = MicroState()
        self.settings: MicroSettings | None = None
        self.snapshot = DtuSnapshot()
        self.outputs = MicroOutputs(config, self.name)
        self.device: PowerLimiter | None = None
        self._wake = anyio.Event()
        self._notes: dict[str, str] = {}
        self._floating_saved: float | None = None

    # ----------------------------------------------------------------- settings

    def _validate(self, values: dict[str, TunableValue]) -> MicroSettings:
        # nameplates come from the DTU later; check the rest against the configured maxima
        plates = {i.serial: i.max_power_w or max(i.max_w or 0.0, 1000.0) for i in self.battery_fed}
        return core_settings(self.config, values, plates, {})

    def _retune(self) -> None:
        if self.settings is not None:
            self.settings = core_settings(
                self.config, self.tunables.values, self.outputs.nameplates, self._models()
            )
        floating = float(self.tunables.values["soc_floating_max"])
        battery = self.state.battery
        if floating != battery.floating.value:  # the user moved seed B's seasonal memory
            self.state = replace(
                self.state,
                battery=replace(battery, floating=replace(battery.floating, value=floating)),
            )
            self._floating_saved = floating
        self._wake.set()

    def _models(self) -> dict[str, str]:
        return {s: r.model for s, r in self.snapshot.readings.items()}

    # ----------------------------------------------------------------- the DTU

    async def _open(self, ctx: FeatureContext, session: aiohttp.ClientSession) -> PowerLimiter:
        device = await open_device(
            self.config.driver, session, connection(self.config), clock=ctx.clock
        )
        if not isinstance(device, PowerLimiter):
            raise ConfigError(
                f"[micro_inverter_control] {device.identity.product_name} at {self.config.host} "
                "cannot limit inverters"
            )
        listed = set(device.inverter_serials)
        missing = [i.serial for i in self.config.inverters if i.serial not in listed]
        if missing:
            ctx.message("warning", f"the DTU does not list inverter(s) {', '.join(missing)}")
        return device

    async def _poll(self, ctx: FeatureContext, session: aiohttp.ClientSession) -> None:
        """Read the DTU every ``poll_interval_s``; a failure keeps the last answers (aging)."""
        clock = ctx.clock
        next_t = clock.monotonic()
        while True:
            try:
                if self.device is None:
                    self.device = await self._open(ctx, session)
                readings = await self.device.read_inverters()
                limits = await self.device.read_limits()
            except DeviceAuthError:
                raise  # not retryable: the feature stops (its inverters go safe)
            except DeviceError as err:
                self.snapshot.error = str(err)
                if isinstance(err, DeviceConnectionError):
                    self.device = None
            else:
                self.snapshot = DtuSnapshot(
                    {r.serial: r for r in readings}, limits, clock.monotonic(), None
                )
            self._wake.set()
            now = clock.monotonic()
            next_t = max(next_t + self.config.poll_interval_s, now)
            await clock.sleep(next_t - now)

    async def _restart(self, ctx: FeatureContext, serial: str) -> None:
        device = self.device
        if device is None or ctx.dry_run:
            return
        try:
            await device.restart(serial)
        except DeviceError as err:
            ctx.message("warning", f"restarting inverter {serial} failed: {err}")
        else:
            ctx.message("warning", f"inverter {serial} refused its limit repeatedly: restarted it")

    # ----------------------------------------------------------------- outputs and services

    async def _prepare(self, ctx: FeatureContext, stack: AsyncExitStack) -> bool:
        """Once every nameplate is known: core settings, actuators and services (True: ready)."""
        plates: dict[str, float] = {}
        for inv in self.config.inverters:
            plate = nameplate_of(inv, self.snapshot)
            if plate is None:
                return False
            plates[inv.serial] = plate
        try:
            self.settings = core_settings(self.config, self.tunables.values, plates, self._models())
        except ValueError as err:
            raise ConfigError(f"[micro_inverter_control] {err}") from err
        await self.outputs.prepare(ctx, stack, plates, self._wake.set)
        return True

    # ----------------------------------------------------------------- one decision

    def step(self, ctx: FeatureContext, tracker: InputTracker, tg: TaskGroup) -> None:
        """Decide on the current readings, apply the commands, publish, report."""
        settings = self.settings
        if settings is None:
            ctx.report("waiting for the DTU", [self.snapshot.error or "nameplates not known yet"])
            return
        now = ctx.clock.monotonic()
        mon = ctx.monitor
        tracker.rejected = []  # this step's rejected readings only
        per_phase = tracker.grid(mon, self.phases)
        grid = (
            None if per_phase is None else GridSample((per_phase.total_w,), per_phase.measured_at)
        )
        owner = conflict(
            grid_owners(mon), settings.target_w - settings.down_band_w, self.config.ess_margin_w
        )
        out = self.outputs
        inputs = MicroInputs(
            grid=grid,
            battery=tracker.battery(mon),
            inverters=inverter_samples(
                self.config, self.snapshot, out.written(dry_run=ctx.dry_run), dry_run=ctx.dry_run
            ),
            dtu_at=self.snapshot.at,
            other_w=out.pv_output_w(self.snapshot),
            other_max_w=sum(out.nameplates[i.serial] for i in out.pv_fed),
            hold_off=None if owner is None else owner.text,
        )
        decision = decide(inputs, self.state, settings, now)
        self.state = decision.next_state
        out.apply(decision.commands)
        for cmd in decision.commands:
            if isinstance(cmd, RestartInverter):
                tg.start_soon(self._restart, ctx, cmd.serial)
        out.pv_claims(float(self.tunables.values["total_cap_w"]))
        out.publish(self.snapshot, now)
        self._save_floating(ctx, tg)
        self._report(ctx, decision.reasons, tracker.rejected)

    def _save_floating(self, ctx: FeatureContext, tg: TaskGroup) -> None:
        """Keep seed B's seasonal memory in localsettings (it moves at most once a day)."""
        value = self.state.battery.floating.value
        if value == self._floating_saved or ctx.settings is None:
            return
        self._floating_saved = value
        path = self.tunables.path(self.tunables.items["soc_floating_max"])
        tg.start_soon(self._store, ctx, path, value)

    async def _store(self, ctx: FeatureContext, path: str, value: float) -> None:
        if ctx.settings is None:
            return
        try:
            await ctx.settings.set(path, value)
        except Exception as err:  # noqa: BLE001 - a lost write of a daily value is only logged
            ctx.log.warning("cannot store %s: %s", path, err)

    def _report(self, ctx: FeatureContext, reasons: Any, rejected: list[str]) -> None:
        codes = {r.code for r in reasons}
        for key, code in (
            ("safe", ReasonCode.SAFE_SETPOINT),
            ("hold_off", ReasonCode.HOLD_OFF),
            ("restart", ReasonCode.RESTART),
            ("lost", ReasonCode.LIMIT_LOST),
            ("unreachable", ReasonCode.UNREACHABLE),
        ):
            texts = sorted({_stable(r.text) for r in reasons if r.code is code})
            self._note(ctx, key, "; ".join(texts) or None)
        limits = [
            f"{s}: {act.value:.0f} W" if act.value is not None else f"{s}: -"
            for s, act in self.outputs.actuators.items()
            if s in {i.serial for i in self.battery_fed}
        ]
        state = "safe state" if self.state.safe else "regulating"
        if ReasonCode.BATTERY_STOP in codes:
            state = "battery stopped"
        texts = list(dict.fromkeys([*rejected, *(r.text for r in reasons)]))[:MAX_REASONS]
        ctx.report(f"{state}; limits {', '.join(limits)}", [t[:200] for t in texts])

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

    # ----------------------------------------------------------------- lifecycle

    async def _follow(self, sub: Subscription, tracker: InputTracker) -> None:
        async for changes in sub:
            if tracker.update(changes):
                self._wake.set()

    def _restore_floating(self) -> None:
        floating = float(self.tunables.values["soc_floating_max"])
        battery = self.state.battery
        self.state = replace(
            self.state, battery=replace(battery, floating=replace(battery.floating, value=floating))
        )
        self._floating_saved = floating

    async def run(self, ctx: FeatureContext, *, task_status: TaskStatus[None]) -> None:
        """Poll the DTU and decide until cancelled; the actuators own the safe states."""
        mon = ctx.monitor
        self.state, self.settings, self.snapshot, self.device = (
            MicroState(),
            None,
            DtuSnapshot(),
            None,
        )
        self.outputs = MicroOutputs(self.config, self.name)
        self._notes.clear()
        self.phases = 1
        tracker = InputTracker(ctx.clock)
        tracker.start()
        sub = mon.subscribe()
        try:
            async with AsyncExitStack() as stack:
                connector = aiohttp.TCPConnector(limit_per_host=1)
                session = await stack.enter_async_context(
                    aiohttp.ClientSession(connector=connector)
                )
                tg = await stack.enter_async_context(anyio.create_task_group())
                stack.callback(tg.cancel_scope.cancel)
                await self.tunables.start(ctx, tg)
                self._restore_floating()
                tg.start_soon(self._follow, sub, tracker)
                tg.start_soon(self._poll, ctx, session)
                task_status.started()
                while True:
                    self._wake = anyio.Event()
                    if self.settings is None:
                        await self._prepare(ctx, stack)
                    self.phases = phase_count(mon)
                    self.step(ctx, tracker, tg)
                    await sleep_or_event(ctx.clock, TICK_S, self._wake)
        finally:
            mon.unsubscribe(sub)
            await shielded_stop(self.tunables)


def _stable(text: str) -> str:
    """A reason's text without the numbers that change every second."""
    return text.split(" (", 1)[0]


def build(config: MicroInverterControlConfig) -> MicroInverterControl:
    """Registry factory for ``[micro_inverter_control]`` (ConfigError for refused values)."""
    return MicroInverterControl(config)
