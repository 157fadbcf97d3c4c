"""S4: a Fronius Wattpilot as com.victronenergy.evcharger, with solar-surplus charging.

Every second (and on every new charger status) one decision is made from the charger's latest
status and the GX's readings, by mode (``/Mode``, writable from gui-v2/VRM):

* manual: ``/StartStop`` 1 charges at ``/SetCurrent`` A on ``manual_phases``; 0 pauses;
* auto: solar surplus (:mod:`venus_ems.control.ev_surplus`): the allowance granted by the
  ``[surplus]`` distributor when it runs (the charger joined the consumer board as a continuous
  consumer), else the surplus measured here: grid export + the car's own draw (+ the house
  battery's charge power above ``battery_soc_pct``). Inside a configured window it charges at
  the window's current. Without surplus and with ``low_price_neutral`` the charger's own logic
  (its low-price charging) is left to act. While Victron's Opportunity Loads runs, surplus
  charging stands down (the charger is paused; it offers no S2 resource manager yet:
  ``/S2/0/Active`` 0);
* scheduled: charges only inside the windows.

The command goes to the one actuator of the charger (:mod:`.ev_output`), which writes it
acknowledged and owns the safe state. A stale or missing charger status releases the claim (safe
state); stale grid readings pause surplus charging. ``/MaxCurrent`` caps every mode.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import aiohttp
import anyio
from anyio.abc import TaskStatus

from ..clock import sleep_or_event
from ..control.ev_surplus import (
    ChargerCommand,
    EvState,
    SurplusInputs,
    SurplusSettings,
    decide,
)
from ..devices.base import Connection, EvChargerReading
from ..devices.registry import open_device
from ..errors import DeviceError
from ..runtime.actuator import Actuator
from ..runtime.config import EvChargerConfig
from ..runtime.consumers import ConsumerHandle, ConsumerSpec
from ..venus.names import OPPORTUNITY_LOADS, SYSTEM
from .ess_inputs import InputTracker, phase_count
from .ev_output import ChargerWriter, charger_actuator
from .ev_service import (
    STATUS_CHARGED,
    STATUS_CHARGING,
    STATUS_CONNECTED,
    STATUS_DISCONNECTED,
    STATUS_WAIT_START,
    STATUS_WAIT_SUN,
    EvChargerService,
)

if TYPE_CHECKING:
    from ..runtime.feature import FeatureContext

__all__ = ["EvChargerFeature", "build", "connection"]

TICK_S = 1.0
NOMINAL_V = 230.0


def connection(config: EvChargerConfig) -> Connection:
    """How to reach the configured charger."""
    assert config.host is not None
    assert config.password is not None
    return Connection(
        config.host,
        config.timeout_s,
        password=config.password.get_secret_value(),
        options={"auth": config.auth},
    )


def surplus_settings(config: EvChargerConfig, can_switch: bool) -> SurplusSettings:
    """Core settings from the configuration."""
    return SurplusSettings(
        min_current_a=config.min_current_a,
        max_current_a=config.max_current_a,
        can_switch_phases=can_switch,
        max_phases=config.max_phases,
        start_margin=config.start_margin,
        start_delay_s=config.start_delay_s,
        stop_delay_s=config.stop_delay_s,
        up_delay_s=config.up_delay_s,
        down_delay_s=config.down_delay_s,
        min_on_off_s=config.min_on_off_s,
        min_phase_switch_s=config.min_phase_switch_s,
    )


class EvChargerFeature:
    """The ``[ev_charger]`` feature."""

    name = "ev_charger"

    def __init__(self, config: EvChargerConfig) -> None:
        """Check the configuration; nothing runs until :meth:`run`."""
        self.config = config
        self.settings = surplus_settings(config, can_switch=True)
        self.state = EvState()
        self.service: EvChargerService | None = None
        self.seat: ConsumerHandle | None = None
        self.session_s = 0.0
        self.plugged = False
        self.car_phases: int | None = None
        self._last_at: float | None = None
        self._wake = anyio.Event()
        self.why: list[str] = []

    @property
    def safe(self) -> ChargerCommand:
        """The output's safe state: paused (or neutral) at the minimum current."""
        floor = math.ceil(self.config.min_current_a)
        if self.config.safe_state == "pause":
            return ChargerCommand("off", floor, None)
        return ChargerCommand("neutral", floor, None)

    def actuator(self, ctx: FeatureContext) -> Actuator[Any]:
        """The charger's actuator, created once per daemon (it outlives feature restarts)."""
        conn, clock = connection(self.config), ctx.clock

        async def opener(session: aiohttp.ClientSession) -> Any:
            return await open_device(self.config.driver, session, conn, clock=clock)

        def make() -> Actuator[Any]:
            writer = ChargerWriter(opener, conn.host)
            return charger_actuator(
                writer,
                ctx.clock,
                safe=self.safe,
                claim_ttl_s=2.0 * self.config.stale_input_s,
                min_interval_s=2.0,
                retry_s=5.0,
            )

        return ctx.actuators.ensure("ev.charger", make)

    def _wake_up(self) -> None:
        self._wake.set()  # the current event: it is replaced at every decision

    # ------------------------------------------------------------------ GUI writes

    def _on_write(self, path: str, value: Any) -> bool:
        """A write from gui-v2/VRM: accepted values take effect at the next decision."""
        if path == "/SetCurrent" and self.service is not None:
            top = self.service.number("/MaxCurrent") or self.config.max_current_a
            if float(value) > top:
                return False
        self._wake.set()
        return True

    # ------------------------------------------------------------------ one decision

    def _available_w(
        self, ctx: FeatureContext, tracker: InputTracker, reading: EvChargerReading, now: float
    ) -> tuple[float | None, str]:
        """W the car may draw now: the grant, else grid export + own draw (+ battery)."""
        if self.seat is not None:
            grant = self.seat.allowance(now, max_age_s=3.0 * self.config.stale_input_s)
            if grant is not None:
                return grant.power_w, f"granted {grant.power_w:.0f} W by the distributor"
        grid = tracker.grid(ctx.monitor, phase_count(ctx.monitor))
        if grid is None or now - grid.measured_at > self.config.stale_input_s:
            return None, "grid reading stale or missing"
        available = -grid.total_w + max(reading.power_w, 0.0)
        bat = tracker.battery(ctx.monitor)
        soc_floor = self.config.battery_soc_pct
        if (
            soc_floor is not None
            and bat is not None
            and bat.soc_pct is not None
            and bat.power_w is not None
            and bat.soc_pct >= soc_floor
            and now - bat.measured_at <= self.config.stale_input_s
        ):
            available += max(bat.power_w, 0.0)
        return available, f"surplus {available:.0f} W"

    def _window(self, ctx: FeatureContext) -> Any:
        local = ctx.clock.now().astimezone()
        minute = local.hour * 60 + local.minute
        return next((w for w in self.config.windows if w.contains(minute)), None)

    def decide(
        self, ctx: FeatureContext, tracker: InputTracker, reading: EvChargerReading, now: float
    ) -> tuple[ChargerCommand, int]:
        """The command and the ``/Status`` to show, by mode; reasons in ``self.why``."""
        svc = self.service
        assert svc is not None
        mode = svc.mode()
        top = min(svc.number("/MaxCurrent") or self.config.max_current_a, 80.0)
        floor = math.ceil(self.config.min_current_a)
        off = ChargerCommand("off", floor, None)
        if not reading.plugged:
            self.why = ["no car"]
            return off, STATUS_DISCONNECTED
        if reading.car == "complete":
            self.why = ["car complete"]
            return off, STATUS_CHARGED
        window = self._window(ctx)
        if mode == "manual":
            if svc.number("/StartStop") == 1:
                amps = int(min(svc.number("/SetCurrent") or floor, top))
                self.why = [f"manual: {amps} A on {self.config.manual_phases} phase(s)"]
                return ChargerCommand("on", amps, self.config.manual_phases), STATUS_CHARGING
            self.why = ["manual: stopped"]
            return off, STATUS_CONNECTED
        if window is not None:
            amps = int(min(window.current_a, top))
            self.why = [f"window {window.start}-{window.end}: {amps} A"]
            return ChargerCommand("on", amps, window.phases), STATUS_CHARGING
        if mode == "scheduled":
            self.why = ["scheduled: outside every window"]
            return off, STATUS_WAIT_START
        if ctx.monitor.services(OPPORTUNITY_LOADS):
            self.why = ["Opportunity Loads is running: surplus charging stands down"]
            return off, STATUS_WAIT_SUN
        available, source = self._available_w(ctx, tracker, reading, now)
        voltages = tuple(p.voltage_v for p in reading.phases)
        currents = tuple(p.current_a for p in reading.phases)
        inputs = SurplusInputs(
            available,
            (voltages[0], voltages[1], voltages[2]),
            (currents[0], currents[1], currents[2]),
            phases_selected=reading.phases_selected,
            charging=reading.charging,
            car_phases=self.car_phases,
        )
        settings = self.settings
        if top < settings.max_current_a:
            settings = replace(settings, max_current_a=max(top, settings.min_current_a))
        d = decide(inputs, self.state, settings, now)
        self.state = d.next_state
        self.why = [source, *d.reasons]
        cmd = d.command
        if cmd.force == "off":
            if self.config.low_price_neutral:
                return ChargerCommand("neutral", cmd.amps, cmd.phases), STATUS_WAIT_SUN
            return cmd, STATUS_WAIT_SUN
        return cmd, STATUS_CHARGING

    def _learn(self, reading: EvChargerReading, now: float) -> None:
        """Session time and the phases the car loads; AutoStart on plug-in."""
        dt = 0.0 if self._last_at is None else max(min(now - self._last_at, 5.0), 0.0)
        self._last_at = now
        if reading.plugged and not self.plugged:
            self.session_s, self.car_phases = 0.0, None
            if self.service is not None and self.service.number("/AutoStart") == 1:
                self.service.service["/StartStop"] = 1
        if not reading.plugged and self.plugged and self.service is not None:
            self.service.service["/StartStop"] = 0
        self.plugged = reading.plugged
        if reading.charging:
            self.session_s += dt
            if reading.phases_selected == 3 and not reading.phase_switching:
                seen = reading.phases_in_use
                if seen:
                    self.car_phases = max(self.car_phases or 0, seen)

    async def step(
        self, ctx: FeatureContext, act: Actuator[Any], tracker: InputTracker, dev: Any
    ) -> None:
        """One decision on the charger's latest status."""
        now = ctx.clock.monotonic()
        svc = self.service
        assert svc is not None
        try:
            reading: EvChargerReading | None = await dev.read_charger()
        except DeviceError as err:
            reading, why = None, str(err)
        else:
            why = "charger status stale"
        if reading is not None and now - reading.taken_at > self.config.stale_input_s:
            reading = None
        if reading is None:
            act.release(self.name)  # the actuator writes the safe state (when it can)
            svc.publish(None, None, None)
            if self.seat is not None:
                self.seat.report(None, now, ready=False)
            ctx.report("charger unreachable: safe state", [why])
            return
        self._learn(reading, now)
        cmd, status = self.decide(ctx, tracker, reading, now)
        act.claim(self.name, cmd)
        if reading.phase_switching:
            status = 22 if reading.phases_selected == 3 else 23
        elif reading.charging:
            status = STATUS_CHARGING
        svc.publish(reading, status, self.session_s if reading.plugged else None)
        if self.seat is not None:
            ready = reading.plugged and reading.car != "complete" and svc.mode() == "auto"
            self.seat.report(reading.power_w, now, ready=ready)
        phases = "" if cmd.phases is None else f" x {cmd.phases}"
        ctx.report(f"{cmd.force} {cmd.amps} A{phases}", self.why)

    # ------------------------------------------------------------------ lifecycle

    def _spec(self) -> ConsumerSpec:
        c = self.config
        return ConsumerSpec(
            name=self.name,
            priority=c.priority,
            min_w=c.min_current_a * NOMINAL_V,
            max_w=c.max_current_a * NOMINAL_V * c.max_phases,
            step_w=NOMINAL_V,
            min_on_s=c.min_on_off_s,
            min_off_s=c.min_on_off_s,
        )

    async def _follow(self, ctx: FeatureContext, tracker: InputTracker) -> None:
        sub = ctx.monitor.subscribe()
        try:
            async for changes in sub:
                tracker.update(changes)
        finally:
            ctx.monitor.unsubscribe(sub)

    async def run(self, ctx: FeatureContext, *, task_status: TaskStatus[None]) -> None:
        """Connect, publish the evcharger service, decide every second until cancelled."""
        act = self.actuator(ctx)
        writer = act.writer
        assert isinstance(writer, ChargerWriter)
        await ctx.monitor.wait_for_service(SYSTEM, timeout=30.0)
        tracker = InputTracker(ctx.clock)
        tracker.start()
        self.state, self.plugged, self._last_at = EvState(), False, None
        self.service = EvChargerService(
            self.config, address=ctx.bus_address, on_write=self._on_write
        )
        async with aiohttp.ClientSession() as session:
            dev: Any = await open_device(
                self.config.driver, session, connection(self.config), clock=ctx.clock
            )
            self.settings = surplus_settings(self.config, dev.can_switch_phases)
            async with dev, self.service.service, anyio.create_task_group() as tg:
                writer.live = dev
                self.seat = ctx.consumers.join(self._spec())
                self.seat.on_grant(self._wake_up)
                try:
                    tg.start_soon(self._follow, ctx, tracker)
                    task_status.started()
                    while True:
                        self._wake = anyio.Event()
                        await self.step(ctx, act, tracker, dev)
                        await sleep_or_event(ctx.clock, TICK_S, self._wake)
                finally:
                    writer.live = None
                    self.seat.leave()
                    self.seat = None
                    tg.cancel_scope.cancel()


def build(config: EvChargerConfig) -> EvChargerFeature:
    """Registry factory for ``[ev_charger]``."""
    return EvChargerFeature(config)
