"""Fault modes of the emulated Wattpilot: what a websocket client sees in each.

================ ==========================================================================
mode             observable effect
================ ==========================================================================
ok               normal: login, full status, deltas every second, writes acknowledged
offline          the listening socket is closed and every open websocket dropped; new
                 connections are refused. Any other mode re-opens the same port
drop             every websocket is closed ``drop_after_s`` s (0) after its login
wrong_password   every ``auth`` is answered ``authError`` "Wrong password"
no_ack           writes are applied but never answered
slow_ack         writes are answered after ``ack_delay_s`` s (real time, default 5)
refuse           writes are answered ``success: false``
silent           after login nothing more is sent and nothing answered
no_full_status   no ``fullStatus`` after login until the client sends ``requestFullStatus``
garbage          a text frame that is not JSON
binary           a binary frame
bad_status       a ``deltaStatus`` whose ``nrg`` is a string
huge_numbers     a ``deltaStatus`` whose ``amp`` has ``digits`` (400) digits
deep_json        a frame nested ``depth`` (200 000) arrays deep
oversized        a text frame of ``flood_bytes`` (2 MiB)
================ ==========================================================================

The hostile frames (``garbage`` to ``oversized``) are sent right after the login and then at
every push (once a second) on every connection.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

from ...errors import ConfigError

__all__ = ["HOSTILE_MODES", "WATTPILOT_FAULT_MODES", "WATTPILOT_FAULT_PARAMS", "WattpilotFaults"]

WattpilotFaultMode = Literal[
    "ok",
    "offline",
    "drop",
    "wrong_password",
    "no_ack",
    "slow_ack",
    "refuse",
    "silent",
    "no_full_status",
    "garbage",
    "binary",
    "bad_status",
    "huge_numbers",
    "deep_json",
    "oversized",
]
WATTPILOT_FAULT_MODES: tuple[str, ...] = get_args(WattpilotFaultMode)
HOSTILE_MODES = frozenset(
    {"garbage", "binary", "bad_status", "huge_numbers", "deep_json", "oversized"}
)

WATTPILOT_FAULT_PARAMS: dict[str, tuple[type, float, float]] = {
    "ack_delay_s": (float, 0.0, 3600.0),
    "drop_after_s": (float, 0.0, 3600.0),
    "flood_bytes": (int, 1.0, float(1 << 30)),
    "depth": (int, 1.0, 10_000_000.0),
    "digits": (int, 1.0, 100_000.0),
}
"""Fault parameters a person may set: name -> (type, lowest, highest)."""


class WattpilotFaults:
    """The fault mode of one emulated Wattpilot, its parameters, and the connections seen."""

    modes = WATTPILOT_FAULT_MODES
    params = WATTPILOT_FAULT_PARAMS

    def __init__(self) -> None:
        """Start in mode ``ok``."""
        self._mode: str = "ok"
        self.ack_delay_s = 5.0
        self.drop_after_s = 0.0
        self.flood_bytes = 2 * 1024 * 1024
        self.depth = 200_000
        self.digits = 400
        self.requests = 0
        self._listeners: list[Callable[[], None]] = []

    def configure(self, mode: str | None = None, /, **params: object) -> None:
        """Set parameters, then the mode; ConfigError names a bad one and changes nothing."""
        checked: dict[str, float] = {}
        for name, raw in params.items():
            if name not in self.params:
                raise ConfigError(
                    f"fault parameter {name!r} is not one of {', '.join(self.params)}"
                )
            kind, lo, hi = self.params[name]
            if isinstance(raw, bool) or not isinstance(raw, (int, float)):
                raise ConfigError(f"fault parameter {name} must be a number, got {raw!r}")
            if not lo <= raw <= hi or (kind is int and raw != int(raw)):
                raise ConfigError(f"fault parameter {name} = {raw!r} is outside {lo:g}..{hi:g}")
            checked[name] = kind(raw)
        if mode is not None and mode not in self.modes:
            raise ConfigError(f"fault mode {mode!r} is not one of {', '.join(self.modes)}")
        for name, value in checked.items():
            setattr(self, name, value)
        if mode is not None:
            self.mode = mode

    def describe(self) -> dict[str, object]:
        """Mode, parameters, connections seen and the modes there are, as JSON-ready values."""
        out: dict[str, object] = {"mode": self._mode, "requests": self.requests}
        out.update({name: getattr(self, name) for name in self.params})
        out["modes"] = list(self.modes)
        return out

    @property
    def mode(self) -> str:
        """The current fault mode (see the module docstring)."""
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in self.modes:
            raise ConfigError(f"fault mode {value!r} is not one of {', '.join(self.modes)}")
        self._mode = value
        for listener in self._listeners:
            listener()

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after every mode change."""
        self._listeners.append(listener)
