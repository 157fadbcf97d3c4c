"""What a feature is, and what the runtime hands it (:class:`FeatureContext`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from anyio.abc import TaskStatus

from ..clock import Clock
from .actuator import Actuator, ActuatorRegistry
from .consumers import ConsumerBoard
from .grid_requests import GridRequests
from .logging import redact

if TYPE_CHECKING:
    from ..venus.monitor import Monitor
    from ..venus.settings import SettingsClient
    from .mqtt import MqttLink

__all__ = ["Feature", "FeatureContext", "FeatureState", "FeatureStatus", "StatusSink"]

ServiceLevel = Literal["info", "warning", "error"]


class FeatureState(str, Enum):
    """Lifecycle of a supervised feature."""

    STARTING = "starting"
    RUNNING = "running"
    BACKING_OFF = "backing_off"
    FAILED = "failed"
    STOPPED = "stopped"


@dataclass
class FeatureStatus:
    """What is published about a feature: state, last error, restarts, decision and reasons."""

    name: str
    state: FeatureState = FeatureState.STARTING
    last_error: str = ""
    restarts: int = 0
    retry_in_s: float | None = None
    decision: str = ""
    reasons: tuple[str, ...] = ()


class StatusSink(Protocol):
    """Where feature and output states go (our D-Bus service, MQTT, the log)."""

    def feature_changed(self, status: FeatureStatus) -> None:
        """A feature's status changed."""
        ...

    def output_changed(self, actuator: Actuator[Any]) -> None:
        """An actuator's owner, value or error changed."""
        ...

    def service_message(self, feature: str, level: ServiceLevel, text: str) -> None:
        """A message for the user about a feature."""
        ...


class NullSink:
    """A sink that only logs service messages."""

    def feature_changed(self, status: FeatureStatus) -> None:
        """Ignore."""

    def output_changed(self, actuator: Actuator[Any]) -> None:
        """Ignore."""

    def service_message(self, feature: str, level: ServiceLevel, text: str) -> None:
        """Log it."""
        logging.getLogger(f"venus_ems.features.{feature}").log(
            {"info": logging.INFO, "warning": logging.WARNING}.get(level, logging.ERROR), text
        )


@dataclass
class FeatureContext:
    """Everything a feature may use; features reach nothing else of the runtime."""

    name: str
    clock: Clock
    monitor: Monitor
    actuators: ActuatorRegistry
    bus_address: str | None = None
    dry_run: bool = False
    state_dir: Path = Path()
    mqtt: MqttLink | None = None
    settings: SettingsClient | None = None
    sink: StatusSink = field(default_factory=NullSink)
    consumers: ConsumerBoard = field(default_factory=ConsumerBoard)
    grid_requests: GridRequests = field(default_factory=GridRequests)
    status: FeatureStatus = field(init=False)

    def __post_init__(self) -> None:
        """Start with a fresh status."""
        self.status = FeatureStatus(self.name)
        self.log = logging.getLogger(f"venus_ems.features.{self.name}")

    def report(self, decision: str, reasons: Sequence[str] = ()) -> None:
        """Publish the feature's current decision and why ("capped by DCL 120 A")."""
        decision = redact(decision)
        reasons = tuple(redact(r) for r in reasons)
        if decision != self.status.decision or reasons != self.status.reasons:
            self.status.decision = decision
            self.status.reasons = reasons
            self.sink.feature_changed(self.status)

    def message(self, level: ServiceLevel, text: str) -> None:
        """Tell the user something about this feature (log, MQTT ring, D-Bus); secrets redacted."""
        self.sink.service_message(self.name, level, redact(text))

    def set_state(self, state: FeatureState, *, error: str | None = None) -> None:
        """Used by the supervisor."""
        self.status.state = state
        if error is not None:
            self.status.last_error = redact(error)
        if state is not FeatureState.BACKING_OFF:
            self.status.retry_in_s = None
        self.sink.feature_changed(self.status)


class Feature(Protocol):
    """A user-facing feature: runs until cancelled; raises on failure (see runtime/supervisor)."""

    name: str

    async def run(self, ctx: FeatureContext, *, task_status: TaskStatus[None]) -> None:
        """Start, call ``task_status.started()`` once working, then run until cancelled."""
        ...
