"""Runtime (s) and energy (Wh) of one surplus consumer: today, yesterday, total; kept on disk.

Integrated from the consumer's read-back (on/off and draw) between polls; a gap longer than
:data:`MAX_GAP_S` (the daemon was down, the device silent) counts nothing rather than guessing.
The day rolls over at local midnight (es-ESS used UTC). The file is JSON written atomically
(temp file, fsync, rename, directory fsync): after ``kill -9`` or a power cut it holds the
previous or the new state, never a mix; a corrupt file is moved aside and counting restarts
from 0 (reported). What accrued since the last save (at most ``save_interval_s``) is lost.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..runtime.files import make_private_dir, open_private

__all__ = ["MAX_GAP_S", "ConsumerStats"]

MAX_GAP_S = 120.0
_KEYS = (
    "runtime_today_s",
    "runtime_yesterday_s",
    "runtime_total_s",
    "energy_today_wh",
    "energy_yesterday_wh",
    "energy_total_wh",
)


@dataclass
class ConsumerStats:
    """Counters of one consumer; ``day`` is the local ISO date ``today`` refers to."""

    path: Path
    day: str = ""
    runtime_today_s: float = 0.0
    runtime_yesterday_s: float = 0.0
    runtime_total_s: float = 0.0
    energy_today_wh: float = 0.0
    energy_yesterday_wh: float = 0.0
    energy_total_wh: float = 0.0
    dirty: bool = False
    _last: tuple[float, bool, float] | None = field(default=None, repr=False)

    def advance(self, on: bool, draw_w: float, now: float) -> None:
        """A new read-back at ``now`` (monotonic s): count the interval since the last one."""
        last = self._last
        self._last = (now, on, max(0.0, draw_w) if math.isfinite(draw_w) else 0.0)
        if last is None:
            return
        t0, was_on, w0 = last
        dt = now - t0
        if not 0 < dt <= MAX_GAP_S:
            return
        if was_on:
            self.runtime_today_s += dt
            self.runtime_total_s += dt
        wh = w0 * dt / 3600.0
        self.energy_today_wh += wh
        self.energy_total_wh += wh
        self.dirty = self.dirty or was_on or wh > 0

    def roll(self, today: str, yesterday: str) -> None:
        """Start a new day when ``today`` (ISO date) differs from :attr:`day`."""
        if today == self.day:
            return
        if self.day == yesterday:
            self.runtime_yesterday_s, self.energy_yesterday_wh = (
                self.runtime_today_s,
                self.energy_today_wh,
            )
        elif self.day:
            self.runtime_yesterday_s = self.energy_yesterday_wh = 0.0
        self.runtime_today_s = self.energy_today_wh = 0.0
        self.day = today
        self.dirty = True

    def to_json(self) -> dict[str, Any]:
        """The document saved."""
        return {"format": "venus-ems surplus consumer", "day": self.day} | {
            k: round(getattr(self, k), 3) for k in _KEYS
        }

    @classmethod
    def load(cls, path: Path) -> tuple[ConsumerStats, str]:
        """The counters at ``path`` (fresh when missing) and a problem text ('' when fine)."""
        try:
            if path.stat().st_size > 4096:
                raise ValueError("too large")
            doc = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(doc, dict) or not isinstance(doc.get("day"), str):
                raise ValueError("not a counter document")  # noqa: TRY004
            values: dict[str, float] = {}
            for k in _KEYS:
                v = doc.get(k)
                if isinstance(v, bool) or not isinstance(v, int | float):
                    raise ValueError(f"{k} missing")  # noqa: TRY004
                if not (math.isfinite(v) and v >= 0):
                    raise ValueError(f"{k} = {v}")
                values[k] = float(v)
            day = doc["day"][:10]
        except FileNotFoundError:
            return cls(path), ""
        except (OSError, ValueError, UnicodeDecodeError, RecursionError) as err:
            aside = path.with_name(path.name + ".corrupt")
            try:
                os.replace(path, aside)
            except OSError:
                pass
            return cls(path), f"{path} unusable ({err}): moved aside, counting from 0"
        stats = cls(path, day)
        for k, v in values.items():
            setattr(stats, k, v)
        return stats, ""

    def save(self) -> None:
        """Write atomically; OSError on failure (blocking: call through a thread)."""
        data = json.dumps(self.to_json()).encode("utf-8")
        make_private_dir(self.path.parent)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open_private(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        self.dirty = False
