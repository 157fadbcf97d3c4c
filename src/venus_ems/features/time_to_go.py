"""M5: battery time to go, computed when the active battery does not report ``/TimeToGo``.

Discharging: time until ``system /Control/ActiveSocLimit``; charging: time until 100 % SoC;
from the battery's capacity (``/InstalledCapacity``, else ``/Capacity``, Ah; or the configured
``capacity_wh`` with ``/Dc/0/Voltage``) and its current (``/Dc/0/Current``, + = charging)
smoothed with the time constant ``smoothing_s``. Idle, missing inputs or more than ten days
give None (invalid), never 0.

Where it goes: our own service ``com.victronenergy.venusems.timetogo`` (``/TimeToGo`` s,
``/State``, ``/Battery``, ``/Current``, ``/TargetSoc``, ``/WrittenToBattery``), never a fake
battery service that the GX could pick as its battery monitor. With ``publish_to_battery`` the
value is also written to the battery's own ``/TimeToGo`` when that path exists and SetValue
answers 0; systemcalc then shows it as ``/Dc/Battery/TimeToGo`` (VRM, GUI). While we write
there, a value on that path that is not ours means the BMS took over, and we stop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import anyio
from anyio.abc import TaskStatus

from ..errors import BusError
from ..runtime.config import TimeToGoConfig
from ..venus import DeviceInstance, Identity, PathSpec, Service
from ..venus.active import active_service
from ..venus.bus import DBusCallError
from ..venus.names import BATTERY, SYSTEM, VENUSEMS, service_name

if TYPE_CHECKING:
    from ..runtime.feature import FeatureContext
    from ..venus.monitor import Monitor

__all__ = [
    "MAX_S",
    "TIMETOGO_SERVICE",
    "Estimate",
    "Inputs",
    "Smoother",
    "TimeToGo",
    "build",
    "estimate",
]

TIMETOGO_SERVICE = service_name(VENUSEMS, "timetogo")
MAX_S = 864_000.0
"""Longest time to go published (10 days, as a BMV); beyond it the value is invalid."""
IDLE_A = 0.1
"""Below this battery current (A) the battery counts as idle: no time to go."""

State = Literal["charging", "discharging", "idle", "missing", "bms", "no battery"]


@dataclass(frozen=True, slots=True)
class Inputs:
    """What the estimate needs; None = unknown. Current + = charging (A), SoC and limit in %."""

    current_a: float | None
    soc: float | None
    soc_limit: float | None = None
    capacity_ah: float | None = None
    capacity_wh: float | None = None
    voltage_v: float | None = None


@dataclass(frozen=True, slots=True)
class Estimate:
    """Seconds to go (None = invalid), the battery state and why, for the user."""

    seconds: float | None
    state: State
    reason: str
    target_soc: float | None = None


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60.0)
    return f"{minutes // 60} h {minutes % 60:02d} min"


def estimate(inp: Inputs) -> Estimate:
    """Time to the SoC limit (discharging) or to 100 % (charging); None when idle or unknown."""
    current, soc = inp.current_a, inp.soc
    if current is None:
        return Estimate(None, "missing", "no battery current")
    if soc is None:
        return Estimate(None, "missing", "no battery SoC")
    if abs(current) < IDLE_A:
        return Estimate(None, "idle", f"idle ({current:+.2f} A)")
    charging = current > 0
    state: State = "charging" if charging else "discharging"
    target = 100.0 if charging else inp.soc_limit
    if target is None:
        return Estimate(None, "missing", "discharging but no /Control/ActiveSocLimit")
    share = max(0.0, (target - soc) if charging else (soc - target)) / 100.0
    if inp.capacity_wh is not None:
        if inp.voltage_v is None or inp.voltage_v <= 0:
            return Estimate(None, "missing", "capacity_wh is set but the voltage is unknown")
        hours = share * inp.capacity_wh / (abs(current) * inp.voltage_v)
    elif inp.capacity_ah is not None and inp.capacity_ah > 0:
        hours = share * inp.capacity_ah / abs(current)
    else:
        return Estimate(None, "missing", "no battery capacity (set capacity_wh)")
    seconds = float(round(hours * 3600.0))
    if seconds > MAX_S:
        return Estimate(None, state, f"{state}: more than 10 days to {target:g} %", target)
    return Estimate(seconds, state, f"{state}: {_duration(seconds)} to {target:g} %", target)


class Smoother:
    """Exponential smoothing with time constant ``tau_s`` (0 = none); None resets it."""

    def __init__(self, tau_s: float) -> None:
        """``tau_s`` >= 0 seconds."""
        self.tau_s = tau_s
        self.value: float | None = None
        self._at = 0.0

    def update(self, value: float | None, now: float) -> float | None:
        """Feed a sample taken at ``now`` (s); returns the smoothed value."""
        if value is None:
            self.value = None
        elif self.value is None or self.tau_s <= 0:
            self.value = value
        else:
            alpha = 1.0 - math.exp(-max(0.0, now - self._at) / self.tau_s)
            self.value += alpha * (value - self.value)
        self._at = now
        return self.value

    def reset(self) -> None:
        """Forget the history (another battery, or the BMS took over)."""
        self.value = None


def _read(mon: Monitor, battery: str, config: TimeToGoConfig, current: float | None) -> Inputs:
    capacity = mon.get_float(battery, "/InstalledCapacity")
    if capacity is None:
        capacity = mon.get_float(battery, "/Capacity")
    return Inputs(
        current_a=current,
        soc=mon.get_float(battery, "/Soc"),
        soc_limit=mon.get_float(SYSTEM, "/Control/ActiveSocLimit"),
        capacity_ah=capacity,
        capacity_wh=config.capacity_wh,
        voltage_v=mon.get_float(battery, "/Dc/0/Voltage"),
    )


class TimeToGo:
    """The time-to-go feature (M5)."""

    name = "time_to_go"

    def __init__(self, config: TimeToGoConfig) -> None:
        """Prepare; nothing is published until :meth:`run`."""
        self.config = config
        self.smoother = Smoother(config.smoothing_s)
        self._battery: str | None = None
        self._written: float | None = None
        self._owned = False  # we wrote the battery's /TimeToGo last
        self._in_flight: float | None = None
        self._unwritable: set[str] = set()

    def make_service(self, address: str | None) -> Service:
        """Our service with every path declared (not registered)."""
        svc = Service(
            TIMETOGO_SERVICE,
            identity=Identity("venus-ems time to go", product_id=None, connection="computed"),
            device_instance=DeviceInstance("venusems", 1, "venusems_timetogo"),
            address=address,
        )
        svc.add_path("/TimeToGo", None, PathSpec("d", "%.0F s", unit="s"))
        svc.add_path("/State", "starting", PathSpec("s"))
        svc.add_path("/Battery", "", PathSpec("s"))
        svc.add_path("/Current", None, PathSpec("d", "%.2F A", unit="A"))
        svc.add_path("/TargetSoc", None, PathSpec("d", "%.0F %%", unit="%"))
        svc.add_path("/WrittenToBattery", 0, PathSpec("i"))
        return svc

    def _bms_reports(self, mon: Monitor, battery: str) -> bool:
        """True if the battery has a valid /TimeToGo that is not the one we wrote."""
        value = mon.get_float(battery, "/TimeToGo")
        if value is None:
            return False
        ours = self._owned and self._written is not None and abs(value - self._written) < 1.0
        return not ours

    async def tick(self, ctx: FeatureContext, svc: Service) -> Estimate:
        """One update: read, estimate, publish (and write the battery path where allowed)."""
        mon = ctx.monitor
        battery = active_service(mon, BATTERY)
        if battery != self._battery:
            self.smoother.reset()
            self._battery, self._owned, self._written = battery, False, None
        if battery is None:
            est = Estimate(None, "no battery", "no battery service")
        elif self._bms_reports(mon, battery):
            self.smoother.reset()
            self._owned = False
            est = Estimate(None, "bms", f"{battery} reports /TimeToGo itself")
        else:
            raw = mon.get_float(battery, "/Dc/0/Current")
            current = self.smoother.update(raw, ctx.clock.monotonic())
            est = estimate(_read(mon, battery, self.config, current))
        svc.update(
            {
                "/TimeToGo": est.seconds,
                "/State": est.state,
                "/Battery": battery or "",
                "/Current": self.smoother.value,
                "/TargetSoc": est.target_soc,
            }
        )
        if battery is not None and est.state != "bms":
            await self._write_battery(ctx, battery, est.seconds)
        svc["/WrittenToBattery"] = int(self._owned)
        ctx.report(est.reason, [battery] if battery else [])
        return est

    async def _write_battery(self, ctx: FeatureContext, battery: str, value: float | None) -> None:
        state = ctx.monitor.service(battery)
        if (
            not self.config.publish_to_battery
            or battery in self._unwritable
            or state is None
            or "/TimeToGo" not in state.values
            or (self._owned and value == self._written)
        ):
            return
        self._in_flight = value  # cancelled mid-call, the value may have landed: clear it
        try:
            code = await ctx.monitor.set_value(battery, "/TimeToGo", value, timeout=2.0)
        except (DBusCallError, BusError) as err:
            code, why = -1, str(err)
        else:
            why = f"SetValue answered {code}"
        self._in_flight = None
        if code == 0:
            self._owned, self._written = True, value
            return
        self._owned = False
        self._unwritable.add(battery)
        ctx.message(
            "info",
            f"{battery} /TimeToGo is not writable ({why}): published on {TIMETOGO_SERVICE} only",
        )

    async def _release(self, ctx: FeatureContext) -> None:
        """Leave no value of ours on the battery: a stale time to go is worse than none."""
        battery = self._battery
        ours = self._written if self._owned else None
        if battery is not None and (ours is not None or self._in_flight is not None):
            try:
                await ctx.monitor.set_value(battery, "/TimeToGo", None, timeout=1.0)
            except (DBusCallError, BusError) as err:
                ctx.log.warning("could not clear %s /TimeToGo: %s", battery, err)
        self._owned = False
        self._written = self._in_flight = None

    async def run(self, ctx: FeatureContext, *, task_status: TaskStatus[None]) -> None:
        """Update every ``update_interval_s`` until cancelled; clears what it wrote on exit."""
        self._battery, self._owned, self._written = None, False, None
        self._unwritable.clear()
        self.smoother.reset()
        async with self.make_service(ctx.bus_address) as svc:
            try:
                await self.tick(ctx, svc)
                task_status.started()
                while True:
                    await ctx.clock.sleep(self.config.update_interval_s)
                    await self.tick(ctx, svc)
            finally:
                with anyio.CancelScope(shield=True), anyio.move_on_after(2.0):
                    await self._release(ctx)


def build(config: TimeToGoConfig) -> TimeToGo:
    """Registry factory for ``[time_to_go]``."""
    return TimeToGo(config)
