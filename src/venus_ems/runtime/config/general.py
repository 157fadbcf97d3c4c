"""``[general]`` and ``[mqtt]``: the daemon itself and its MQTT broker connection."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from .base import BrokerHost, FeatureName, PublishTopic, StrictModel
from .secrets import Secret

__all__ = ["GeneralConfig", "LogLevel", "MqttConfig", "default_state_dir"]

LogLevel = Literal["TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


def default_state_dir(data_root: Path = Path("/data")) -> Path:
    """``/data/venus-ems/state`` on a GX (``/data`` exists and is writable), else ``./state``."""
    if data_root.is_dir() and os.access(data_root, os.W_OK):
        return data_root / "venus-ems" / "state"
    return Path("state")


class GeneralConfig(StrictModel):
    """Daemon-wide options: logging, dry run, D-Bus address, status and supervision timing."""

    log_level: LogLevel = "INFO"
    log_path: str | None = Field(default=None, min_length=1)
    log_backups: int = Field(default=14, ge=1, le=366)
    log_console: bool = True
    state_dir: str | None = Field(default=None, min_length=1)
    dry_run: bool = False
    bus_address: str | None = Field(default=None, min_length=1)
    shutdown_timeout_s: float = Field(default=5.0, ge=0.5, le=60.0)
    restart_backoff_initial_s: float = Field(default=1.0, ge=0.1, le=60.0)
    restart_backoff_max_s: float = Field(default=60.0, ge=1.0, le=3600.0)

    def state_path(self) -> Path:
        """``state_dir`` or :func:`default_state_dir` (not created here)."""
        return Path(self.state_dir) if self.state_dir is not None else default_state_dir()

    @model_validator(mode="after")
    def _backoff_order(self) -> GeneralConfig:
        """The backoff cap cannot be below its start."""
        if self.restart_backoff_max_s < self.restart_backoff_initial_s:
            raise ValueError(
                "restart_backoff_max_s must be >= restart_backoff_initial_s "
                f"({self.restart_backoff_max_s} < {self.restart_backoff_initial_s})"
            )
        return self


class MqttConfig(StrictModel):
    """The MQTT broker venus-ems talks to (TLS verified unless ``insecure = true``)."""

    enabled: bool = False
    host: BrokerHost = "localhost"
    port: int | None = Field(default=None, ge=1, le=65535)
    tls: bool = False
    ca_file: str | None = Field(default=None, min_length=1)
    insecure: bool = False
    username: str | None = Field(default=None, min_length=1)
    password: Secret | None = None
    client_id: FeatureName = "venus_ems"
    topic_prefix: PublishTopic = "venus-ems"
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    connect_timeout_s: float = Field(default=10.0, ge=0.5, le=120.0)
    reconnect_initial_s: float = Field(default=1.0, ge=0.05, le=60.0)
    reconnect_max_s: float = Field(default=60.0, ge=0.1, le=3600.0)
    service_messages: int = Field(default=20, ge=1, le=500)
    queue_size: int = Field(default=1000, ge=1, le=100_000)

    @property
    def effective_port(self) -> int:
        """``port``, or 8883 with TLS and 1883 without."""
        if self.port is not None:
            return self.port
        return 8883 if self.tls else 1883

    @model_validator(mode="after")
    def _combinations(self) -> MqttConfig:
        """TLS-only options need TLS; a password needs a user; backoff cap >= start."""
        if self.insecure and not self.tls:
            raise ValueError("insecure = true has no effect without tls = true")
        if self.ca_file is not None and not self.tls:
            raise ValueError("ca_file is set but tls = false")
        if self.password is not None and self.username is None:
            raise ValueError("password is set but username is not (MQTT sends no password alone)")
        if self.reconnect_max_s < self.reconnect_initial_s:
            raise ValueError(
                "reconnect_max_s must be >= reconnect_initial_s "
                f"({self.reconnect_max_s} < {self.reconnect_initial_s})"
            )
        return self
