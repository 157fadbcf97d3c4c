"""What the water heater keeps across restarts: mode, boost end, daily-minimum day, counters.

``water_heater.json`` in the state dir holds the mode chosen on the GX (it wins over the
configured ``mode`` until the configured one changes), the end of a boost (UNIX s) and the day
the daily minimum was last met. It is written, atomically, only when one of them changes (a user
action or once a day), never in a loop. The energy (kWh) and switch counters live in
``water_heater_counters.json`` (:class:`~.counters.CounterFile`: never going back, not even
after ``kill -9``). A file that cannot be read is ignored with a message, never trusted.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..runtime.files import make_private_dir, open_private

__all__ = ["MAX_FILE", "HeaterMemory", "load_memory", "save_memory"]

MAX_FILE = 4096
_MODES = ("off", "auto", "on")


@dataclass(frozen=True)
class HeaterMemory:
    """Mode (and the configured mode it was chosen under), boost end (UNIX s), guard day."""

    mode: str = "auto"
    config_mode: str = "auto"
    boost_until: float | None = None
    guard_met_day: int | None = None


def _parse(doc: Any) -> HeaterMemory:
    if not isinstance(doc, dict):
        raise TypeError("not an object")
    mode, config_mode = doc.get("mode"), doc.get("config_mode")
    if mode not in _MODES or config_mode not in _MODES:
        raise ValueError(f"mode {mode!r} / config_mode {config_mode!r} not one of {_MODES}")
    until = doc.get("boost_until")
    if until is not None and (
        isinstance(until, bool) or not isinstance(until, (int, float)) or not math.isfinite(until)
    ):
        raise ValueError(f"boost_until {until!r} is not a time")
    day = doc.get("guard_met_day")
    if day is not None and (isinstance(day, bool) or not isinstance(day, int)):
        raise ValueError(f"guard_met_day {day!r} is not a day number")
    return HeaterMemory(str(mode), str(config_mode), until, day)


def load_memory(path: Path, config_mode: str) -> tuple[HeaterMemory, str]:
    """The memory at ``path`` (a fresh one in ``config_mode`` if absent or bad) and a problem."""
    fresh = HeaterMemory(config_mode, config_mode)
    try:
        if path.stat().st_size > MAX_FILE:
            return fresh, f"{path} is larger than {MAX_FILE} bytes: ignored"
        mem = _parse(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return fresh, ""
    except (OSError, UnicodeDecodeError, ValueError, TypeError, RecursionError) as err:
        return fresh, f"{path} ignored: {err}"
    if mem.config_mode != config_mode:  # the configured mode was changed: it wins
        return HeaterMemory(config_mode, config_mode, mem.boost_until, mem.guard_met_day), ""
    return mem, ""


def save_memory(path: Path, mem: HeaterMemory) -> None:
    """Write atomically (temp, fsync, rename); OSError on failure. Blocking: use a thread."""
    make_private_dir(path.parent)
    tmp = path.with_name(path.name + ".tmp")
    with open_private(tmp, "wb") as f:
        f.write(json.dumps(asdict(mem)).encode())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
