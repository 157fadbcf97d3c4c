"""One ``[[surplus.consumer]]``: a seat on the consumer board, an owned relay, its counters.

The runner joins :class:`~venus_ems.runtime.consumers.ConsumerBoard` with a stepped spec
(0 or ``power_w``), and every ``poll_interval_s`` (or at once on a new grant):

* reads the relay and its meter back; it reports its draw (metered, else ``power_w`` while
  on), and is *ready* only while the device answers and its ``when`` expression holds;
* claims its actuator ``surplus.<name>``: on only while the distributor is active and its
  grant (fresher than ``grant_max_age_s``) covers ``power_w``; otherwise off. So a process
  restarted after ``kill -9`` switches a relay its predecessor left on off at its first step;
* the actuator owns the safe state (``safe_state``, default off): written and read back when
  the feature stops or crashes and when the daemon gets SIGTERM;
* integrates runtime (s) and energy (Wh) per day (local time), yesterday and total
  (:mod:`.surplus_stats`) and publishes it all on its ``com.victronenergy.acload`` service.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import aiohttp
import anyio

from ..clock import Clock, sleep_or_event
from ..control.expression import Expression
from ..errors import ConfigError, DeviceError
from ..runtime.actuator import Actuator
from ..runtime.config import SurplusConsumerConfig
from ..runtime.config.surplus import when_expression
from ..runtime.consumers import ConsumerBoard, ConsumerHandle, ConsumerSpec
from ..runtime.s2_rm import OmbcResourceManager
from ..venus import DeviceInstance, Identity, PathSpec, Service
from ..venus.names import ACLOAD, service_name
from ..venus.specs.units import KWH, STR, W
from .surplus_s2 import offer_as_rm
from .surplus_stats import ConsumerStats
from .surplus_switches import ConsumerSwitch, open_switch

if TYPE_CHECKING:
    from ..runtime.feature import FeatureContext
    from ..runtime.mqtt import MqttLink

__all__ = ["ConsumerRunner", "ConsumerWriter", "consumer_service", "consumer_spec"]

PREFERRED_INSTANCE = 70
_INT = PathSpec("i")
_SECONDS = PathSpec("d", "%.0F s", unit="s")


def consumer_spec(cfg: SurplusConsumerConfig) -> ConsumerSpec:
    """The board spec of a switched consumer: levels 0 and ``power_w``."""
    return ConsumerSpec(
        name=cfg.name,
        priority=cfg.priority,
        priority_shift=cfg.priority_shift,
        levels_w=(0.0, cfg.power_w),
        min_on_s=cfg.min_on_s,
        min_off_s=cfg.min_off_s,
        ignore_reservation=cfg.ignore_reservation,
    )


def consumer_service(
    name: str,
    *,
    custom_name: str,
    connection: str,
    instance: int,
    request_w: float | None,
    priority: int | None,
    address: str | None,
) -> Service:
    """``com.victronenergy.acload.venusems_surplus_<name>`` with its paths (not registered).

    ``/Ac/Power`` and ``/Ac/L1/Power`` (draw W), ``/Ac/Energy/Forward`` (kWh), ``/State``
    (0/1), ``/Surplus/{Allowance,Request}`` (W), ``/Surplus/{Priority,Reason,Error}``,
    ``/Surplus/{Runtime,Energy}{Today,Yesterday,Total}`` (s, kWh).
    """
    suffix = f"venusems_surplus_{name}"
    svc = Service(
        service_name(ACLOAD, suffix),
        identity=Identity("Surplus consumer", product_id=0xFFFF, connection=connection),
        device_instance=DeviceInstance("acload", instance, suffix),
        address=address,
    )
    svc.add_path("/CustomName", custom_name, STR)
    svc.add_path("/Ac/Power", None, W)
    svc.add_path("/Ac/L1/Power", None, W)
    svc.add_path("/Ac/Energy/Forward", None, KWH)
    svc.add_path("/State", None, _INT)
    svc.add_path("/Surplus/Allowance", None, W)
    svc.add_path("/Surplus/Request", request_w, W)
    svc.add_path("/Surplus/Priority", priority, _INT)
    svc.add_path("/Surplus/Reason", "", STR)
    svc.add_path("/Surplus/Error", "", STR)
    for key in ("RuntimeToday", "RuntimeYesterday", "RuntimeTotal"):
        svc.add_path(f"/Surplus/{key}", None, _SECONDS)
    for key in ("EnergyToday", "EnergyYesterday", "EnergyTotal"):
        svc.add_path(f"/Surplus/{key}", None, KWH)
    return svc


class ConsumerWriter:
    """The relay of one consumer as an actuator output; owns its HTTP session and switch."""

    def __init__(self, cfg: SurplusConsumerConfig, link: MqttLink | None, clock: Clock) -> None:
        """Nothing is opened until the first write or read."""
        self.cfg = cfg
        self.link = link
        self.clock = clock
        self._session: aiohttp.ClientSession | None = None
        self._switch: ConsumerSwitch | None = None

    @property
    def target(self) -> str:
        """For logs and status."""
        return f"surplus consumer {self.cfg.name} ({self.cfg.driver})"

    async def switch(self) -> ConsumerSwitch:
        """The switch, opened (again) when needed; DeviceError or ConfigError."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=2))
            self._switch = None
        if self._switch is None:
            self._switch = await open_switch(self.cfg, self._session, self.link, self.clock)
        return self._switch

    async def write(self, value: bool) -> None:
        """Switch and read back; DeviceError when the device does not confirm it."""
        try:
            await (await self.switch()).set_output(0, value)
        except DeviceError:
            self._switch = None if self.cfg.driver == "shelly" else self._switch
            raise

    async def read(self) -> tuple[bool, float | None]:
        """(on, draw W or None) as the device says now; DeviceError."""
        sw = await self.switch()
        on = await sw.read_output(0)
        return on, await sw.read_draw()

    async def reset(self) -> None:
        """Subscribe the MQTT switch again from the calling feature run.

        The link drops the handlers of a feature run that ended (a crash, a restart): the
        writer outlives runs, so each run opens its MQTT switch anew.
        """
        if self.cfg.driver == "mqtt" and self._switch is not None:
            await self._stop_switch()
            self._switch = None

    async def _stop_switch(self) -> None:
        stop = getattr(self._switch, "stop", None)
        if stop is not None:
            with contextlib.suppress(ValueError):  # already dropped by the link
                await stop()

    async def aclose(self) -> None:
        """Close the session (and the MQTT subscriptions)."""
        await self._stop_switch()
        if self._session is not None:
            await self._session.close()
        self._session = self._switch = None


