"""Mode 3: does the Multi follow its AC-input setpoints? Writes, renewals and passthrough.

The Multi drops mode-3 setpoints that are not renewed (about 60 s on mk2-dbus) and falls back
to passthrough: it then converts nothing, whatever it is asked. Three problems are reported:

* the setpoint writes fail (the actuator's last error);
* the setpoints were last written more than ``stalled_after`` refresh periods ago;
* **passthrough**: ``readings`` new readings in a row in which every judged phase converts no
  more than ``idle_w`` (its idle loss). A phase is judged once it has been asked, for at least
  the effect delay, to convert ``asked_w`` or more in one direction (the setpoint may change
  meanwhile). Small setpoints are never judged: the Multi is inaccurate there.

Conversion per phase is AC-in - AC-out (W, + = charging); what a setpoint asks is setpoint -
AC-out. The decision carries no command: its reasons are the problems found.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .commands import Decision, check_finite
from .inputs import MultiSample
from .reasons import Reason, not_renewed, passthrough, write_failing

__all__ = ["Mode3WatchInputs", "Mode3WatchSettings", "PassthroughState", "decide", "observe"]


@dataclass(frozen=True, slots=True)
class Mode3WatchSettings:
    """Refresh period and effect delay (s); what counts as asked and as idle (W per phase)."""

    refresh_s: float
    effect_delay_s: float
    asked_w: float = 200.0
    idle_w: float = 60.0
    readings: int = 3
    stalled_after: float = 3.0

    def __post_init__(self) -> None:
        """Validate (ValueError naming the field)."""
        for name in ("refresh_s", "effect_delay_s", "asked_w", "idle_w", "stalled_after"):
            value = getattr(self, name)
            check_finite(name, value)
            if value < 0 or (name in ("refresh_s", "stalled_after") and value == 0):
                raise ValueError(f"{name} = {value}: expected a positive number")
        if self.idle_w >= self.asked_w:
            raise ValueError(f"idle_w = {self.idle_w}: expected below asked_w = {self.asked_w}")
        if (
            isinstance(self.readings, bool)
            or not isinstance(self.readings, int)
            or self.readings < 1
        ):
            raise ValueError(f"readings = {self.readings!r}: expected an integer >= 1")


@dataclass(frozen=True, slots=True)
class Mode3WatchInputs:
    """The Multi's reading, the setpoints in force (W per phase, + = import) and write status.

    ``write_error`` is the last write's error (None = it succeeded); ``last_write_at`` when the
    setpoints were last written (s on the decision clock, None = never).
    """

    multi: MultiSample | None
    setpoints_w: tuple[float, ...] | None
    write_error: str | None = None
    last_write_at: float | None = None


@dataclass(frozen=True, slots=True)
class PassthroughState:
    """Readings in a row not following, the last reading's time, and what each phase is asked.

    ``asked`` per phase: 1 = charge, -1 = invert, 0 = not judged; ``asked_since`` when that
    began (s).
    """

    count: int = 0
    last_at: float | None = None
    active: bool = False
    asked: tuple[int, ...] = ()
    asked_since: tuple[float, ...] = ()


def observe(
    state: PassthroughState,
    multi: MultiSample | None,
    setpoints_w: tuple[float, ...] | None,
    settings: Mode3WatchSettings,
) -> PassthroughState:
    """The passthrough state after one reading; the same state for a reading already seen.

    Incomplete readings, no setpoints or a phase count that differs keep the state as it is.
    """
    if (
        multi is None
        or multi.ac_in_w is None
        or multi.ac_out_w is None
        or setpoints_w is None
        or len(setpoints_w) != len(multi.ac_in_w)
        or multi.measured_at == state.last_at
    ):
        return state
    s, at = settings, multi.measured_at
    wanted = [sp - out for sp, out in zip(setpoints_w, multi.ac_out_w, strict=True)]
    asked = tuple(0 if abs(c) < s.asked_w else (1 if c > 0 else -1) for c in wanted)
    old, since = state.asked, state.asked_since
    if len(old) != len(asked):
        old, since = (0,) * len(asked), (at,) * len(asked)
    since = tuple(t if a == o else at for a, o, t in zip(asked, old, since, strict=True))
    measured = [i - o for i, o in zip(multi.ac_in_w, multi.ac_out_w, strict=True)]
    judged = [p for p, a in enumerate(asked) if a != 0 and at - since[p] >= s.effect_delay_s]
    idle = bool(judged) and all(abs(measured[p]) <= s.idle_w for p in judged)
    count = state.count + 1 if idle else 0
    return PassthroughState(count, at, count >= s.readings, asked, since)


def decide(
    inputs: Mode3WatchInputs, state: PassthroughState, settings: Mode3WatchSettings, now: float
) -> Decision[PassthroughState]:
    """The problems with the mode-3 setpoints now, as reasons (none = all well).

    Raises ValueError for a non-finite ``now``; the state passed in is never modified.
    """
    if not math.isfinite(now):
        raise ValueError(f"now = {now!r}: expected a finite number")
    problems: list[Reason] = []
    if inputs.write_error is not None:
        problems.append(write_failing(inputs.write_error))
    last = inputs.last_write_at
    if last is not None and now - last > settings.stalled_after * settings.refresh_s:
        problems.append(not_renewed(now - last))
    nxt = observe(state, inputs.multi, inputs.setpoints_w, settings)
    if nxt.active:
        problems.append(passthrough())
    return Decision((), nxt, tuple(problems))
