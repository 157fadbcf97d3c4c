"""A ``[[surplus.consumer]]`` offered to Victron's Opportunity Loads as an S2 resource manager.

Its acload service carries ``/S2/0/Rm`` (:class:`~venus_ems.runtime.s2_rm.OmbcResourceManager`)
with two modes, Off and ``power_w``, and ``min_on_s``/``min_off_s`` as OMBC timers. The RM is
Ready only while no distributor of ours is active (our ``[surplus]`` stands down while OL runs),
so two controllers never drive the relay. While the CEM drives it, the consumer follows the
CEM's mode instead of a grant; when the CEM leaves (or our distributor takes over again) the
RM releases it and it falls back to its standalone rule (off). Powers in W.
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
    from .surplus_consumer import ConsumerRunner

__all__ = ["offer_as_rm"]


class _RunnerDevice:
    """The runner as an :class:`~venus_ems.runtime.s2_rm.OmbcDevice`."""

    def __init__(self, runner: ConsumerRunner) -> None:
        self.runner = runner

    async def apply_level(self, power_w: float) -> None:
        """Follow the CEM's mode from the runner's next step; DeviceError if it cannot."""
        r = self.runner
        r.cem_w = power_w
        stepped = r.stepped
        r.wake()
        with anyio.fail_after(r.cfg.timeout_s * 2 + 3.0):
            await stepped.wait()
        if r.on is None:
            raise DeviceError(r.problem or f"{r.cfg.name}: no answer")

    async def release(self, reason: str) -> None:
        """Back to the grant rule (off without an active distributor)."""
        self.runner.cem_w = None
        self.runner.wake()


def offer_as_rm(runner: ConsumerRunner, service: Service, clock: Clock) -> OmbcResourceManager:
    """Add the RM to ``service`` (before it registers); it runs inside ``runner.run``."""
    cfg = runner.cfg
    plan = OmbcPlan.for_levels(
        service.name, (0.0, cfg.power_w), min_on_s=cfg.min_on_s, min_off_s=cfg.min_off_s
    )
    details = RmDetails(
        str(uuid.uuid5(uuid.NAMESPACE_URL, f"dbus:{service.name}")),
        cfg.custom_name or cfg.name,
        model=f"switched consumer ({cfg.driver})",
    )
    return OmbcResourceManager(service, clock, _RunnerDevice(runner), plan, details, offered=False)
