"""A whole simulated GX on a bus: physics stepped on a clock, Victron services, localsettings.

The site runs a scenario on the given clock (real, accelerated or stepped). Every simulated
second the services are refreshed. ESS settings live in localsettings
(``/Settings/CGwacs/*``, ``/Settings/SystemSetup/MaxChargeCurrent``) and every write reaches the
physics; a value the physics refuses is put back. With ``external_meter`` the GX publishes no
grid meter of its own: like systemcalc and hub4control, it follows the ``com.victronenergy.grid``
service with the lowest DeviceInstance on the bus (e.g. venus-ems's Shelly bridge reading an
emulated Shelly that measures this site). With ``bus_settings`` the GX publishes no
``com.victronenergy.settings`` of its own: it keeps its settings in the one already on the bus
(Victron's localsettings, or another process's), through AddSettings and change signals, as
Victron's services do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, Protocol

import anyio
from anyio.abc import TaskGroup, TaskStatus

from ...clock import Clock
from ...errors import BusError, ConfigError
from ...venus import SETTINGS_SERVICE, Monitor, Setting, SettingsClient, Value, open_monitor
from ...venus.names import DCSYSTEM, GRID
from ..physics import SETTING_PATHS, Site, SiteState
from ..scenarios import Scenario, ScenarioDriver
from .services import SimServices
from .settings import LocalSettings
from .system import SystemService

__all__ = ["SimulatedGx"]

_LOG = logging.getLogger(__name__)

# localsettings type and bounds for each ESS setting (venus-dbus.md §6.12)
_SETTING_TYPES: dict[str, tuple[str, float, float]] = {
    "/Settings/CGwacs/Hub4Mode": ("i", 1, 3),
    "/Settings/CGwacs/AcPowerSetPoint": ("f", -1e6, 1e6),
    "/Settings/CGwacs/MaxFeedInPower": ("f", -1, 1e6),
    "/Settings/CGwacs/MaxDischargePower": ("f", -1, 1e6),
    "/Settings/CGwacs/MaxChargePower": ("f", -1, 1e6),
    "/Settings/CGwacs/OvervoltageFeedIn": ("i", 0, 1),
    "/Settings/CGwacs/PreventFeedback": ("i", 0, 1),
    "/Settings/CGwacs/BatteryLife/MinimumSocLimit": ("f", 0, 100),
    "/Settings/CGwacs/BatteryLife/State": ("i", 0, 12),
    "/Settings/CGwacs/BatteryLife/SocLimit": ("f", 0, 100),
    "/Settings/CGwacs/RunWithoutGridMeter": ("i", 0, 2),
    "/Settings/SystemSetup/MaxChargeCurrent": ("f", -1, 1e4),
}
# Settings a GX has that the physics does not model; kept so guards and tools can read them.
_STATIC_SETTINGS: tuple[tuple[str, Any, str, float, float], ...] = (
    ("/Settings/Services/Bol", 1, "i", 0, 1),
    ("/Settings/DynamicEss/Mode", 0, "i", 0, 4),
    ("/Settings/SystemSetup/AcInput1", 1, "i", 0, 3),
    ("/Settings/SystemSetup/BatteryService", "default", "s", 0, 0),
)


class SimulatedGx:
    """Run with ``await tg.start(gx.run)``; the site is ``gx.site``, time comes from ``clock``."""

    def __init__(
        self,
        scenario: Scenario | str,
        *,
        address: str,
        clock: Clock,
        dt: float = 1.0,
        start_s: float = 0.0,
        external_meter: bool = False,
        settings_file: Path | None = None,
        settings: Mapping[str, Any] | None = None,
        bus_settings: bool = False,
    ) -> None:
        """``start_s``: scenario second the run starts at; ``settings``: ESS overrides at start.

        ``bus_settings``: use the settings service already on the bus instead of publishing
        one (``settings_file`` is then that service's business: ValueError if given).
        """
        if not 0 < dt <= 1:
            raise ValueError("dt must be in (0, 1] s")
        if bus_settings and settings_file is not None:
            raise ValueError("settings_file belongs to our own settings service, not bus_settings")
        self.driver = ScenarioDriver(scenario)
        self.site: Site = self.driver.site
        self.clock = clock
        self.dt = dt
        self.address = address
        self.external_meter = external_meter
        for path, value in (settings or {}).items():
            self.site.set_ess_setting(path, value)
        self._advance_to(start_s)
        self.local_settings = (
            None if bus_settings else LocalSettings(address=address, file=settings_file)
        )
        self.services = SimServices(self.site, address=address, internal_meter=not external_meter)
        self.system = SystemService(
            self.site.phases,
            address=address,
            vebus=self.services.vebus.name,
            battery=self.services.battery.name,
        )
        self._store: _SettingsStore | None = None
        self._external_w: list[float | None] | None = None
        self._external_meta: tuple[int | None, int | None] = (None, None)
        self._dc_system: tuple[float, float] | None = None
        self.state: SiteState = self.site.state()

    def _advance_to(self, t: float) -> None:
        while self.site.time + self.dt <= t + 1e-9:
            self.driver.step(self.dt)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Publish everything, report started, then step and publish until cancelled."""
        watch: dict[str, list[str] | None] = {DCSYSTEM: ["/Dc/0/Power", "/Dc/0/Current"]}
        if self.local_settings is None:
            watch[SETTINGS_SERVICE] = []
        if self.external_meter:
            watch[GRID] = None
        async with AsyncExitStack() as stack:
            mon = await stack.enter_async_context(open_monitor(self.address, watch=watch))
            tg = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(tg.cancel_scope.cancel)
            self._store = await self._open_settings(stack, mon, tg)
            await self._register_settings(self._store)
            services = [*self.services.services(), self.system.service]
            try:
                for svc in services:
                    await svc.register()
                if self.external_meter:
                    mon.on_change(lambda _changes: self._follow_meter(mon))
                    self._follow_meter(mon)
                mon.on_change(lambda _changes: self._follow_dc_system(mon))
                mon.on_service(lambda _name, _state: self._follow_dc_system(mon))
                self._follow_dc_system(mon)
                await self._loop(task_status)
            finally:
                with anyio.CancelScope(shield=True):
                    for svc in reversed(services):
                        await svc.close()

    async def _open_settings(
        self, stack: AsyncExitStack, mon: Monitor, tg: TaskGroup
    ) -> _SettingsStore:
        """Our own localsettings on the bus, or a client of the one already there."""
        own = self.local_settings
        if own is None:
            if mon.service(SETTINGS_SERVICE) is None:
                raise BusError(
                    f"no {SETTINGS_SERVICE} on the bus to keep the simulated GX's settings in"
                )
            return _BusSettings(SettingsClient(mon), tg)
        try:
            await stack.enter_async_context(own)
        except BusError as err:
            raise BusError(
                f"{err}: another settings service runs on this bus; use it with "
                "bus_settings=True (venus-ems sim --bus-settings)"
            ) from err
        return _OwnSettings(own)

    async def _loop(self, task_status: TaskStatus[None]) -> None:
        self.publish()
        task_status.started()
        t0 = self.clock.monotonic() - self.site.time
        last_published = self.site.time
        while True:
            await self.clock.sleep(self.dt)
            target = self.clock.monotonic() - t0
            self._advance_to(target)
            if self.site.time - last_published >= 1.0 - 1e-9:
                last_published = self.site.time
                self.publish()

    def publish(self) -> None:
        """Refresh every service from the current site state."""
        st = self.state = self.site.state()
        self.services.publish(st)
        if self.external_meter:
            grid: list[float | None] | None = self._external_w
            meta = self._external_meta
        else:
            connected = st.grid.meter_connected and st.grid.meter_w is not None
            grid = list(st.grid.meter_w) if connected and st.grid.meter_w else None
            meta = (0xB002, 345)
        self.system.publish(st, grid, meta, self._dc_system)

    # ----------------------------------------------------------------- DC systems

    def _follow_dc_system(self, mon: Monitor) -> None:
        """systemcalc: ``/Dc/System/*`` is the sum of the dcsystem services; DVCC counts it."""
        services = mon.services(DCSYSTEM)
        powers = [mon.get_float(s.name, "/Dc/0/Power") for s in services]
        currents = [mon.get_float(s.name, "/Dc/0/Current") for s in services]
        known = [p for p in powers if p is not None]
        if not services or not known:
            self._dc_system = None
        else:
            self._dc_system = (sum(known), sum(c for c in currents if c is not None))
        # a GX without dcsystem services gives the MPPTs no more than CCL (dcload does not count)
        self.site.set_dc_system(0.0 if self._dc_system is None else self._dc_system[0])

    # ----------------------------------------------------------------- faults

    async def restart_service(self, short: str, *, down_s: float = 0.0) -> None:
        """Restart a device service as a new process (``hub4``, ``vebus``...); ValueError if none.

        It leaves the bus and comes back after ``down_s`` s (real time) under a new unique name.
        hub4control keeps its overrides in the process, so a restarted hub4 starts from the
        defaults; the Multi keeps its mode-3 setpoints (they time out on their own).
        """
        svc = self.services.by_short_name(short)
        await svc.close()
        if short == "hub4":
            self.site.restart_hub4()
        self.publish()
        if down_s > 0:
            await anyio.sleep(down_s)
        await svc.register()

    # ----------------------------------------------------------------- the external meter

    def _follow_meter(self, mon: Monitor) -> None:
        meters = mon.services(GRID)
        readings: list[float | None] | None = None
        meta: tuple[int | None, int | None] = (None, None)
        if meters:
            chosen = meters[0]  # lowest DeviceInstance, as systemcalc picks it
            readings = [
                mon.get_float(chosen.name, f"/Ac/L{p}/Power")
                for p in range(1, self.site.phases + 1)
            ]
            meta = (mon.get_int(chosen.name, "/ProductId"), mon.get_int(chosen.name, "/DeviceType"))
            if all(r is None for r in readings):
                readings = None
        if readings != self._external_w:
            self._external_w = readings
            self._external_meta = meta
            complete = readings is not None and all(r is not None for r in readings)
            self.site.feed_external_meter(
                [float(r or 0.0) for r in readings] if complete and readings else None
            )

    # ----------------------------------------------------------------- settings

    async def _register_settings(self, store: _SettingsStore) -> None:
        """Create the ESS settings (a value already stored wins: the physics follows it)."""
        current = self.site.ess_settings()
        wanted = []
        for path, field_name in SETTING_PATHS.items():
            type_, lo, hi = _SETTING_TYPES[path]
            value = getattr(current, field_name)
            if type_ == "i":
                wanted.append(Setting(path, int(value), int(lo), int(hi)))
            else:
                wanted.append(Setting(path, float(value), float(lo), float(hi)))
        for path, default, type_, lo, hi in _STATIC_SETTINGS:
            wanted.append(
                Setting(path, default) if type_ == "s" else Setting(path, default, lo, hi)
            )
        values = await store.add(wanted)
        for path, field_name in SETTING_PATHS.items():
            stored = values.get(path)
            if stored is not None and stored != getattr(current, field_name):
                self._apply_setting(path, stored)
        store.on_change(self._setting_changed)

    def _setting_changed(self, path: str, value: Any) -> None:
        if path in SETTING_PATHS:
            self._apply_setting(path, value)

    def _apply_setting(self, path: str, value: Any) -> None:
        try:
            self.site.set_ess_setting(path, value)
        except ValueError as err:
            old = getattr(self.site.ess_settings(), SETTING_PATHS[path])
            _LOG.warning("simulated GX: %s = %r refused (%s); back to %r", path, value, err, old)
            if self._store is not None:
                self._store.put_back(path, old)


class _SettingsStore(Protocol):
    """Where the simulated GX keeps its settings."""

    async def add(self, settings: list[Setting]) -> dict[str, Value]:
        """Create settings (stored values win); path -> current value; ConfigError if refused."""

    def on_change(self, callback: Callable[[str, Value], None]) -> None:
        """Call ``callback(path, value)`` after a setting changed."""

    def put_back(self, path: str, value: Value) -> None:
        """Restore a value the physics refused."""


class _OwnSettings:
    """Our own settings service, used directly (changes reach the physics at once)."""

    def __init__(self, settings: LocalSettings) -> None:
        self.settings = settings

    async def add(self, settings: list[Setting]) -> dict[str, Value]:
        ls = self.settings
        for s in settings:
            if ls.get(s.path) is None:
                type_ = (
                    "s"
                    if isinstance(s.default, str)
                    else "f"
                    if isinstance(s.default, float)
                    else "i"
                )
                code = ls.add(s.path, s.default, type_, s.min or 0, s.max or 0)
                if code:
                    raise ConfigError(f"simulated localsettings refused {s.path} (error {code})")
        return {s.path: ls.get(s.path) for s in settings}

    def on_change(self, callback: Callable[[str, Value], None]) -> None:
        self.settings.on_change(callback)

    def put_back(self, path: str, value: Value) -> None:
        self.settings.set(path, value)


class _BusSettings:
    """The settings service already on the bus, through AddSettings, signals and SetValue."""

    def __init__(self, client: SettingsClient, tg: TaskGroup) -> None:
        self.client = client
        self.tg = tg

    async def add(self, settings: list[Setting]) -> dict[str, Value]:
        return await self.client.add(settings)

    def on_change(self, callback: Callable[[str, Value], None]) -> None:
        self.client.on_change(callback)

    def put_back(self, path: str, value: Value) -> None:
        self.tg.start_soon(self._write, path, value)

    async def _write(self, path: str, value: Value) -> None:
        try:
            code = await self.client.set(path, value)
        except BusError as err:
            _LOG.warning("simulated GX: cannot put %s back: %s", path, err)
            return
        if code:
            _LOG.warning("simulated GX: settings refused %s = %r (%d)", path, value, code)
