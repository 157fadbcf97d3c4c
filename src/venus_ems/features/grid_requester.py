"""The loop of a feature that moves ESS control's grid target (no_battery_to_ev, the reducer).

It follows the monitor into an :class:`~venus_ems.features.ess_inputs.InputTracker`, calls
``step`` every ``interval_s`` (the step renews or releases its request in ``ctx.grid_requests``)
and releases the request when the feature stops or crashes, so ESS control is back at its own
target at once (the request would also expire by itself).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio
from anyio.abc import TaskStatus

from ..venus.names import SYSTEM
from .ess_inputs import InputTracker

if TYPE_CHECKING:
    from ..runtime.feature import FeatureContext

__all__ = ["run_requester"]


async def run_requester(
    ctx: FeatureContext,
    owner: str,
    step: Callable[[InputTracker], None],
    interval_s: float,
    *,
    task_status: TaskStatus[None],
) -> None:
    """Step every ``interval_s`` s until cancelled; ``owner``'s request is released on exit."""
    await ctx.monitor.wait_for_service(SYSTEM, timeout=30.0)
    tracker = InputTracker(ctx.clock)
    tracker.start()
    sub = ctx.monitor.subscribe()

    async def follow() -> None:
        async for changes in sub:
            tracker.update(changes)

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(follow)
            task_status.started()
            while True:
                step(tracker)
                await ctx.clock.sleep(interval_s)
    finally:
        ctx.monitor.unsubscribe(sub)
        ctx.grid_requests.release(owner)
