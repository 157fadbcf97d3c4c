"""The feature registry, derived from the config model.

Each feature's config table declares its factory (``feature = "module:factory"`` on its
:class:`~venus_ems.runtime.config.base.FeatureTable`); modules are imported only when the feature
is enabled, so a disabled feature costs nothing. A factory takes the table's config (one item
for ``[[tables]]``) and returns a :class:`venus_ems.runtime.feature.Feature`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from ..errors import ConfigError
from ..runtime.config import Config
from ..runtime.feature import Feature
from ..runtime.imports import defer_default_ca

__all__ = ["LIST_TABLES", "REGISTRY", "create_features"]

REGISTRY: dict[str, str] = {
    table: model.feature for table, (model, _) in Config.feature_tables().items()
}
"""Config table -> ``"module:factory"`` of the feature it enables."""

LIST_TABLES = tuple(table for table, (_, is_list) in Config.feature_tables().items() if is_list)
"""Tables that are arrays (``[[grid_meter]]``): one feature per enabled item, named table.name."""


def _factory(target: str) -> Callable[[Any], Feature]:
    module, _, attr = target.partition(":")
    try:
        fn: Callable[[Any], Feature] = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"feature factory {target!r} cannot be loaded: {err}") from err
    return fn


def create_features(config: Config) -> list[tuple[str, Feature]]:
    """(name, feature) for every enabled feature, in start order; ConfigError if unavailable.

    aiohttp, which features import, is loaded without its default CA bundle (see
    :mod:`venus_ems.runtime.imports`).
    """
    defer_default_ca()
    return [(name, _factory(type(item).feature)(item)) for name, item in config.enabled_items()]
