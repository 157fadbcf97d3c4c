"""C4: while the car charges, the house battery does not discharge into it.

Every ``interval_s`` the car's draw (``/Ac/Power`` of the evcharger service: ours from
``[ev_charger]`` or any other), the AC consumption (``system /Ac/Consumption/Lx/Power``, the
car included) and the PV (AC-coupled on grid, output and genset + DC PV times the Multi's
``inverter_efficiency``, what of it reaches the AC side) give the shift of
:mod:`venus_ems.control.no_bat_to_ev`. It is asked of ESS control, the one writer of the grid
target (``ctx.grid_requests``), valid for ``3 x interval_s`` and renewed every step; nothing
is written here, so nothing persisted is written in a loop. It is released at once when the car
stops, the grid is gone, the optional relay is off, or an input is unknown or older than
``stale_input_s`` (and it expires by itself if this feature stalls or crashes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from anyio.abc import TaskStatus

from ..control.no_bat_to_ev import CarShiftInputs, car_shift_w, total_w
from ..runtime.config import NoBatteryToEvConfig
from ..venus.names import EVCHARGER, SYSTEM
from .ess_inputs import InputTracker
from .grid_requester import run_requester

if TYPE_CHECKING:
    from ..runtime.feature import FeatureContext

__all__ = ["NoBatteryToEv", "build"]

_PHASES = (1, 2, 3)
_PV_GROUPS = ("PvOnGrid", "PvOnOutput", "PvOnGenset")


class NoBatteryToEv:
    """The ``[no_battery_to_ev]`` feature."""

    name = "no_battery_to_ev"

    def __init__(self, config: NoBatteryToEvConfig) -> None:
        """Nothing runs until :meth:`run`."""
        self.config = config
        self.shift_w: float | None = None

    def inputs(self, ctx: FeatureContext, tracker: InputTracker, now: float) -> CarShiftInputs:
        """Car, consumption, PV (None where unknown or stale) and whether the grid is there."""
        mon, stale = ctx.monitor, self.config.stale_input_s

        def fresh(service: str | None) -> bool:
            at = tracker.seen_at.get(service, tracker.started_at) if service else None
            return at is not None and now - at <= stale

        chargers = mon.services(EVCHARGER)
        car = None
        if chargers and fresh(chargers[0].name):
            car = mon.get_float(chargers[0].name, "/Ac/Power")
        if not fresh(SYSTEM):
            return CarShiftInputs(car, None, None)
        cons = total_w(mon.get_float(SYSTEM, f"/Ac/Consumption/L{p}/Power") for p in _PHASES)
        ac_pv = [mon.get_float(SYSTEM, f"/Ac/{g}/L{p}/Power") for g in _PV_GROUPS for p in _PHASES]
        dc_pv = mon.get_float(SYSTEM, "/Dc/Pv/Power")
        if dc_pv is not None:  # DC PV feeds the AC side through the Multi's inverter
            dc_pv *= self.config.inverter_efficiency
        pv = total_w([*ac_pv, dc_pv])
        grid = total_w(mon.get_float(SYSTEM, f"/Ac/Grid/L{p}/Power") for p in _PHASES)
        # no PV at all is 0 W of PV, not unknown (systemcalc shows no PV paths then)
        return CarShiftInputs(car, cons, 0.0 if pv is None else pv, grid_present=grid is not None)

    def step(self, ctx: FeatureContext, tracker: InputTracker) -> None:
        """Request the shift, or release it."""
        now = ctx.clock.monotonic()
        relay = self.config.relay
        gate = None
        if relay is not None:
            state = ctx.monitor.get_int(SYSTEM, f"/Relay/{relay}/State")
            gate = None if state == 1 else f"relay {relay} is off"
        inputs = self.inputs(ctx, tracker, now)
        shift = None if gate else car_shift_w(inputs, min_car_w=self.config.min_car_w)
        self.shift_w = shift
        if shift is None:
            ctx.grid_requests.release(self.name)
            why = gate or _why_not(inputs)
            ctx.report("released", [why])
            return
        ctx.grid_requests.request(
            self.name,
            shift,
            until=now + 3.0 * self.config.interval_s,
            reason=f"car {inputs.car_w:.0f} W from the grid, not the battery",
        )
        ctx.report(f"grid target {shift:+.0f} W", [f"car {inputs.car_w:.0f} W"])

    async def run(self, ctx: FeatureContext, *, task_status: TaskStatus[None]) -> None:
        """Renew the request every ``interval_s`` until cancelled; release it on the way out."""
        await run_requester(
            ctx,
            self.name,
            lambda tracker: self.step(ctx, tracker),
            self.config.interval_s,
            task_status=task_status,
        )


def _why_not(inputs: CarShiftInputs) -> str:
    if not inputs.grid_present:
        return "no grid"
    if inputs.car_w is None:
        return "car power unknown or stale"
    if inputs.consumption_w is None or inputs.pv_w is None:
        return "consumption or PV unknown or stale"
    return "car not charging"


def build(config: NoBatteryToEvConfig) -> NoBatteryToEv:
    """Registry factory for ``[no_battery_to_ev]``."""
    return NoBatteryToEv(config)
