"""Supervision: each feature in its own scope, failures sorted by what retrying can fix.

What happens when a feature's run ends with an exception (raised by the feature, or by one of
the callbacks it registered with the monitor, the settings client or the MQTT link — see
:mod:`venus_ems.callbacks`). In every case its claims are released first, so its outputs go to
their safe state (unless another feature holds them), and the other features keep running.

* **Retryable** ``EmsError`` (``DeviceError``, ``BusError``: a device or the bus misbehaved):
  logged as a warning, restarted after 1, 2, 4 ... s up to ``backoff_max_s`` — for ever. Its
  Venus services close while it waits, so its data is gone (stale), never zero.
* **Not retryable** ``EmsError`` (``ConfigError``, ``DeviceAuthError``: only a person can fix
  it): the feature stops (state ``failed``).
* **Anything else is a bug**: logged with its traceback and restarted with the same backoff,
  at most ``max_restarts`` times within ``restart_window_s``. The next bug inside that window
  raises :class:`~venus_ems.errors.CrashLoopError` out of :meth:`Supervisor.run`: the daemon
  stops, every actuator writes its safe state, and the process exits non-zero so that the
  service supervisor (daemontools on a GX) starts a fresh one.

The backoff starts again from the beginning once a run lasted ``stable_after_s``. When every
feature has ended and at least one of them failed, :meth:`Supervisor.run` raises the first
failure: a daemon with nothing left running exits instead of idling.
"""

from __future__ import annotations

import logging
import sys
from collections import deque
from collections.abc import Sequence

import anyio
from anyio.abc import TaskStatus

from ..callbacks import Owner
from ..clock import Clock
from ..errors import CrashLoopError, EmsError
from .actuator import ActuatorRegistry
from .feature import Feature, FeatureContext, FeatureState

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

__all__ = ["MAX_RESTARTS", "RESTART_WINDOW_S", "Supervisor", "first_error", "root_cause"]

_LOG = logging.getLogger(__name__)

MAX_RESTARTS = 5
"""Restarts after a bug allowed within :data:`RESTART_WINDOW_S`; the next bug ends the process."""
RESTART_WINDOW_S = 600.0
"""Seconds (clock time) over which bug restarts are counted."""


def first_error(exc: BaseException) -> BaseException:
    """The first real exception inside (nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def root_cause(exc: BaseException) -> BaseException:
    """The exception that decides what happens: a bug if any, else a non-retryable EmsError."""
    leaves = _leaves(exc) or [exc]
    for leaf in leaves:
        if not isinstance(leaf, EmsError):
            return leaf
    for leaf in leaves:
        if isinstance(leaf, EmsError) and not leaf.retryable:
            return leaf
    return leaves[0]


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
        max_restarts: int = MAX_RESTARTS,
        restart_window_s: float = RESTART_WINDOW_S,
    ) -> None:
        """Backoff and window in seconds of ``clock`` time; ``max_restarts`` bugs per window."""
        self.clock = clock
        self.actuators = actuators
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.stable_after_s = stable_after_s
        self.max_restarts = max_restarts
        self.restart_window_s = restart_window_s
        self._failures: list[BaseException] = []

    async def run(
        self,
        features: Sequence[tuple[Feature, FeatureContext]],
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Start each feature in turn (first attempt done before the next), run until cancelled.

        Raises CrashLoopError when a feature keeps failing with a bug, and the first failure
        when every feature has ended and one of them failed.
        """
        async with anyio.create_task_group() as tg:
            for feature, ctx in features:
                await tg.start(self.supervise, feature, ctx)
            task_status.started()
        if self._failures:
            _LOG.error("every feature has ended and %d failed: exiting", len(self._failures))
            raise self._failures[0]

    async def supervise(
        self,
        feature: Feature,
        ctx: FeatureContext,
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run one feature: restart on failure; stop on an unfixable error or a clean return."""
        attempt = 0
        bugs: deque[float] = deque()
        reported = False
        while True:
            t0 = self.clock.monotonic()
            ctx.set_state(FeatureState.STARTING)
            owner = Owner(ctx.name)
            failure: BaseException | None = None
            try:
                with owner.running():
                    async with anyio.create_task_group() as tg:
                        await tg.start(feature.run, ctx)
                        ctx.set_state(FeatureState.RUNNING)
                        if not reported:
                            reported = True
                            task_status.started()
            except Exception as exc:  # noqa: BLE001 - sorted below: retry, stop or bug
                failure = exc
            if owner.error is not None:  # one of its callbacks raised: that is the cause
                failure = owner.error
            self.actuators.release_all(ctx.name)  # its outputs go to their safe state
            if failure is None:
                ctx.set_state(FeatureState.STOPPED)
                break
            err = root_cause(failure)
            now = self.clock.monotonic()
            if isinstance(err, EmsError) and not err.retryable:  # config, credentials
                _LOG.error("feature %s stopped: %s", ctx.name, err)
                ctx.set_state(FeatureState.FAILED, error=str(err))
                ctx.message("error", f"stopped: {err}")
                self._failures.append(err)
                break
            if isinstance(err, EmsError):
                _LOG.warning("feature %s failed: %s", ctx.name, err)
                _LOG.debug("feature %s failed", ctx.name, exc_info=err)
            else:
                _LOG.error("feature %s crashed (a bug)", ctx.name, exc_info=err)
                while bugs and now - bugs[0] > self.restart_window_s:
                    bugs.popleft()
                if len(bugs) >= self.max_restarts:
                    text = (
                        f"feature {ctx.name} crashed {len(bugs) + 1} times within "
                        f"{self.restart_window_s:g} s ({type(err).__name__}: {err}); exiting "
                        "so that the service supervisor restarts venus-ems"
                    )
                    ctx.set_state(FeatureState.FAILED, error=f"{type(err).__name__}: {err}")
                    ctx.message("error", text)
                    raise CrashLoopError(text) from err
                bugs.append(now)
            if now - t0 >= self.stable_after_s:
                attempt = 0
            delay = min(self.backoff_initial_s * 2**attempt, self.backoff_max_s)
            attempt += 1
            ctx.status.restarts += 1
            ctx.status.retry_in_s = delay
            ctx.set_state(FeatureState.BACKING_OFF, error=f"{type(err).__name__}: {err}")
            ctx.message("warning", f"failed ({err}); restarting in {delay:.3g} s")
            if not reported:
                reported = True
                task_status.started()
            await self.clock.sleep(delay)
        if not reported:
            task_status.started()
