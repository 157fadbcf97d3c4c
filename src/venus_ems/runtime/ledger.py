"""The output ledger: what venus-ems has written and not yet put back, kept in the state dir.

One small JSON file per output (``<state_dir>/outputs/<name>.json``) exists exactly while the
output may hold a value of ours other than its safe one. It records the target (enough to rebuild
the writer), the last two values written (a kill may fall between the ledger and the bus write),
the safe value of that run, when it was written (UNIX s) and the D-Bus daemon's id: a volatile
output (hub4 override, mode-3 setpoint) cannot outlive its bus, so an entry from another boot is
void. A persisted target (localsettings) has no bus id: it survives reboots, and so does its entry.

At start, a value in force that equals one of the recorded values is ours and is put back to the
safe value; any other value was written by someone else since (Dynamic ESS, the user) and is left
alone. Files are created and removed durably (temporary file, fsync, rename, directory fsync);
value updates rewrite the file in place without fsync (a process death keeps the page cache, and
volatile outputs do not survive a power loss anyway), except for persisted targets.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["LedgerEntry", "OutputLedger", "same_value"]

_LOG = logging.getLogger(__name__)
_RECORD = 1024  # bytes: in-place updates overwrite one fixed-size block
_MAX_FILE = 64 * 1024  # a bigger file is not ours: refuse it instead of reading it


def _norm(value: Any) -> Any:
    """A JSON-comparable form: tuples as lists, ints as floats (D-Bus may change the width)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    raise TypeError(f"an output value must be a number, bool, str, None or a sequence: {value!r}")


def same_value(a: Any, b: Any) -> bool:
    """True when two output values are equal once normalised (250 == 250.0, tuple == list)."""
    try:
        return bool(_norm(a) == _norm(b))
    except TypeError:
        return False


@dataclass(frozen=True)
class LedgerEntry:
    """One output that may still hold a value of ours."""

    name: str
    target: dict[str, Any]
    values: tuple[Any, ...]
    safe: Any
    at: float
    bus_id: str | None

    def ours(self, value: Any) -> bool:
        """True when ``value`` is one we wrote."""
        return any(same_value(value, v) for v in self.values)


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) + ".json"


def _check(obj: Any) -> LedgerEntry:
    """A LedgerEntry from parsed JSON; ValueError or TypeError when it is not one."""
    if not isinstance(obj, dict):
        raise TypeError("not an object")
    name, target, values = obj.get("name"), obj.get("target"), obj.get("values")
    at, bus_id = obj.get("at"), obj.get("bus_id")
    if not isinstance(name, str) or not isinstance(target, dict):
        raise TypeError("name or target missing")
    if not isinstance(values, list) or not 1 <= len(values) <= 2:
        raise ValueError("values missing")
    if not isinstance(at, (int, float)) or not math.isfinite(at):
        raise ValueError("at missing")
    if bus_id is not None and not isinstance(bus_id, str):
        raise ValueError("bad bus_id")
    for v in (*values, obj.get("safe")):
        _norm(v)  # TypeError for anything that is not an output value
    return LedgerEntry(name, target, tuple(values), obj.get("safe"), float(at), bus_id)


class OutputLedger:
    """Entries in ``directory``; OSError from every method that writes (the caller logs it)."""

    def __init__(self, directory: Path, *, bus_id: str | None = None) -> None:
        """Nothing is created until the first entry; ``bus_id``: the D-Bus daemon's id."""
        self.directory = directory
        self.bus_id = bus_id
        self._recorded: dict[str, LedgerEntry] = {}

    def _path(self, name: str) -> Path:
        return self.directory / _file_name(name)

    # ----------------------------------------------------------------- reading

    def entries(self) -> list[LedgerEntry]:
        """Every readable entry; unreadable files are reported and removed (they are useless)."""
        try:
            files = sorted(self.directory.glob("*.json"))
        except OSError as err:
            _LOG.warning("output ledger %s unreadable: %s", self.directory, err)
            return []
        out = []
        for file in files:
            try:
                if file.stat().st_size > _MAX_FILE:
                    raise ValueError("too large")
                entry = _check(json.loads(file.read_text(encoding="utf-8")))
            except (OSError, ValueError, TypeError, RecursionError) as err:
                _LOG.warning("output ledger: %s is unusable (%s); removing it", file, err)
                with contextlib.suppress(OSError):
                    file.unlink()
                continue
            out.append(entry)
        return out

    def get(self, name: str) -> LedgerEntry | None:
        """The entry of ``name`` (as this process last recorded it, else from disk)."""
        if name in self._recorded:
            return self._recorded[name]
        return next((e for e in self.entries() if e.name == name), None)

    # ----------------------------------------------------------------- writing

    def record(
        self,
        name: str,
        target: dict[str, Any],
        value: Any,
        previous: Any,
        safe: Any,
        *,
        at: float,
        persistent: bool = False,
    ) -> None:
        """Note that ``value`` is about to be written (``previous`` may still be in force)."""
        old = self._recorded.get(name)
        values = (value,) if previous is None or same_value(previous, value) else (value, previous)
        if old is not None and old.values == values and old.target == target:
            return
        entry = LedgerEntry(name, target, values, safe, at, None if persistent else self.bus_id)
        text = json.dumps(
            {
                "name": name,
                "target": target,
                "values": [_plain(v) for v in values],
                "safe": _plain(safe),
                "at": at,
                "bus_id": entry.bus_id,
            }
        )
        path = self._path(name)
        if old is None or persistent or len(text) >= _RECORD:
            self._replace(path, text)
        else:
            self._overwrite(path, text)
        self._recorded[name] = entry

    def clear(self, name: str) -> None:
        """The output is back to its safe value, or someone else's: forget it (durably)."""
        self._recorded.pop(name, None)
        path = self._path(name)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        _sync_dir(self.directory)

    def _replace(self, path: Path, text: str) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        data = text.encode().ljust(_RECORD)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        _sync_dir(self.directory)

    def _overwrite(self, path: Path, text: str) -> None:
        # One write of one block at offset 0: a process death leaves the old or the new record
        # (the kernel completes a single-page write), never a mix. No fsync: see the module doc.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.pwrite(fd, text.encode().ljust(_RECORD), 0)
        finally:
            os.close(fd)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _sync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
