"""``venus-ems sim --report``: a whole simulated day, stepped, as one self-contained HTML page.

:func:`make_report` runs one configuration (or two, to compare) on a scenario with
:func:`~.day.simulate_day` and writes ``report.html`` (inline SVG plots, the KPI table) and
``kpis.json`` into a directory.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import queue
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

from ...runtime.config import Config
from .day import DayResult, Kpi, simulate_day
from .html import render_report

__all__ = ["DayResult", "Kpi", "Progress", "make_report", "simulate_day"]


Progress = Callable[[str, float], None]
"""Called with a run's label and the fraction done (0..1)."""


def make_report(
    scenario: str,
    configs: Sequence[tuple[str, Config | None, str]],
    out_dir: str | os.PathLike[str],
    *,
    start_s: float = 0.0,
    duration_s: float = 86400.0,
    progress: Progress | None = None,
    parallel: bool = True,
) -> Path:
    """Simulate each ``(label, config, source)`` and write the report; returns report.html's path.

    Two configurations run in two processes at once (``parallel``), one per core. Raises
    KeyError (unknown scenario), ValueError (a feature that does not fit the site) and OSError
    (the directory cannot be written).
    """
    jobs = [(scenario, config, label, start_s, duration_s) for label, config, _ in configs]
    if parallel and len(jobs) > 1 and (os.cpu_count() or 1) > 1:
        results = _in_processes(jobs, progress)
    else:
        results = [_simulate(job, progress) for job in jobs]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    page = out / "report.html"
    page.write_text(render_report(results, [s for _, _, s in configs]), encoding="utf-8")
    kpis = {r.label: {k.name: {"value": k.value, "unit": k.unit} for k in r.kpis} for r in results}
    (out / "kpis.json").write_text(json.dumps(kpis, indent=2) + "\n", encoding="utf-8")
    return page


_Job = tuple[str, Config | None, str, float, float]
_QUEUE: Any = None


def _simulate(job: _Job, progress: Progress | None) -> DayResult:
    scenario, config, label, start_s, duration_s = job

    def step(done: float) -> None:
        if progress is not None:
            progress(label, done)

    return simulate_day(
        scenario, config, label=label, start_s=start_s, duration_s=duration_s, progress=step
    )


def _worker_init(q: Any) -> None:
    global _QUEUE  # noqa: PLW0603 - one queue per worker process, set once
    _QUEUE = q


def _worker(job: _Job) -> DayResult:
    return _simulate(job, lambda label, done: _QUEUE.put((label, done)))


def _in_processes(jobs: Sequence[_Job], progress: Progress | None) -> list[DayResult]:
    ctx = multiprocessing.get_context("spawn")  # no state of this process leaks into the runs
    q = ctx.Queue()
    with ProcessPoolExecutor(len(jobs), ctx, initializer=_worker_init, initargs=(q,)) as pool:
        futures: list[Future[DayResult]] = [pool.submit(_worker, job) for job in jobs]
        while not all(f.done() for f in futures):
            try:
                label, done = q.get(timeout=0.2)
            except queue.Empty:
                continue
            if progress is not None:
                progress(label, done)
        return [f.result() for f in futures]
