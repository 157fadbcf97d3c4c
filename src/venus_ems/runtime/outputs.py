"""Output writers for actuators: D-Bus paths of Victron services, and device relays.

The first actuators of the daemon are built here: the ESS grid setpoint (hub4
``/Overrides/Setpoint``, ESS mode 1/2), the per-phase mode-3 setpoints on the active vebus
service (refreshed at least every 10 s) and a relay of any ``Switch`` device (switched
consumers: safe state off).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..clock import Clock
from ..devices import Switch
from ..errors import BusError
from ..venus.active import active_service
from ..venus.monitor import Monitor
from ..venus.names import HUB4, VEBUS
from .actuator import Actuator

__all__ = [
    "DbusPathWriter",
    "PhaseSetpointWriter",
    "SwitchWriter",
    "active_vebus",
    "grid_setpoint_actuator",
    "phase_setpoints_actuator",
    "switch_actuator",
]


def active_vebus(monitor: Monitor) -> str | None:
    """The VE.Bus service systemcalc reports (``/VebusService``), else the first one seen."""
    return active_service(monitor, VEBUS)


class DbusPathWriter:
    """SetValue on one path; the service is a name, a class (lowest instance) or a resolver."""

    def __init__(
        self, monitor: Monitor, service: str | Callable[[], str | None], path: str
    ) -> None:
        """``service`` may be resolved at each write, so a restarted service is followed."""
        self._monitor = monitor
        self._service = service
        self._path = path

    @property
    def target(self) -> str:
        """``service/path`` as configured."""
        svc = self._service if isinstance(self._service, str) else "<active>"
        return f"{svc}{self._path}"

    def _resolve(self) -> str:
        if callable(self._service):
            name = self._service()
        elif self._monitor.service(self._service) is not None:
            name = self._service
        else:
            found = self._monitor.services(self._service)
            name = found[0].name if found else None
        if name is None:
            raise BusError(f"{self.target}: service not present")
        return name

    async def write(self, value: Any) -> None:
        """SetValue; BusError when the service is absent or answers a non-zero code."""
        name = self._resolve()
        code = await self._monitor.set_value(name, self._path, value)
        if code != 0:
            raise BusError(f"{name}{self._path} refused {value!r} (code {code})")


class PhaseSetpointWriter:
    """Mode-3 setpoints ``/Hub4/L1..Ln/AcPowerSetpoint`` (W, + = import) on the active vebus."""

    def __init__(self, monitor: Monitor) -> None:
        """Writes go to :func:`active_vebus` at the time of each write."""
        self._monitor = monitor

    @property
    def target(self) -> str:
        """Description for logs."""
        return "vebus /Hub4/Lx/AcPowerSetpoint"

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
    """hub4 ``/Overrides/Setpoint`` (W, + = import); safe = ``safe_w`` or None (use the setting)."""
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
    """Mode-3 per-phase setpoints, rewritten every ``refresh_s`` (<= 10 s) so they never expire."""
    if not 0 < refresh_s <= 10:
        raise ValueError("mode-3 setpoints must be refreshed at least every 10 s")
    return Actuator(
        "ess.phase_setpoints",
        PhaseSetpointWriter(monitor),
        safe_value=(safe_w,) * phases,
        clock=clock,
        refresh_s=refresh_s,
        **kw,
    )


def switch_actuator(
    name: str, switch: Switch, clock: Clock, *, channel: int = 0, **kw: Any
) -> Actuator[bool]:
    """Relay ``channel`` of ``switch`` as an on/off output whose safe state is off."""
    return Actuator(name, SwitchWriter(switch, channel), safe_value=False, clock=clock, **kw)