class ConsumerRunner:
    """Runs one consumer (see the module doc)."""

    def __init__(
        self,
        cfg: SurplusConsumerConfig,
        *,
        grant_max_age_s: float,
        site_values: Callable[[], Mapping[str, float | None]],
        stats: ConsumerStats,
        feature: str = "surplus",
    ) -> None:
        """``site_values()``: the names ``when`` may use; claims are made as ``feature``."""
        self.cfg = cfg
        self.feature = feature
        self.spec = consumer_spec(cfg)
        self.grant_max_age_s = grant_max_age_s
        self.site_values = site_values
        self.stats = stats
        self.when: Expression | None = None if cfg.when is None else when_expression(cfg.when)
        self.on: bool | None = None
        self.draw_w: float | None = None
        self.problem: str | None = None
        self.handle: ConsumerHandle | None = None
        self.service: Service | None = None
        self.rm: OmbcResourceManager | None = None
        self.cem_w: float | None = None  # what Victron's CEM instructed (None: not driving)
        self._wake = anyio.Event()
        self.stepped = anyio.Event()

    def make_service(self, address: str | None, index: int, clock: Clock | None = None) -> Service:
        """Its ``com.victronenergy.acload.venusems_surplus_<name>`` (not registered yet).

        With ``clock`` it also carries an S2 resource manager (``/S2/0/Rm``, :mod:`.surplus_s2`).
        """
        cfg = self.cfg
        self.service = consumer_service(
            cfg.name,
            custom_name=cfg.custom_name or cfg.name,
            connection=cfg.driver,
            instance=cfg.device_instance or PREFERRED_INSTANCE + index,
            request_w=cfg.power_w,
            priority=cfg.priority,
            address=address,
        )
        if clock is not None:
            self.rm = offer_as_rm(self, self.service, clock)
        return self.service

    def actuator(self, writer: ConsumerWriter, clock: Clock) -> Actuator[Any]:
        """Its owned output (safe state from the config), claims expire after 3 polls."""
        return Actuator(
            f"surplus.{self.cfg.name}",
            writer,
            safe_value=self.cfg.safe_state == "on",
            clock=clock,
            claim_ttl_s=max(3.0 * self.cfg.poll_interval_s, 15.0),
            write_timeout_s=self.cfg.timeout_s * 3 + 1.0,
            retry_s=max(self.cfg.poll_interval_s, 5.0),
        )

    def wake(self) -> None:
        """Run a step now (a new grant or a CEM instruction)."""
        self._wake.set()

    def ready_now(self) -> tuple[bool, str | None]:
        """Whether it may take surplus now, and why not (the ``when`` expression)."""
        if self.when is None:
            return True, None
        try:
            ok = self.when.evaluate(self.site_values()) != 0
        except ValueError as err:
            return False, f"when: {err}"
        return ok, None if ok else f"when {self.when.text!r} is false"

    async def run(self, ctx: FeatureContext, board: ConsumerBoard, act: Actuator[Any]) -> None:
        """Follow the grants until cancelled (the caller's actuator puts the safe state)."""
        writer = act.writer
        assert isinstance(writer, ConsumerWriter)
        await writer.reset()
        self.handle = handle = board.join(self.spec)
        handle.on_grant(self._wake.set)
        try:
            async with anyio.create_task_group() as tg:
                if self.rm is not None:
                    await tg.start(self.rm.run)
                while True:
                    self._wake = anyio.Event()
                    await self.step(ctx.clock, writer, act)
                    self.stepped.set()
                    self.stepped = anyio.Event()
                    await sleep_or_event(ctx.clock, self.cfg.poll_interval_s, self._wake)
        finally:
            act.release(self.feature)  # the actuator writes the safe state
            handle.leave()
            self.handle = None

    async def step(self, clock: Clock, writer: ConsumerWriter, act: Actuator[Any]) -> None:
        """Read back, report, follow the grant, count, publish."""
        assert self.handle is not None
        try:
            with anyio.fail_after(self.cfg.timeout_s * 2 + 1.0):
                on, metered = await writer.read()
            self.problem = None
        except (DeviceError, ConfigError, TimeoutError) as err:
            on, metered = None, None
            self.problem = str(err) or "no answer"
        now = clock.monotonic()
        self.on = on
        draw: float | None
        if on is None:
            draw = None
        elif metered is not None and math.isfinite(metered):
            draw = max(0.0, metered)
        else:
            draw = self.cfg.power_w if on else 0.0
        self.draw_w = draw
        ready, why = self.ready_now()
        self.handle.report(draw, now, ready=ready and on is not None)
        grant = self.handle.allowance(now, max_age_s=self.grant_max_age_s)
        want = grant is not None and grant.power_w >= self.cfg.power_w - 1e-6
        if self.rm is not None:  # Victron's CEM may drive it only while we do not distribute
            self.rm.offer(not self.handle.board.distributor_active and on is not None)
            self.rm.measured(draw)
            if self.cem_w is not None:
                grant, want = None, self.cem_w >= self.cfg.power_w - 1e-6
                why = why or "Victron Opportunity Loads"
        act.claim(self.feature, want)
        if on is not None and act.value is not None and on != act.value and act.last_error is None:
            act.reassert()  # someone switched it behind our back: put ours back
        self.stats.advance(on is True, draw or 0.0, now)
        reason = why or (grant.reason if grant is not None else "no distributor")
        self.publish(grant.power_w if grant is not None else None, reason, act)

    def publish(self, allowance: float | None, reason: str, act: Actuator[Any]) -> None:
        """Refresh its D-Bus service."""
        svc = self.service
        if svc is None:
            return
        st = self.stats
        svc.update(
            {
                "/Ac/Power": self.draw_w,
                "/Ac/L1/Power": self.draw_w,
                "/Ac/Energy/Forward": st.energy_total_wh / 1000.0,
                "/State": None if self.on is None else int(self.on),
                "/Connected": int(self.on is not None),
                "/Surplus/Allowance": allowance,
                "/Surplus/Reason": reason[:200],
                "/Surplus/Error": (self.problem or act.last_error or "")[:200],
                "/Surplus/RuntimeToday": st.runtime_today_s,
                "/Surplus/RuntimeYesterday": st.runtime_yesterday_s,
                "/Surplus/RuntimeTotal": st.runtime_total_s,
                "/Surplus/EnergyToday": st.energy_today_wh / 1000.0,
                "/Surplus/EnergyYesterday": st.energy_yesterday_wh / 1000.0,
                "/Surplus/EnergyTotal": st.energy_total_wh / 1000.0,
            }
        )
