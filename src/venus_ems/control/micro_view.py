"""One inverter as a micro-inverter decision sees it: limits, dead time, what it delivers.

Pure helpers of :mod:`.micro`: :class:`InverterView` combines an inverter's settings, the core's
memory of it and what the DTU and the writer report; :func:`observe` notes when the DTU shows a
new limit in effect (and learns the dead time from it); :func:`lost` tells a limit the inverter
no longer has. Powers in W (+ = producing), times in s on the caller's clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .commands import SetInverterLimit
from .micro_model import InverterSample, InverterSettings, InverterState

__all__ = ["InverterView", "lost", "observe", "tolerance_w"]


def tolerance_w(cfg: InverterSettings) -> float:
    """How close an output must be to its limit to count as there (W)."""
    return max(10.0, 0.02 * cfg.max_power_w)


@dataclass
class InverterView:
    """One inverter during a decision."""

    cfg: InverterSettings
    st: InverterState
    sample: InverterSample | None
    index: int
    available: bool = False

    @property
    def dead_s(self) -> float:
        learned = self.st.dead_s
        if not self.cfg.learn_dead_time or learned is None:
            return self.cfg.dead_time_s
        return learned

    @property
    def to_w(self) -> float:
        pct = self.st.commanded_pct
        return self.cfg.watts(self.cfg.safe if pct is None else pct)

    @property
    def from_w(self) -> float:
        pct = self.st.from_pct
        return self.cfg.watts(self.cfg.max_pct if pct is None else pct)

    def confirmed(self) -> bool:
        s = self.sample
        return (
            s is not None
            and s.confirmed_pct == self.st.commanded_pct
            and s.confirmed_at is not None
            and s.confirmed_at >= self.st.commanded_at
        )

    def settle_end(self) -> float:
        """When the last command is fully in effect (inf: not confirmed yet)."""
        if not self.confirmed():
            return math.inf
        end = self.st.commanded_at + self.dead_s
        if self.st.applied_at is not None:
            end = min(end, self.st.applied_at)
        return end

    def saturated_w(self, end: float) -> float | None:
        """The output a fresh reading shows when it stays below the limit (DC-limited)."""
        s = self.sample
        if s is None or s.ac_power_w is None or s.data_at < end:
            return None
        if s.ac_power_w < self.to_w - tolerance_w(self.cfg):
            return s.ac_power_w
        return None

    def interval(self, t: float) -> tuple[float, float, float]:
        """(lowest, highest output at time ``t``, output once settled) in W."""
        end = self.settle_end()
        if t >= end:
            sat = self.saturated_w(end)
            value = self.to_w if sat is None else sat
            return value, value, value
        lo, hi = sorted((self.from_w, self.to_w))
        return lo, hi, self.to_w

    def command(self, pct: int, now: float, *, resend: bool = False) -> SetInverterLimit:
        was = self.st.commanded_pct
        start = was if was is not None else self._reported()
        self.st = replace(
            self.st, commanded_pct=pct, commanded_at=now, from_pct=start, applied_at=None
        )
        return SetInverterLimit(self.cfg.serial, self.cfg.watts(pct), resend=resend)

    def _reported(self) -> float | None:
        s = self.sample
        return None if s is None else s.limit_pct


def observe(inv: InverterView) -> None:
    """Note when the DTU shows the new output, and learn the dead time from it."""
    st, s, cfg = inv.st, inv.sample, inv.cfg
    if s is None or st.commanded_pct is None or st.applied_at is not None:
        return
    if s.ac_power_w is None or s.data_at <= st.commanded_at or not inv.confirmed():
        return
    tol = tolerance_w(cfg)
    if abs(s.ac_power_w - inv.to_w) > tol:
        return
    dead = st.dead_s
    if st.from_pct is not None and abs(inv.from_w - inv.to_w) >= 3 * tol:
        seen = s.data_at - st.commanded_at
        dead = seen if dead is None else 0.7 * dead + 0.3 * seen
        dead = min(max(dead, 0.5 * cfg.dead_time_s), 3.0 * cfg.dead_time_s)
    inv.st = replace(st, applied_at=s.data_at, dead_s=dead)


def lost(inv: InverterView, now: float) -> bool:
    """The DTU reports another limit than the one it confirmed (restart, another tool)."""
    s = inv.sample
    pct = inv.st.commanded_pct
    if s is None or pct is None or not inv.confirmed() or s.limit_pct is None:
        return False
    return s.limit_state == "Ok" and abs(s.limit_pct - pct) >= 1.5
