"""Supervision: each feature in its own scope, restarted with capped exponential backoff.

A feature that raises has its traceback logged and its claims released (its outputs go to
their safe state unless another feature holds them), then it is restarted after 1, 2, 4 ... s
up to the cap; the others keep running. An error that retrying cannot fix (``ConfigError``,
``DeviceAuthError``: ``retryable = False``) stops the feature (state ``failed``).
The backoff starts again from the beginning once a run lasted ``stable_after_s``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import anyio
from anyio.abc import TaskStatus

from ..clock import Clock
from ..errors import EmsError
from .actuator import ActuatorRegistry
from .feature import Feature, FeatureContext, FeatureState

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

__all__ = ["Supervisor", "first_error"]

_LOG = logging.getLogger(__name__)


def first_error(exc: BaseException) -> BaseException:
    """The first real exception inside (nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


class Supervisor:
    """Starts features in order and keeps them running."""

    def __init__(
        self,
        *,
        clock: Clock,
        actuators: ActuatorRegistry,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 60.0,
        stable_after_s: float = 60.0,
    ) -> None:
        """Backoff in seconds of ``clock`` time."""
        self.clock = clock
        self.actuators = actuators
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.stable_after_s = stable_after_s

    async def run(
        self,
        features: Sequence[tuple[Feature, FeatureContext]],
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Start each feature in turn (first attempt done before the next), run until cancelled."""
        async with anyio.create_task_group() as tg:
            for feature, ctx in features:
                await tg.start(self.supervise, feature, ctx)
            task_status.started()

    async def supervise(
        self,
        feature: Feature,
        ctx: FeatureContext,
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run one feature: restart on failure; stop on an unfixable error or a clean return."""
        attempt = 0
        reported = False
        while True:
            t0 = self.clock.monotonic()
            ctx.set_state(FeatureState.STARTING)
            try:
                async with anyio.create_task_group() as tg:
                    await tg.start(feature.run, ctx)
                    ctx.set_state(FeatureState.RUNNING)
                    if not reported:
                        reported = True
                        task_status.started()
            except Exception as group:  # noqa: BLE001 - supervision is the point
                err = first_error(group)
                self.actuators.release_all(ctx.name)
                if isinstance(err, EmsError) and not err.retryable:  # config, credentials
                    _LOG.error("feature %s stopped: %s", ctx.name, err)
                    ctx.set_state(FeatureState.FAILED, error=str(err))
                    ctx.message("error", f"stopped: {err}")
                    break
                _LOG.error("feature %s failed", ctx.name, exc_info=err)
                if self.clock.monotonic() - t0 >= self.stable_after_s:
                    attempt = 0
                delay = min(self.backoff_initial_s * 2**attempt, self.backoff_max_s)
                attempt += 1
                ctx.status.restarts += 1
                ctx.status.retry_in_s = delay
                ctx.set_state(FeatureState.BACKING_OFF, error=f"{type(err).__name__}: {err}")
                ctx.message("warning", f"failed ({err}); restarting in {delay:.0f} s")
                if not reported:
                    reported = True
                    task_status.started()
                await self.clock.sleep(delay)
                continue
            self.actuators.release_all(ctx.name)
            ctx.set_state(FeatureState.STOPPED)
            break
        if not reported:
            task_status.started()
