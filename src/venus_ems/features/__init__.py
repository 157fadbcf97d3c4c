"""The feature registry: every user-facing feature is declared here, in one place.

``REGISTRY`` maps a config table to ``"module:factory"``; modules are imported only when the
feature is enabled, so a disabled feature costs nothing. A factory takes the table's config
(one item for ``[[tables]]``) and returns a :class:`venus_ems.runtime.feature.Feature`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..runtime.config import Config
    from ..runtime.feature import Feature

__all__ = ["LIST_TABLES", "REGISTRY", "create_features"]

REGISTRY: dict[str, str] = {
    "temperature": "venus_ems.features.temperature:build",
    "grid_meter": "venus_ems.features.grid_meter:build",
    "pv_meter": "venus_ems.features.pv_meter:build",
    "mqtt_exporter": "venus_ems.features.mqtt_exporter:build",
    "time_to_go": "venus_ems.features.time_to_go:build",
    "ess_control": "venus_ems.features.ess_control:build",
    "output_limiter": "venus_ems.features.output_limiter:build",
    "settings_guard": "venus_ems.features.settings_guard:build",
}
"""Config table -> ``"module:factory"`` of the feature it enables."""

LIST_TABLES = ("grid_meter", "pv_meter", "temperature")
"""Tables that are arrays (``[[grid_meter]]``): one feature per enabled item, named table.name."""


def _factory(table: str) -> Callable[[Any], Feature]:
    target = REGISTRY.get(table)
    if target is None:
        raise ConfigError(f"[{table}] is enabled but this venus-ems has no such feature yet")
    module, _, attr = target.partition(":")
    fn: Callable[[Any], Feature] = getattr(importlib.import_module(module), attr)
    return fn


def create_features(config: Config) -> list[tuple[str, Feature]]:
    """(name, feature) for every enabled feature, in start order; ConfigError if unavailable."""
    out: list[tuple[str, Feature]] = []
    for name in config.enabled_features():
        table, _, item_name = name.partition(".")
        section = getattr(config, table)
        item = next(i for i in section if i.name == item_name) if table in LIST_TABLES else section
        out.append((name, _factory(table)(item)))
    return out
