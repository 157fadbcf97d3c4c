"""Shared harness of the Shelly meter feature tests (no tests here): run a feature for real.

The feature runs against a loopback emulator, on the test's private dbus-daemon, with a real
Monitor reading what it publishes (and, when asked, the simulated localsettings).
"""

from __future__ import annotations

from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import anyio

from venus_ems.runtime.actuator import ActuatorRegistry
from venus_ems.runtime.feature import FeatureContext, NullSink
from venus_ems.sim.venus import LocalSettings
from venus_ems.venus import Monitor, SettingsClient, open_monitor
from waiting import until


class Sink(NullSink):
    """Records service messages and reported decisions."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str]] = []
        self.decisions: list[str] = []

    def service_message(self, feature, level, text) -> None:
        self.messages.append((level, text))

    def feature_changed(self, status) -> None:
        if not self.decisions or self.decisions[-1] != status.decision:
            self.decisions.append(status.decision)


class FeatureClock:
    """The test's clock as the feature sees it, telling whether the feature waits for it."""

    def __init__(self, clock) -> None:
        self.clock = clock
        self.waiting = False

    def monotonic(self) -> float:
        return self.clock.monotonic()

    def now(self):
        return self.clock.now()

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await self.clock.sleep(seconds)
            return
        self.waiting = True
        try:
            await self.clock.sleep(seconds)
        finally:
            self.waiting = False


@dataclass
class Run:
    feature: object
    name: str
    mon: Monitor
    sink: Sink
    clock: FeatureClock
    settings: LocalSettings | None = None

    def get(self, path: str):
        return self.mon.get(self.name, path)

    def paths(self) -> set[str]:
        state = self.mon.service(self.name)
        return set() if state is None else set(state.values)

    async def synced(self) -> None:
        """Wait until the monitor shows every value the service holds."""
        svc = self.feature.service
        await until(lambda: all(self.get(p) == svc[p] for p in svc.paths()))

    async def step(self, clock, dt: float = 1.0) -> None:
        """Advance the stepped clock by ``dt``; wait for the polls it triggers and their signals."""
        await until(lambda: self.clock.waiting)
        polls = self.feature.polls
        await clock.advance(dt)
        await until(lambda: self.feature.polls > polls and self.clock.waiting)
        await self.synced()


@asynccontextmanager
async def running(feature, service, bus_address, clock, state_dir, *, settings=None):
    """Run ``feature`` (published as ``service``) until the block ends; yields a :class:`Run`."""
    sink = Sink()
    async with AsyncExitStack() as stack:
        local = None
        if settings is not None:
            local = await stack.enter_async_context(
                LocalSettings(address=bus_address, file=settings)
            )
        mon = await stack.enter_async_context(open_monitor(bus_address))
        tg = await stack.enter_async_context(anyio.create_task_group())
        fclock = FeatureClock(clock)
        ctx = FeatureContext(
            feature.name,
            fclock,
            mon,
            ActuatorRegistry(tg),
            bus_address=bus_address,
            state_dir=state_dir,
            settings=SettingsClient(mon) if settings is not None else None,
            sink=sink,
        )
        await tg.start(lambda task_status: feature.run(ctx, task_status=task_status))
        run = Run(feature, service, mon, sink, fclock, local)
        await until(lambda: mon.service(service) is not None and feature.polls >= 1)
        await run.synced()
        yield run
        tg.cancel_scope.cancel()
