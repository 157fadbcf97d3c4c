"""``[water_heater]`` offered to Victron's Opportunity Loads as an S2 OMBC resource manager.

Its acload carries ``/S2/0/Rm`` (:class:`~venus_ems.runtime.s2_rm.OmbcResourceManager`) with one
operation mode per power step and ``min_on_s``/``min_off_s`` as OMBC timers. It is Ready only
while no distributor of ours is active and the heater is in Auto deciding from surplus (in Off,
On, a boost or the daily minimum the feature decides alone and withdraws it). While the CEM
drives it, the chosen level is the heater's grant: the hard limits (sensor, ``max_c``, the
thermostat target) still come first, and a level they forbid is refused so the CEM's Status
names the mode that really runs. CEM gone, keep-alive missed or RM withdrawn: release, back to
the standalone rule. Powers in W.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import anyio

from ..clock import Clock
from ..control.ombc import OmbcPlan
from ..errors import DeviceError
from ..runtime.s2_rm import OmbcResourceManager, RmDetails
from ..venus import Service

if TYPE_CHECKING:
    from .water_heater import WaterHeater

__all__ = ["STEP_WAIT_S", "offer_heater_as_rm"]

STEP_WAIT_S = 5.0  # the heater decides every second; an instruction waits this long for it


class _HeaterDevice:
    """The water heater feature as an :class:`~venus_ems.runtime.s2_rm.OmbcDevice`."""

    def __init__(self, heater: WaterHeater) -> None:
        self.heater = heater

    async def apply_level(self, power_w: float) -> None:
        """Run ``power_w`` from the next decision; DeviceError when a hard limit forbids it."""
        h = self.heater
        before, h.cem_w = h.cem_w, power_w
        stepped = h.stepped
        h.wake()
        with anyio.fail_after(STEP_WAIT_S):
            await stepped.wait()
        d = h.decision
        if d is None or abs(d.level_w - power_w) > 0.5:
            h.cem_w = before  # the RM keeps its mode: follow what it says runs
            h.wake()
            raise DeviceError(d.reason if d is not None else "water heater: no decision")

    async def release(self, reason: str) -> None:
        """Back to the standalone rule (the feature decides alone)."""
        self.heater.cem_w = None
        self.heater.wake()


def offer_heater_as_rm(heater: WaterHeater, service: Service, clock: Clock) -> OmbcResourceManager:
    """Add the RM to ``service`` (before it registers); run it in the feature's task group."""
    cfg = heater.config
    plan = OmbcPlan.for_levels(
        service.name, heater.steps, min_on_s=cfg.min_on_s, min_off_s=cfg.min_off_s
    )
    details = RmDetails(
        str(uuid.uuid5(uuid.NAMESPACE_URL, f"dbus:{service.name}")),
        cfg.custom_name or "Water heater",
        phase=cfg.phase,
        model=f"heating rod ({cfg.driver})",
    )
    return OmbcResourceManager(service, clock, _HeaterDevice(heater), plan, details, offered=False)
