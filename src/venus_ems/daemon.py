"""The daemon: one root task group, components started in order, safe outputs on the way out.

Start order: the bus (a shared Monitor), our own service (``com.victronenergy.venusems``), what a
killed previous run left on its outputs put back (the output ledger in the state dir), the
features under the supervisor (devices are opened by the features that use them), then MQTT.
Cancellation (SIGTERM, SIGINT) stops features first; every actuator then writes its safe state,
shielded and bounded, while the bus is still open.

The daemon ends with an exception (and ``venus-ems run`` exits non-zero) when a feature keeps
crashing (``CrashLoopError``), when every feature has ended and one failed, when the bus is lost,
and on a bug outside the features (monitor, MQTT link, an actuator): the same shielded safe
state is written on the way out. See ``runtime/supervisor.py`` for the policy.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

import anyio
from anyio.abc import TaskStatus

from .clock import Clock, RealClock
from .features import create_features
from .runtime.actuator import ActuatorRegistry
from .runtime.config import Config
from .runtime.consumers import ConsumerBoard
from .runtime.feature import Feature, FeatureContext
from .runtime.grid_requests import GridRequests
from .runtime.ledger import OutputLedger
from .runtime.leftovers import bus_id, clear_leftovers
from .runtime.mqtt import MqttLink
from .runtime.status import StatusPublisher
from .runtime.supervisor import Supervisor
from .venus import Monitor, SettingsClient, open_monitor

__all__ = ["Extra", "run_daemon"]

_LOG = logging.getLogger(__name__)


class Extra(Protocol):
    """A component started after MQTT on the shared monitor (the dashboard, wired by the CLI)."""

    async def run(self, monitor: Monitor, *, task_status: TaskStatus[None]) -> None:
        """Serve until cancelled; ``task_status.started()`` once running."""
        ...


async def run_daemon(
    config: Config,
    *,
    bus_address: str | None = None,
    clock: Clock | None = None,
    dry_run: bool = False,
    features: Sequence[tuple[str, Feature]] | None = None,
    extras: Sequence[Extra] = (),
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Run until cancelled; ``features`` overrides the configured ones (tests).

    ``extras`` start last, on the shared monitor (the CLI passes the dashboard when ``[web]``
    is enabled; this module does not import ``web``).
    """
    clock = clock or RealClock()
    address = bus_address or config.general.bus_address
    dry = dry_run or config.general.dry_run
    chosen = list(features) if features is not None else create_features(config)
    state_dir = config.general.state_path()
    mqtt = MqttLink(config.mqtt, clock=clock) if config.mqtt.enabled else None
    if dry:
        _LOG.warning("dry run: outputs are logged, not written")
    async with open_monitor(address) as monitor:
        status = StatusPublisher(
            address=address, features=[n for n, _ in chosen], dry_run=dry, mqtt=mqtt
        )
        ledger = OutputLedger(state_dir / "outputs", bus_id=await bus_id(monitor))
        await clear_leftovers(monitor, ledger, clock, dry_run=dry)
        async with status, anyio.create_task_group() as tg:
            actuators = ActuatorRegistry(
                tg,
                on_state=status.output_changed,
                dry_run=dry,
                shutdown_timeout_s=config.general.shutdown_timeout_s,
                ledger=ledger,
            )
            settings = SettingsClient(monitor)
            consumers, grid_requests = ConsumerBoard(), GridRequests()  # shared by all features
            contexts = [
                FeatureContext(
                    name,
                    clock,
                    monitor,
                    actuators,
                    bus_address=address,
                    dry_run=dry,
                    state_dir=state_dir,
                    mqtt=mqtt,
                    settings=settings,
                    sink=status,
                    consumers=consumers,
                    grid_requests=grid_requests,
                )
                for name, _ in chosen
            ]
            supervisor = Supervisor(
                clock=clock,
                actuators=actuators,
                backoff_initial_s=config.general.restart_backoff_initial_s,
                backoff_max_s=config.general.restart_backoff_max_s,
            )
            await tg.start(
                supervisor.run, [(f, c) for (_, f), c in zip(chosen, contexts, strict=True)]
            )
            if mqtt is not None:
                await tg.start(mqtt.run)
            for extra in extras:
                await tg.start(extra.run, monitor)
            _LOG.info("venus-ems running: %d features", len(chosen))
            task_status.started()
            # the supervisor raises when a feature crash-loops or every feature has failed; with
            # no feature configured, or all of them done without error, stay and report it
            await anyio.sleep_forever()
