"""Energy counters that never go backwards, not even across a restart, a crash or ``kill -9``.

:class:`EnergyCounters` keeps kWh values per key (``"forward"``, ``"L1/reverse"``...). A device
counter is followed by its increments, so a counter the device resets (reboot, firmware
update, ``ResetCounters``) or a replaced device never makes a value drop; integrated energy
(net metering) is added directly.

Nothing is published above what is on disk. Each save writes, per key, a *ceiling*: the
current value plus :data:`RESERVE_KWH`. A published value is clamped to the saved ceiling, and
a value that reaches it is saved (with a new ceiling) before it goes out. After a restart the
ceiling found on disk is a floor: every value published before the restart is at or below it,
so publishing ``max(value, floor)`` never goes back, whatever the process was doing when it
died. A device counter continues from the saved raw value, so nothing is lost; integrated
energy loses at most the reserve (what accrued since the last save), and the published value
stays on the floor until the counter has caught up with it.

:class:`CounterFile` stores them as JSON, written atomically (temp file, fsync, rename, fsync of
the directory): after a crash the file holds either the previous or the new state, never a
mix. A file that cannot be read is moved aside (``<file>.corrupt``), never overwritten, and
reported.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..runtime.files import make_private_dir, open_private

__all__ = [
    "FORMAT",
    "RESERVE_KWH",
    "RESET_TOLERANCE_KWH",
    "CounterFile",
    "EnergyCounters",
    "LoadResult",
    "split_energy",
]

FORMAT = "venus-ems energy counters"
_VERSION = 1
RESET_TOLERANCE_KWH = 0.01
"""A device counter that drops by less than this is jitter (ignored), by more a reset."""
RESERVE_KWH = 0.01
"""How far above the published value each save puts the ceiling (the GX shows 0.01 kWh).

