"""Output writers for actuators: D-Bus paths of Victron services, and device relays.

The first actuators of the daemon are built here: the ESS grid setpoint (hub4
``/Overrides/Setpoint``, ESS mode 1/2), the per-phase mode-3 setpoints on the active vebus
service (refreshed at least every 10 s) and a relay of any ``Switch`` device (switched
consumers: safe state off).

D-Bus writers also read their output back (:class:`~.actuator.ReadableOutput`): the owner of the
target service (its unique bus name, which changes when the process restarts) and the value in
force, from the monitor's cache or with a GetValue round trip. Mode-3 setpoints are not echoed by
mk2-dbus, so only their owner is known; the Multi drops them 60 s after the last write. Each
writer describes itself as a ``spec`` so that the output ledger can rebuild it at the next start
(:func:`writer_from_spec`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..clock import Clock
from ..devices import Switch
from ..errors import BusError, EmsError
from ..venus import BUSITEM, SETTINGS_SERVICE, call, unwrap
from ..venus.active import active_service
from ..venus.monitor import Changes, Monitor, service_class
from ..venus.names import HUB4, VEBUS
from .actuator import UNKNOWN, Actuator, Readback

__all__ = [
    "HUB4",
    "MODE3_TIMEOUT_S",
    "DbusPathWriter",
    "PhaseSetpointWriter",
    "PvLimitWriter",
    "SwitchWriter",
    "active_vebus",
    "grid_setpoint_actuator",
    "phase_setpoints_actuator",
    "pv_limit_actuator",
    "switch_actuator",
    "writer_from_spec",
]

PV_LIMIT_TIMEOUT_S = 60.0
"""dbus-fronius puts ``/Ac/PowerLimit`` back to MaxPower when not rewritten for this long."""
MODE3_TIMEOUT_S = 60.0
"""The Multi drops a mode-3 setpoint not renewed for this long (venus-dbus.md §7.4)."""
HUB4_REFRESH_S = 5.0
"""hub4 overrides are rewritten this often while claimed: their timeout is undocumented and
Victron's own writers (Dynamic ESS, schedules) renew them every 5 s (venus-dbus.md)."""


def active_vebus(monitor: Monitor) -> str | None:
    """The VE.Bus service systemcalc reports (``/VebusService``), else the first one seen."""
    return active_service(monitor, VEBUS)


class DbusPathWriter:
    """SetValue on one path; the service is a name, a class (lowest instance) or a resolver."""

    device_timeout_s: float | None = None

    def __init__(
        self, monitor: Monitor, service: str | Callable[[], str | None], path: str
    ) -> None:
        """``service`` may be resolved at each write, so a restarted service is followed."""
        self._monitor = monitor
        self._service = service
        self._path = path
        self.persistent = service == SETTINGS_SERVICE
        self.refresh_s: float | None = HUB4_REFRESH_S if service == HUB4 else None

    @property
    def target(self) -> str:
        """``service/path`` as configured."""
        svc = self._service if isinstance(self._service, str) else "<active>"
        return f"{svc}{self._path}"

    def spec(self) -> dict[str, Any] | None:
        """How to rebuild this writer (None when the service is chosen by a function)."""
        if not isinstance(self._service, str):
            return None
        return {"kind": "dbus", "service": self._service, "path": self._path}

    def _name(self) -> str | None:
        if callable(self._service):
            return self._service()
        if self._monitor.service(self._service) is not None:
            return self._service
        found = self._monitor.services(self._service)
        return found[0].name if found else None

    def _resolve(self) -> str:
        name = self._name()
        if name is None:
            raise BusError(f"{self.target}: service not present")
        return name

    async def write(self, value: Any) -> None:
        """SetValue; BusError when the service is absent or answers a non-zero code."""
        name = self._resolve()
        code = await self._monitor.set_value(name, self._path, value)
        if code != 0:
            raise BusError(f"{name}{self._path} refused {value!r} (code {code})")

    def read_cached(self) -> Readback:
        """Owner and value as the monitor last saw them (no bus traffic)."""
        name = self._name()
        state = None if name is None else self._monitor.service(name)
        if state is None:
            return Readback(None)
        return Readback(state.owner, state.values.get(self._path, UNKNOWN))

    async def read(self) -> Readback:
        """Owner from the monitor, value with a GetValue round trip (the cached one if it fails)."""
        cached = self.read_cached()
        name = self._name()
        if cached.owner is None or name is None:
            return cached
        try:
            (value,) = await call(
                self._monitor.bus, name, self._path, BUSITEM, "GetValue", timeout=2.0
            )
        except (EmsError, ValueError):
            return cached
        return Readback(cached.owner, unwrap(value))

    def watch(self, notify: Callable[[], None]) -> None:
        """Call ``notify()`` when the service comes, goes or changes owner, or the path changes."""
        path = self._path

        def mine(name: str) -> bool:
            if callable(self._service):
                return name == self._service()
            return self._service in (name, service_class(name))

        def on_service(name: str, _state: object) -> None:
            if mine(name):
                notify()

        def on_change(changes: Changes) -> None:  # one dict lookup per batch
            name = self._name()
            if name is not None and (name, path) in changes:
                notify()

        self._monitor.on_service(on_service)
        self._monitor.on_change(on_change)


