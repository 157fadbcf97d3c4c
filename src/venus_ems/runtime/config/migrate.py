"""Schema migrations: functions ``vN -> vN+1`` applied in order before validation.

A migration receives a deep copy of the parsed TOML document of version N and returns the
document of version N+1 (``schema_version`` is set by :func:`migrate`). Files are never
rewritten: the user's comments stay, and ``check-config`` says which migrations ran.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from .model import SCHEMA_VERSION

__all__ = ["MIGRATIONS", "Migration", "migrate"]

Migration = Callable[[dict[str, Any]], dict[str, Any]]

MIGRATIONS: Mapping[int, Migration] = {}
"""``{N: function turning a vN document into vN+1}``; empty while version 1 is the only one."""


def migrate(
    data: Mapping[str, Any],
    *,
    current: int = SCHEMA_VERSION,
    migrations: Mapping[int, Migration] = MIGRATIONS,
) -> tuple[dict[str, Any], list[str]]:
    """Return ``(document at version current, notes)``; ValueError names a bad schema_version."""
    if "schema_version" not in data:
        raise KeyError("schema_version")
    version = data["schema_version"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise TypeError("expected an integer")
    if version > current:
        raise ValueError(
            f"schema_version {version} is newer than this venus-ems supports ({current}): "
            "upgrade venus-ems or use a config written for this version"
        )
    oldest = min([*migrations, current])
    if version < oldest:
        raise ValueError(
            f"schema_version {version} is older than any supported version (oldest: {oldest})"
        )
    doc = copy.deepcopy(dict(data))
    notes: list[str] = []
    while version < current:
        step = migrations.get(version)
        if step is None:
            raise ValueError(f"no migration from schema_version {version} to {version + 1}")
        doc = step(doc)
        version += 1
        doc["schema_version"] = version
        notes.append(f"migrated schema_version {version - 1} -> {version} in memory")
    return doc, notes
