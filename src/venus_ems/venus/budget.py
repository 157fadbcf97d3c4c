"""What a monitor may keep: a budget of estimated bytes per service and in total (decision D22).

Anything on the bus may claim ``com.victronenergy.*`` names and announce paths, so a monitor
that keeps every path it hears of grows without bound. Paths a ``watch`` selection names are
always kept (they are bounded by the selection). Every other path is charged an estimate of
what keeping it costs (an entry, its name, its value) against ``service_bytes`` of its service
and ``total_bytes`` of the monitor; each service is charged ``SERVICE_BYTES``. What does not fit
is not kept, with one warning per service (at most ``MAX_WARNINGS`` in all). A value estimated
above ``max_value_bytes`` is kept as invalid.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

from .codec import Value

__all__ = [
    "ENTRY_BYTES",
    "MAX_TEXT",
    "SERVICE_BYTES",
    "SIZED",
    "Budget",
    "Charged",
    "MonitorLimits",
    "value_size",
]

_LOG = logging.getLogger("venus_ems.venus.monitor")

SIZED = (str, list, dict)
"""Value types whose size is charged (numbers, bools and invalid cost only the entry)."""

ENTRY_BYTES = 160
"""A kept path beyond its name and value: dict slot, interned key object, boxed number."""

SERVICE_BYTES = 2048
"""A kept service: its state, two dicts, its name and owner."""

MAX_TEXT = 256
"""Texts (``keep_text``) are cut to this many characters."""

MAX_WARNINGS = 32


@dataclass(frozen=True)
class MonitorLimits:
    """Bounds of what a monitor keeps; bytes are estimates (measured within ~10 %, D22).

    The defaults hold a large GX several times over: localsettings has about 2000 paths
    (~0.5 MB charged), all services together about 10 000 (~2.5 MB).
    """

    service_bytes: int = 2 << 20
    total_bytes: int = 16 << 20
    max_services: int = 256
    max_value_bytes: int = 64 << 10


class Charged(Protocol):
    """What the budget needs of a service's state."""

    name: str
    paths: set[str] | None
    cost: int


def value_size(value: Any) -> int:
    """Estimated bytes of a value beyond a number (strings, lists and dicts, recursively)."""
    t = type(value)
    if t is str:
        return len(value)
    if t is list:
        return sum(16 + value_size(v) for v in value)
    if t is dict:
        return sum(16 + len(k) + value_size(v) for k, v in value.items())
    return 0


class Budget:
    """The monitor's charges: ``cost`` in estimated bytes, and what was refused."""

    def __init__(self, limits: MonitorLimits | None = None) -> None:
        """Start empty under ``limits`` (defaults if None)."""
        self.limits = limits or MonitorLimits()
        self.cost = 0
        self.ignored_paths = 0
        self.ignored_services = 0
        self._warned: set[str] = set()

    def admit_service(self, state: Charged, count: int) -> bool:
        """Charge a new service (``count`` already kept); False and a warning if it does not fit."""
        limits = self.limits
        if count >= limits.max_services or self.cost + SERVICE_BYTES > limits.total_bytes:
            self.ignored_services += 1
            self.warn(
                "services",
                "more than %d services or %d bytes watched: ignoring %s and further new ones",
                limits.max_services,
                limits.total_bytes,
                state.name,
            )
            return False
        state.cost = SERVICE_BYTES
        self.cost += SERVICE_BYTES
        return True

    def admit_path(self, state: Charged, path: str, value: Value, text: str | None) -> bool:
        """Charge a new path of an unselected service; False (and a warning) if it does not fit."""
        limits = self.limits
        size = value_size(value) if type(value) in SIZED else 0
        if size > limits.max_value_bytes:
            self.ignored_paths += 1
            return False  # a new path arriving with a huge value: do not keep even the name
        cost = ENTRY_BYTES + len(path) + size + (len(text) if text else 0)
        if state.cost + cost > limits.service_bytes:
            self.ignored_paths += 1
            self.warn(
                "paths " + state.name,
                "%s has more than %d bytes of paths: ignoring its new ones",
                state.name,
                limits.service_bytes,
            )
            return False
        if self.cost + cost > limits.total_bytes:
            self.ignored_paths += 1
            self.warn(
                "paths",
                "services hold more than %d bytes of paths: ignoring new ones (first: %s)",
                limits.total_bytes,
                state.name,
            )
            return False
        state.cost += cost
        self.cost += cost
        return True

    def resize(self, state: Charged, path: str, old: Value, value: Value) -> Value:
        """A kept path changes to or from a sized value: charge the difference, or invalidate."""
        limits = self.limits
        new = value_size(value)
        if new > limits.max_value_bytes:
            self.warn(
                "value " + state.name,
                "%s%s: value of ~%d bytes kept as invalid (limit %d)",
                state.name,
                path,
                new,
                limits.max_value_bytes,
            )
            value, new = None, 0
        if state.paths is not None:
            return value  # selected paths are bounded by the selection, not charged
        delta = new - value_size(old)
        if delta > 0 and (
            state.cost + delta > limits.service_bytes or self.cost + delta > limits.total_bytes
        ):
            self.warn(
                "grow " + state.name,
                "%s%s: a larger value would pass the budget; kept as invalid",
                state.name,
                path,
            )
            value, delta = None, -value_size(old)
        state.cost += delta
        self.cost += delta
        return value

    def forget(self, state: Charged) -> None:
        """Give back what a removed service was charged."""
        self.cost -= state.cost
        state.cost = 0

    def warn(self, key: str, msg: str, *args: object) -> None:
        """Log ``msg`` once per ``key``; after MAX_WARNINGS keys one last line, then nothing."""
        if key in self._warned:
            return
        if len(self._warned) >= MAX_WARNINGS:
            if "" not in self._warned:
                self._warned.add("")
                _LOG.warning("more input beyond the monitor's bounds; not logged any more")
            return
        self._warned.add(key)
        _LOG.warning(msg, *args)
