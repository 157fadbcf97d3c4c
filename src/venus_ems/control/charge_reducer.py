"""Charge-current reducer: keep the battery's charge current at or below a SoC formula.

Pure core. The limit comes from a user formula over ``soc`` (e.g. ``max(100 - soc, 30)`` A) in
the one safe expression language (:mod:`venus_ems.control.expression`: simpleeval behind an AST
whitelist, never ``eval``), checked at config time over SoC 0..100. The excess charge current
is fed to the grid instead: the reducer asks ESS control for a *negative* grid-target shift
(more export) and integrates it: ``shift -= gain x (I - limit) x V`` each step, never above 0
(it only reduces), never below ``-max_export_w``; with the current below the limit the shift
relaxes back towards 0 by the same rule. A, V, W (shift: + = more import); SoC in %.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .expression import Expression

__all__ = ["ReducerInputs", "ReducerSettings", "SocFormula", "next_shift_w"]


class SocFormula:
    """A charge-current limit A as a function of SoC %; ValueError when it does not check."""

    def __init__(self, text: str) -> None:
        """Parse (the safe expression language) and check at SoC 0, 1 … 100: 0..10000 A."""
        self.text = text
        self._expr = Expression(text, frozenset({"soc"}))
        if self._expr.is_condition:
            raise ValueError(f"{text!r} is a condition; the limit must be an amount of A")
        for soc in range(101):
            value = self.limit_a(float(soc))
            if not 0.0 <= value <= 10_000.0:
                raise ValueError(f"{text!r} gives {value!r} A at SoC {soc} % (need 0..10000)")

    def limit_a(self, soc_pct: float) -> float:
        """The limit at ``soc_pct`` A; ValueError for an expression that fails or is no number."""
        return self._expr.evaluate({"soc": soc_pct})


@dataclass(frozen=True)
class ReducerSettings:
    """Integral gain (1/s per step ratio), export bound W, dead band A."""

    gain: float = 0.5
    max_export_w: float = 5000.0
    dead_band_a: float = 1.0


@dataclass(frozen=True)
class ReducerInputs:
    """Battery current A (+ = charging), voltage V, SoC %; None = unknown or stale."""

    current_a: float | None
    voltage_v: float | None
    soc_pct: float | None


def next_shift_w(
    inputs: ReducerInputs, shift_w: float, formula: SocFormula, settings: ReducerSettings
) -> float | None:
    """The next grid-target shift W (<= 0), or None to release (unknown inputs)."""
    i, v, soc = inputs.current_a, inputs.voltage_v, inputs.soc_pct
    if i is None or v is None or soc is None:
        return None
    if not (math.isfinite(i) and math.isfinite(v) and math.isfinite(soc)) or v <= 0:
        return None
    excess = i - formula.limit_a(min(max(soc, 0.0), 100.0))
    if abs(excess) <= settings.dead_band_a:
        excess = 0.0
    shift = shift_w - settings.gain * excess * v
    return min(max(shift, -settings.max_export_w), 0.0)
