"""The stepped harness: controllers against the simulated physics, as fast as the CPU goes.

Moved here from ``bench/`` so that ``venus-ems sim --report`` and the benchmarks use the same
step loop, controllers and KPI maths: ``harness`` (delay line, step loop), ``controllers`` (our
ESS core and output limiter as the features run them), ``kpis`` (export, import, tracking error,
settle time, limits).
"""

from __future__ import annotations

from .controllers import (
    HUB4_MODE,
    CoreController,
    FloorLatch,
    LimiterController,
    conversion_window,
    inverter_output_w,
    site_inputs,
)
from .harness import Combined, Controller, Delayed, DelayLine, Observer, Run, Write, drive, run
from .kpis import GridKpis, LimiterKpis

__all__ = [
    "HUB4_MODE",
    "Combined",
    "Controller",
    "CoreController",
    "DelayLine",
    "Delayed",
    "FloorLatch",
    "GridKpis",
    "LimiterController",
    "LimiterKpis",
    "Observer",
    "Run",
    "Write",
    "conversion_window",
    "drive",
    "inverter_output_w",
    "run",
    "site_inputs",
]