class PhaseSetpointWriter:
    """Mode-3 setpoints ``/Hub4/L1..Ln/AcPowerSetpoint`` (W, + = import) on the active vebus."""

    device_timeout_s: float | None = MODE3_TIMEOUT_S
    persistent = False
    refresh_s: float | None = None

    def __init__(self, monitor: Monitor) -> None:
        """Writes go to :func:`active_vebus` at the time of each write."""
        self._monitor = monitor

    @property
    def target(self) -> str:
        """Description for logs."""
        return "vebus /Hub4/Lx/AcPowerSetpoint"

    def spec(self) -> dict[str, Any] | None:
        """How to rebuild this writer."""
        return {"kind": "mode3"}

    async def write(self, value: Sequence[float]) -> None:
        """Write every phase; BusError if there is no vebus service or a write is refused."""
        name = active_vebus(self._monitor)
        if name is None:
            raise BusError(f"no {VEBUS} service")
        for phase, watts in enumerate(value, start=1):
            path = f"/Hub4/L{phase}/AcPowerSetpoint"
            code = await self._monitor.set_value(name, path, float(watts))
            if code != 0:
                raise BusError(f"{name}{path} refused {watts!r} (code {code})")

    def read_cached(self) -> Readback:
        """The Multi's owner; the setpoints themselves are not echoed (value UNKNOWN)."""
        name = active_vebus(self._monitor)
        state = None if name is None else self._monitor.service(name)
        return Readback(None if state is None else state.owner)

    async def read(self) -> Readback:
        """Same as :meth:`read_cached`: GetValue would not return the latest write either."""
        return self.read_cached()

    def watch(self, notify: Callable[[], None]) -> None:
        """Call ``notify()`` when a vebus service comes, goes or changes owner."""

        def on_service(name: str, _state: object) -> None:
            if service_class(name) == VEBUS:
                notify()

        self._monitor.on_service(on_service)


class PvLimitWriter(DbusPathWriter):
    """``/Ac/PowerLimit`` (W) of one PV inverter service; it falls back by itself after 60 s."""

    device_timeout_s: float | None = PV_LIMIT_TIMEOUT_S

    def __init__(self, monitor: Monitor, service: str) -> None:
        """``service``: a ``com.victronenergy.pvinverter.*`` name."""
        super().__init__(monitor, service, "/Ac/PowerLimit")

    def spec(self) -> dict[str, Any] | None:
        """How to rebuild this writer."""
        return {"kind": "pvlimit", "service": self._service, "path": self._path}


