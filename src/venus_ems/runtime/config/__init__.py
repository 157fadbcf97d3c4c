"""Configuration: one TOML file parsed into frozen pydantic models, every problem reported.

``load_config(path)`` returns a :class:`Config` or raises :class:`InvalidConfigError` (a
``ConfigError``) listing each problem as ``table.key = value: expected ... (line N)``.
``check_config(path)`` gives the CLI ``(exit code, text)``. Secrets are literals or
``{ env = "NAME" }`` and never appear in ``repr``/``str`` or logs.
"""

from __future__ import annotations

from .advice import config_warnings, is_local_host, literal_secrets
from .base import check_publish_topic, check_topic_filter
from .bridges import ExportConfig, MqttExporterConfig, TimeToGoConfig
from .control import EssControlConfig, OutputLimiterConfig
from .ev import ChargeCurrentReducerConfig, ChargeWindow, EvChargerConfig, NoBatteryToEvConfig
from .general import GeneralConfig, LogLevel, MqttConfig, default_state_dir
from .guard import GUARD_CHECKS, GuardCheck, SettingsGuardConfig
from .loader import EXIT_INVALID, EXIT_OK, check_config, checked_config, load_config, parse_config
from .meters import GridChannelConfig, GridMeterConfig, PvMeterConfig, TemperatureConfig
from .micro import MicroBatteryConfig, MicroInverterConfig, MicroInverterControlConfig
from .migrate import MIGRATIONS, Migration, migrate
from .model import SCHEMA_VERSION, Config
from .report import InvalidConfigError, Problem
from .secrets import MASK, Secret, known_secrets
from .surplus import SurplusConfig, SurplusConsumerConfig
from .web import WebConfig

__all__ = [
    "EXIT_INVALID",
    "EXIT_OK",
    "GUARD_CHECKS",
    "MASK",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "ChargeCurrentReducerConfig",
    "ChargeWindow",
    "Config",
    "EssControlConfig",
    "EvChargerConfig",
    "ExportConfig",
    "GeneralConfig",
    "GridChannelConfig",
    "GridMeterConfig",
    "GuardCheck",
    "InvalidConfigError",
    "LogLevel",
    "MicroBatteryConfig",
    "MicroInverterConfig",
    "MicroInverterControlConfig",
    "Migration",
    "MqttConfig",
    "MqttExporterConfig",
    "NoBatteryToEvConfig",
    "OutputLimiterConfig",
    "Problem",
    "PvMeterConfig",
    "Secret",
    "SettingsGuardConfig",
    "SurplusConfig",
    "SurplusConsumerConfig",
    "TemperatureConfig",
    "TimeToGoConfig",
    "WebConfig",
    "check_config",
    "check_publish_topic",
    "check_topic_filter",
    "checked_config",
    "config_warnings",
    "default_state_dir",
    "is_local_host",
    "known_secrets",
    "literal_secrets",
    "load_config",
    "migrate",
    "parse_config",
]
