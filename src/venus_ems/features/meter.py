"""What the meter features (M1 grid, M2 PV) share: open, poll, hold, invalidate, recover.

A :class:`MeterFeature` is written against the device protocols of ``devices.base``: it opens
its device through the driver registry by the ``driver`` its config names (``shelly`` unless
said otherwise) and never imports a driver. It owns the HTTP session (created in ``run``,
closed on exit), the published service, the custom name (writable on D-Bus and kept in
localsettings when it runs; otherwise the configured one stays) and the persisted energy
counters. Each poll that succeeds goes out as one ItemsChanged with a new ``/UpdateIndex``. A
poll that fails keeps the last values while the last good reading is at most ``hold_s`` old;
after that ``/Connected`` = 0 and every measurement is invalid (never 0) until the device
answers again. A device that does not fit the configuration raises ConfigError (the
supervisor does not retry it). Energy counters are saved before a value above the last saved
ceiling is published (``features.counters``), so they never go back across a restart.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import aiohttp
import anyio
import anyio.to_thread
from anyio.abc import TaskGroup, TaskStatus

from ..devices import Connection, Device, MeterReading, PowerReading, is_fresh
from ..devices.registry import open_device
from ..errors import BusError, ConfigError, DeviceError
from ..runtime.config import GridMeterConfig, PvMeterConfig
from ..venus import SETTINGS_SERVICE, DeviceInstance, Identity, PathSpec, Service, Setting
from ..venus.bus import DBusCallError
from .counters import RESERVE_KWH, CounterFile, EnergyCounters

if TYPE_CHECKING:
    from ..runtime.feature import FeatureContext

__all__ = ["PREFERRED_INSTANCE", "PRODUCT_ID", "MeterFeature", "Reading"]

PRODUCT_ID = 0xFFFF
"""``/ProductId`` of our meters: not a Victron product, so no model-specific handling applies."""

PREFERRED_INSTANCE = 40
"""VRM device instance asked for when the config names none (localsettings may bump it)."""

Reading = MeterReading | PowerReading
"""What a meter feature reads: all CT channels, or one metered output."""


class _State(Enum):
    STARTING = "starting"
    CONNECTED = "connected"
    HOLDING = "holding last values"
    LOST = "disconnected"


class MeterFeature(ABC):
    """The loop every meter feature shares: open, poll, hold, invalidate, recover.

    Subclasses declare their paths, check that the opened device implements the protocol they
    need, read it and turn a reading into path values; this class owns the service, the HTTP
    session, the custom name and the persisted counters.
    """

    service_class: ClassVar[str]
    settings_group: ClassVar[str]
    product_kind: ClassVar[str]
    roles: ClassVar[tuple[str, ...]] = ()
    """Classes the user may switch the service to through ``/Role`` (empty: fixed)."""

    def __init__(
        self, config: GridMeterConfig | PvMeterConfig, *, table: str, save_interval_s: float
    ) -> None:
        """Common set-up; ``save_interval_s``: counters are saved at least this often too."""
        self.config = config
        self.table = table
        self.name = f"{table}.{config.name}"
        self.save_interval_s = save_interval_s
        self.counters = EnergyCounters()
        self.polls = 0  # completed poll cycles (good or failed): lets tests and benches wait
        self.setting_path = f"/Settings/VenusEms/{self.settings_group}/{config.name}/CustomName"
        self._state = _State.STARTING
        self._last_good: float | None = None
        self._index = 0
        self._saved_at: float | None = None
        self._save_failing = False
        self._service: Service | None = None
        self._tg: TaskGroup | None = None
        self._ctx: FeatureContext | None = None

    @property
    def service(self) -> Service | None:
        """The published service while :meth:`run` is running, else None."""
        return self._service

    # ----------------------------------------------------------------- subclass hooks

    @abstractmethod
    def service_name(self) -> str:
        """The D-Bus service name."""

    @abstractmethod
    def declare(self, svc: Service) -> None:
        """Add the class-specific paths (all invalid until the first reading)."""

    @abstractmethod
    def measurement_paths(self) -> list[str]:
        """Paths made invalid when the device is lost."""

    @abstractmethod
    def check_device(self, device: Device) -> str:
        """ConfigError unless the device has the protocol this feature needs; the source key."""

    @abstractmethod
    async def read(self, device: Device) -> Reading:
        """One reading (DeviceError on failure)."""

    @abstractmethod
    def values(self, reading: Reading) -> dict[str, Any]:
        """Path values for a good reading (updates the counters, includes energy_values)."""

    @abstractmethod
    def energy_values(self) -> dict[str, float | None]:
        """The energy paths as they may be published now (``EnergyCounters.published``)."""

    def lost_values(self) -> dict[str, Any]:
        """Path values once the hold time is over."""
        return dict.fromkeys(self.measurement_paths())

    @abstractmethod
    def on_lost(self) -> None:
        """Called when the hold time ran out."""

    # ----------------------------------------------------------------- service and name

    def counter_path(self, ctx: FeatureContext) -> Path:
        """``counter_file`` if configured, else ``<state_dir>/<table>_<name>.json``."""
        configured = getattr(self.config, "counter_file", None)
        if configured:
            return Path(configured)
        return ctx.state_dir / f"{self.table}_{self.config.name}.json"

    def make_service(self, address: str | None, custom_name: str) -> Service:
        """The service with every path declared (not registered)."""
        cfg = self.config
        preferred = PREFERRED_INSTANCE if cfg.device_instance is None else cfg.device_instance
        svc = Service(
            self.service_name(),
            identity=Identity(
                f"{cfg.driver.capitalize()} {self.product_kind}",  # until the device says
                product_id=PRODUCT_ID,
                connection=f"HTTP {cfg.host}",
                connected=0,
            ),
            device_instance=DeviceInstance(
                self.service_class,
                preferred,
                f"venusems_{self.service_class}_{cfg.name}",
                roles=self.roles,
            ),
            address=address,
        )
        svc.add_path("/Serial", None, PathSpec("s"))
        svc.add_path(
            "/CustomName",
            custom_name,
            PathSpec("s", writable=True, max_length=64),
            on_write=self._name_written,
        )
        svc.add_path("/UpdateIndex", 0, PathSpec("i"))
        self.declare(svc)
        return svc

    async def _stored_name(self, ctx: FeatureContext) -> str:
        """The name last written over D-Bus (kept in localsettings), else the configured one.

        An empty name (the default) shows the product name on the GX.
        """
        default = self.config.custom_name or ""
        settings = ctx.settings
        if settings is None or ctx.monitor is None or ctx.monitor.service(SETTINGS_SERVICE) is None:
            return default
        try:
            values = await settings.add([Setting(self.setting_path, "")], timeout=5.0)
        except (BusError, ConfigError, DBusCallError) as err:
            ctx.log.warning("cannot read the stored custom name: %s", err)
            return default
        settings.on_change(self._setting_changed)
        stored = values.get(self.setting_path)
        return stored if isinstance(stored, str) and stored else default

    def _setting_changed(self, path: str, value: Any) -> None:
        svc = self._service
        if path == self.setting_path and svc is not None and svc.registered:
            default = self.config.custom_name or ""
            svc["/CustomName"] = value if isinstance(value, str) and value else default

    def _name_written(self, _path: str, value: Any) -> bool:
        if self._tg is not None and self._ctx is not None and self._ctx.settings is not None:
            self._tg.start_soon(self._persist_name, self._ctx, value)
        return True

    async def _persist_name(self, ctx: FeatureContext, value: str) -> None:
        if ctx.settings is None or ctx.monitor is None:
            return
        if ctx.monitor.service(SETTINGS_SERVICE) is None:
            return
        try:
            await ctx.settings.set(self.setting_path, value)
        except (BusError, DBusCallError) as err:
            ctx.message("warning", f"cannot store the custom name: {err}")

    # ----------------------------------------------------------------- lifecycle

    async def run(self, ctx: FeatureContext, *, task_status: TaskStatus[None]) -> None:
        """Publish the service, then poll until cancelled; ConfigError for a wrong device."""
        self._ctx = ctx
        file = CounterFile(self.counter_path(ctx))
        loaded = await anyio.to_thread.run_sync(file.load)
        if loaded.problem:
            ctx.message("warning", loaded.problem)
        self.counters = loaded.counters or EnergyCounters()
        self._state, self._last_good, self._saved_at = _State.STARTING, None, None
        svc = self.make_service(ctx.bus_address, await self._stored_name(ctx))
        connector = aiohttp.TCPConnector(limit_per_host=1)
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            svc,
            anyio.create_task_group() as tg,
        ):
            self._service, self._tg = svc, tg
            try:
                ctx.report("connecting", (self.config.host,))
                task_status.started()
                await self._poll_forever(ctx, session, svc, file)
            finally:
                self._service = self._tg = None
                tg.cancel_scope.cancel()
                with anyio.CancelScope(shield=True), anyio.move_on_after(5.0):
                    if self.counters.values or self.counters.dirty:
                        await self._save(ctx, file, reserve_kwh=0.0)  # exact: no floor to climb

    def connection(self) -> Connection:
        """Where the configured device is and how to log in (options of its driver)."""
        cfg = self.config
        # the one driver option the meter tables have: the shelly driver's (checked by the config)
        options = {} if cfg.generation == "auto" else {"generation": cfg.generation}
        password = None if cfg.password is None else cfg.password.get_secret_value()
        return Connection(cfg.host, cfg.timeout_s, cfg.username, password, options)

    async def _open(
        self, ctx: FeatureContext, session: aiohttp.ClientSession, svc: Service
    ) -> Device:
        device = await open_device(self.config.driver, session, self.connection(), clock=ctx.clock)
        self.counters.set_source(self.check_device(device))
        ident = device.identity
        svc.update(
            {
                "/ProductName": ident.product_name,
                "/FirmwareVersion": ident.firmware,
                "/FirmwareBuild": ident.firmware_build or None,
                "/Serial": ident.serial,
            }
        )
        return device

    async def _poll_forever(
        self, ctx: FeatureContext, session: aiohttp.ClientSession, svc: Service, file: CounterFile
    ) -> None:
        clock = ctx.clock
        interval = self.config.poll_interval_s
        device: Device | None = None
        next_t = clock.monotonic()
        while True:
            try:
                if device is None:
                    device = await self._open(ctx, session, svc)
                reading = await self.read(device)
            except DeviceError as err:
                if self._failed(ctx, svc, err):
                    device = None  # rediscover: the device may come back reconfigured
            else:
                self._succeeded(ctx, svc, reading)
            now = clock.monotonic()
            due = self._saved_at is None or now - self._saved_at >= self.save_interval_s
            if (due and self.counters.dirty) or self.counters.over_ceiling():
                await self._save(ctx, file)
                if self._state is _State.CONNECTED:
                    svc.update(self.energy_values())  # what the save allows to go out now
            self.polls += 1
            next_t = max(next_t + interval, now)
            await clock.sleep(next_t - now)

    def _succeeded(self, ctx: FeatureContext, svc: Service, reading: Reading) -> None:
        values = self.values(reading)
        self._index = (self._index + 1) % 256
        values["/UpdateIndex"] = self._index
        values["/Connected"] = 1
        svc.update(values)
        self._last_good = reading.taken_at
        if self._state is not _State.CONNECTED:
            if self._state is not _State.STARTING:
                ctx.message("info", f"{self.config.host} answers again")
            self._state = _State.CONNECTED
            ctx.report(_State.CONNECTED.value, (str(svc["/ProductName"] or ""),))

    def _failed(self, ctx: FeatureContext, svc: Service, err: DeviceError) -> bool:
        """Hold or invalidate after a failed poll; True once the device counts as lost."""
        now = ctx.clock.monotonic()
        hold_s = self.config.hold_s
        if self._last_good is not None and is_fresh(self._last_good, now, hold_s):
            if self._state is _State.CONNECTED:
                self._state = _State.HOLDING
                ctx.log.warning("poll failed, holding the last values up to %g s: %s", hold_s, err)
                ctx.report(_State.HOLDING.value, (str(err),))
            return False
        if self._state is not _State.LOST:
            was = self._state
            self._state, self._last_good = _State.LOST, None
            svc.update({**self.lost_values(), "/Connected": 0})
            self.on_lost()
            what = "no answer" if was is _State.STARTING else f"no valid answer for {hold_s:g} s"
            ctx.message(
                "warning",
                f"{self.config.host}: {what} ({err}); /Connected = 0, values invalid, retrying",
            )
            ctx.report(_State.LOST.value, (str(err),))
        return True

    async def _save(
        self, ctx: FeatureContext, file: CounterFile, *, reserve_kwh: float = RESERVE_KWH
    ) -> None:
        """Write the counters with ceilings ``reserve_kwh`` ahead; report a failing disk once.

        If the file cannot be written the counters go on in memory (stopping them would be
        worse), with a warning that they may then go back after a restart.
        """
        self._saved_at = ctx.clock.monotonic()
        snapshot = self.counters.snapshot(reserve_kwh)
        try:
            await anyio.to_thread.run_sync(file.save, snapshot)
        except OSError as err:
            if not self._save_failing:
                ctx.message(
                    "warning",
                    f"cannot save the energy counters to {file.path}: {err}; counting goes on "
                    "in memory, but the counters may go back after a restart",
                )
            self._save_failing = True
        else:
            if self._save_failing:
                ctx.message("info", f"energy counters saved to {file.path} again")
            self._save_failing = False
            self.counters.dirty = False
        self.counters.saved(snapshot)