def writer_from_spec(
    monitor: Monitor, spec: dict[str, Any]
) -> DbusPathWriter | PhaseSetpointWriter | None:
    """The writer a ledger entry describes, or None for an unknown kind."""
    kind = spec.get("kind")
    if kind == "mode3":
        return PhaseSetpointWriter(monitor)
    service, path = spec.get("service"), spec.get("path")
    if kind == "pvlimit" and isinstance(service, str):
        return PvLimitWriter(monitor, service)
    if kind == "dbus" and isinstance(service, str) and isinstance(path, str):
        return DbusPathWriter(monitor, service, path)
    return None


class SwitchWriter:
    """Relay ``channel`` of a ``Switch`` device; a write is done when the device confirms it."""

    def __init__(self, switch: Switch, channel: int = 0) -> None:
        """``switch`` must stay open (its session alive) as long as the actuator runs."""
        self.switch = switch
        self.channel = channel

    @property
    def target(self) -> str:
        """``<product> <serial> relay <n>`` for logs and status."""
        ident = self.switch.identity
        return f"{ident.product_name} {ident.serial} relay {self.channel}"

    async def write(self, value: bool) -> None:
        """Switch the relay; DeviceError if the device did not confirm, ConfigError if absent."""
        await self.switch.set_output(self.channel, value)

    async def read(self) -> bool:
        """Whether the relay is on now (for read-back); DeviceError on failure."""
        return await self.switch.read_output(self.channel)


def grid_setpoint_actuator(
    monitor: Monitor, clock: Clock, *, safe_w: float | None = None, **kw: Any
) -> Actuator[float | None]:
    """hub4 ``/Overrides/Setpoint`` (W, + = import); safe = ``safe_w`` or None (use the setting).

    Rewritten every 5 s while claimed (``HUB4_REFRESH_S``), not while released.
    """
    writer = DbusPathWriter(monitor, HUB4, "/Overrides/Setpoint")
    return Actuator("ess.grid_setpoint", writer, safe_value=safe_w, clock=clock, **kw)


def phase_setpoints_actuator(
    monitor: Monitor,
    clock: Clock,
    *,
    phases: int,
    safe_w: float = 0.0,
    refresh_s: float = 5.0,
    **kw: Any,
) -> Actuator[tuple[float, ...]]:
    """Mode-3 per-phase setpoints, rewritten every ``refresh_s`` (<= 10 s) so they never expire.

    The safe value is refreshed too while the daemon runs (it owns the output); after the
    process is gone the Multi falls back to passthrough 60 s after the last write.
    """
    if not 0 < refresh_s <= 10:
        raise ValueError("mode-3 setpoints must be refreshed at least every 10 s")
    return Actuator(
        "ess.phase_setpoints",
        PhaseSetpointWriter(monitor),
        safe_value=(safe_w,) * phases,
        clock=clock,
        refresh_s=refresh_s,
        refresh_released=True,
        **kw,
    )


def switch_actuator(
    name: str, switch: Switch, clock: Clock, *, channel: int = 0, **kw: Any
) -> Actuator[bool]:
    """Relay ``channel`` of ``switch`` as an on/off output whose safe state is off."""
    return Actuator(name, SwitchWriter(switch, channel), safe_value=False, clock=clock, **kw)


def pv_limit_actuator(
    monitor: Monitor,
    clock: Clock,
    service: str,
    *,
    max_w: float,
    refresh_s: float = 20.0,
    **kw: Any,
) -> Actuator[float]:
    """``/Ac/PowerLimit`` of ``service`` (W); safe = ``max_w`` (its MaxPower: limit released).

    Rewritten every ``refresh_s`` (< 60 s) while claimed so the inverter driver keeps it; a
    released limit is written once (the driver would fall back to MaxPower anyway).
    """
    if not 0 < refresh_s < PV_LIMIT_TIMEOUT_S:
        raise ValueError(f"PV limits must be renewed within {PV_LIMIT_TIMEOUT_S:g} s")
    name = f"ess.pv_limit.{service.rsplit('.', 1)[-1]}"
    writer = PvLimitWriter(monitor, service)
    return Actuator(name, writer, safe_value=float(max_w), clock=clock, refresh_s=refresh_s, **kw)