Bounds both the save rate (one save per 10 Wh that flows, at most) and what a crash can cost.
"""


def split_energy(p0_w: float, p1_w: float, dt_s: float) -> tuple[float, float]:
    """(import kWh, export kWh) of a power going linearly from ``p0_w`` to ``p1_w`` (+ = import).

    Over ``dt_s`` seconds; a zero crossing splits the interval exactly.
    """
    if dt_s <= 0:
        return 0.0, 0.0
    hours = dt_s / 3600.0
    if (p0_w >= 0) == (p1_w >= 0):
        mean_kw = (p0_w + p1_w) / 2000.0
        return (mean_kw * hours, 0.0) if mean_kw >= 0 else (0.0, -mean_kw * hours)
    crossing = p0_w / (p0_w - p1_w)  # fraction of the interval before the sign change
    first = p0_w / 2000.0 * crossing * hours
    second = p1_w / 2000.0 * (1.0 - crossing) * hours
    imported = max(first, 0.0) + max(second, 0.0)
    exported = -min(first, 0.0) - min(second, 0.0)
    return imported, exported


@dataclass
class EnergyCounters:
    """kWh per key, the device values last seen (``raw``), whose they were, and the bounds.

    ``ceiling`` holds, per key, the bound last written to disk: nothing above it has been
    published. ``floor`` is the ceiling found on disk at start (nothing below it may be
    published in this run).
    """

    values: dict[str, float] = field(default_factory=dict)
    raw: dict[str, float] = field(default_factory=dict)
    source: str = ""
    ceiling: dict[str, float] = field(default_factory=dict)
    floor: dict[str, float] = field(default_factory=dict)
    resets: int = 0
    dirty: bool = False

    def get(self, key: str) -> float | None:
        """Counted value of ``key`` in kWh (not below the floor), None if never seen."""
        value, floor = self.values.get(key), self.floor.get(key)
        if value is None or floor is None:
            return value if floor is None else floor
        return max(value, floor)

    def published(self, key: str) -> float | None:
        """What may be published for ``key`` now: its value clamped to the saved ceiling.

        None while nothing was saved for the key (publish invalid, never 0).
        """
        value, ceiling = self.get(key), self.ceiling.get(key)
        if value is None or ceiling is None:
            return None
        return min(value, ceiling)

    def over_ceiling(self) -> bool:
        """True when a value has reached its saved ceiling: save before publishing more."""
        for key in self._keys():
            value = self.get(key)
            if value is not None and value > self.ceiling.get(key, -math.inf):
                return True
        return False

    def _keys(self) -> set[str]:
        return set(self.values) | set(self.floor)

    def snapshot(self, reserve_kwh: float = RESERVE_KWH) -> EnergyCounters:
        """A copy to save, with every ceiling ``reserve_kwh`` above the current value."""
        # values never decrease, so the current one bounds everything published so far
        ceiling = {}
        for key in self._keys():
            value = self.get(key)
            if value is not None:
                ceiling[key] = value + reserve_kwh
        return EnergyCounters(
            dict(self.values), dict(self.raw), self.source, ceiling, dict(self.floor)
        )

    def saved(self, snapshot: EnergyCounters) -> None:
        """``snapshot`` is on disk now: its ceilings bound what may be published."""
        self.ceiling = dict(snapshot.ceiling)

    def set_source(self, source: str) -> None:
        """The device and channel mapping behind the raw values; a change forgets them."""
        if source != self.source:
            self.raw.clear()
            self.source = source
            self.dirty = True

    def seed(self, key: str, kwh: float | None) -> None:
        """Start ``key`` at ``kwh`` unless it already has a value (None: nothing)."""
        if kwh is not None and key not in self.values:
            self.values[key] = kwh
            self.dirty = True

    def add(self, key: str, kwh: float) -> None:
        """Add ``kwh`` (>= 0) to ``key`` (integrated energy); ValueError if negative."""
        if kwh < 0 or not math.isfinite(kwh):
            raise ValueError(f"cannot add {kwh} kWh to a counter")
        if kwh:
            self.values[key] = self.values.get(key, 0.0) + kwh
            self.dirty = True

    def track(self, key: str, raw_kwh: float | None) -> float:
        """Follow device counter ``key``; returns the kWh added to its value.

        The first value seeds the key (or only sets the baseline if it has a value); an
        increase is added; a drop below :data:`RESET_TOLERANCE_KWH` is jitter; a larger drop
        is a reset, after which the new device value counts from 0.
        """
        if raw_kwh is None:
            return 0.0
        last = self.raw.get(key)
        self.raw[key] = raw_kwh
        self.dirty = True
        if last is None:
            self.seed(key, raw_kwh)
            return 0.0
        delta = raw_kwh - last
        if delta < 0:
            if delta > -RESET_TOLERANCE_KWH:
                self.raw[key] = last  # keep the higher baseline: the device only jittered
                return 0.0
            self.resets += 1
            delta = raw_kwh
        self.values[key] = self.values.get(key, 0.0) + delta
        return delta

    def to_json(self) -> dict[str, Any]:
        """The state as a JSON document."""
        return {
            "format": FORMAT,
            "version": _VERSION,
            "source": self.source,
            "counters": dict(sorted(self.values.items())),
            "raw": dict(sorted(self.raw.items())),
            "ceiling": dict(sorted(self.ceiling.items())),
        }

    @classmethod
    def from_json(cls, doc: Any) -> EnergyCounters:
        """Parse :meth:`to_json` output; ValueError or TypeError naming what is wrong.

        The saved ceilings become this run's floors (a file without them, written by an
        earlier version, uses its counters: what it published was not bounded).
        """
        if not isinstance(doc, Mapping) or doc.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} file")
        if doc.get("version") != _VERSION:
            raise ValueError(f"unknown version {doc.get('version')!r}")
        source = doc.get("source", "")
        if not isinstance(source, str):
            raise TypeError("'source' is not a string")
        values = _kwh_map(doc, "counters")
        ceiling = _kwh_map(doc, "ceiling") if "ceiling" in doc else dict(values)
        return cls(values, _kwh_map(doc, "raw"), source, ceiling, dict(ceiling))


def _kwh_map(doc: Mapping[str, Any], key: str) -> dict[str, float]:
    items = doc.get(key)
    if not isinstance(items, Mapping):
        raise TypeError(f"{key!r} is not an object")
    out = {}
    for name, value in items.items():
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok or not math.isfinite(value) or value < 0:
            raise ValueError(f"{key}.{name} = {value!r} is not a kWh value >= 0")
        out[str(name)] = float(value)
    return out


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What :meth:`CounterFile.load` found: counters (None = start fresh) and a problem text."""

    counters: EnergyCounters | None
    problem: str = ""


class CounterFile:
    """One JSON file of counters; blocking I/O (call through ``anyio.to_thread``)."""

    def __init__(self, path: Path) -> None:
        """Counters live at ``path`` (created 0600; its directory 0700 on the first save)."""
        self.path = path
        self.tmp = path.with_name(path.name + ".tmp")
        self.aside = path.with_name(path.name + ".corrupt")

    def load(self) -> LoadResult:
        """Read the file; a missing file is a fresh start, a broken one is moved aside."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return LoadResult(None)
        except (OSError, UnicodeDecodeError) as err:
            return LoadResult(None, self._set_aside(f"cannot read {self.path}: {err}"))
        try:
            return LoadResult(EnergyCounters.from_json(json.loads(text)))
        except (TypeError, ValueError, RecursionError) as err:  # nested too deep: corrupt too
            return LoadResult(None, self._set_aside(f"{self.path} is corrupt ({err})"))

    def _set_aside(self, problem: str) -> str:
        try:
            os.replace(self.path, self.aside)
        except OSError as err:
            return f"{problem}; could not move it aside: {err}; starting from the device counters"
        return f"{problem}; kept as {self.aside.name}, starting from the device counters"

    def save(self, counters: EnergyCounters) -> None:
        """Write atomically (temp + fsync + rename + directory fsync); OSError on failure."""
        data = json.dumps(counters.to_json(), indent=1).encode("utf-8")
        make_private_dir(self.path.parent)
        with open_private(self.tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(self.tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
