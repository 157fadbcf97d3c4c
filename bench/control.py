"""Control benchmark: ours against stock Victron ESS, seed B and a look-ahead bound.

Usage: python bench/control.py [--quick] [--scenario NAME ...] [--aims W,W,...]
                               [--dead-time S] [--jobs N] [--markdown]

Every controller runs whole days of every scenario on the simulated physics
(venus_ems.sim.stepped, 1 s steps, a dead time between a write and its effect, the meter's
noise and quantisation as input, DVCC serving the MPPTs first). References (control_refs.py):
stock ESS with the external meter (feed-in allowed / limited to 0 W, Victron's default
50 W setpoint), seed B's loop, and a look-ahead bound. Each controller's aim is swept
(--aims) to compare at matched mean grid: the headline is exported Wh at the import of stock
ESS limited to 0 W, and import at its export. Then constant loads, 1 kW steps and the
output limiter (control_checks.py). ``--quick``: 10:00-14:00 and two aims. Ours aims
below 25 W with the fixed target (zero export never aims below its dead band).
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import sys
import time
from dataclasses import dataclass
from multiprocessing import Pool

from control_checks import (
    CoreController,
    constant_load,
    core_settings,
    label,
    limiter_section,
    make,
    reversals,
    step_table,
    synthetic,
)
from venus_ems.control import EssMethod
from venus_ems.sim.scenarios import get_scenario, list_scenarios
from venus_ems.sim.stepped import GridKpis, Run, run

__all__ = ["AIM", "CoreController", "constant_load", "core_settings", "synthetic"]

DAY = 86400.0
AIM = 25.0  # our default aim: zero export, the 25 W dead band above 0 W
DEFAULT_AIM = {"stock": 50.0, "stock0": 50.0}  # Victron's default AcPowerSetPoint
OVR, M3 = EssMethod.HUB4_OVERRIDE, EssMethod.MODE3
KINDS = (("stock", OVR), ("stock0", OVR), ("seedb", M3), ("ours", M3), ("ours", OVR), ("bound", M3))


@dataclass(frozen=True)
class Job:
    scenario: str
    kind: str
    method: EssMethod
    aim_w: float
    start_s: float
    duration_s: float
    dead_time_s: float


def run_job(job: Job) -> dict[str, object]:
    sc = get_scenario(job.scenario)
    phases = sc.site.multi.phases
    fixed = job.aim_w < AIM  # zero export never aims below its dead band
    ctl = make(job.kind, job.method, job.aim_w, job.dead_time_s, phases, sc.series(), fixed=fixed)
    k = GridKpis(job.aim_w)
    t0 = time.process_time()
    run(Run(job.scenario, job.start_s, job.duration_s), ctl, [k])
    mean, p90, events = k.settle_stats()
    cmds, rev = reversals(ctl.sender.history)
    return {
        "job": job,
        "export": k.export_wh,
        "import": k.import_wh,
        "export_ph": tuple(k.export_phase_wh),
        "import_ph": tuple(k.import_phase_wh),
        "mean_w": (k.import_wh - k.export_wh) * 3600.0 / max(k.seconds, 1.0),
        "avoid": k.avoidable_import_wh,
        "mae": k.mean_abs_error_w,
        "settle": (mean, p90, events),
        "cmds": ctl.sender.commands or cmds,
        "rev": rev,
        "pv_writes": getattr(ctl, "pv_writes", 0),
        "curt_ac": k.curtailed_ac_wh,
        "curt_dc": k.curtailed_dc_wh,
        "cpu": time.process_time() - t0,
    }


NOT_A_BOUND = {
    "ev-charging": "the EV charger's ramps are not in its look-ahead",
    "micro-inverters": "the micro-inverters' output is not in its look-ahead",
}
"""Scenarios where the look-ahead controller is no bound: ours may beat it, so no ratio."""


def interp(points: list[tuple[float, float]], x: float) -> tuple[float, bool]:
    """y at ``x`` on the piecewise-linear curve (sorted by x); True if extrapolated."""
    pts = sorted(points)
    if len(pts) == 1:
        return pts[0][1], x != pts[0][0]
    outside = x < pts[0][0] or x > pts[-1][0]
    for (x0, y0), (x1, y1) in itertools.pairwise(pts):
        if x <= x1 or (x1, y1) == pts[-1]:
            if x1 == x0:
                return y0, outside
            return max(y0 + (y1 - y0) * (x - x0) / (x1 - x0), 0.0), outside
    return pts[-1][1], True


SMALL_WH = 10.0  # exports below this on both sides are a tie: nothing to win


def pareto(curve: list[dict], imp0: float, exp0: float) -> str:
    """``yes``: a point of ``curve`` (or between two) exports less at <= 1.02 x ``imp0``."""
    pts = sorted((r["import"], r["export"]) for r in curve)
    best = min((e for i, e in pts if i <= 1.02 * imp0), default=None)
    if pts[0][0] <= 1.02 * imp0 <= pts[-1][0]:
        e, _ = interp(pts, 1.02 * imp0)
        best = e if best is None else min(best, e)
    if best is None:
        return "NO (no aim imports that little)"
    if best < SMALL_WH and exp0 < SMALL_WH:
        return "tie (both export < 10 Wh)"
    return "yes" if best < exp0 else "NO"


def fmt(v: tuple[float, bool]) -> str:
    return f"{v[0]:.0f}{'*' if v[1] else ''}"


HEAD = (
    f"{'controller':<17}{'aim':>5}{'export':>8}{'import':>8}{'mean':>6}{'avoid':>7}{'|e|':>6}"
    f"{'settle':>10}{'cmds':>6}{'rev':>5}{'curt AC/DC':>12}  export per phase / import per phase"
)
UNITS = (
    f"{'':<17}{'W':>5}{'Wh':>8}{'Wh':>8}{'W':>6}{'Wh':>7}{'W':>6}{'mean/p90':>10}{'':>6}{'':>5}"
    f"{'Wh':>12}  Wh"
)


def row(r: dict) -> str:
    j: Job = r["job"]
    m, p90, _ = r["settle"]
    exp_ph = "/".join(f"{v:.0f}" for v in r["export_ph"])
    imp_ph = "/".join(f"{v:.0f}" for v in r["import_ph"])
    settle = f"{m:.1f}/{p90:.0f}"
    curt = f"{r['curt_ac']:.0f}/{r['curt_dc']:.0f}"
    return (
        f"{label(j.kind, j.method):<17}{j.aim_w:>5.0f}{r['export']:>8.0f}{r['import']:>8.0f}"
        f"{r['mean_w']:>6.0f}{r['avoid']:>7.0f}{r['mae']:>6.0f}{settle:>10}"
        f"{r['cmds']:>6}{r['rev']:>5}{curt:>12}  {exp_ph} | {imp_ph}"
    )


def scenario_report(name: str, rs: list[dict], span: str) -> tuple[list[str], list[str], dict]:
    """Lines, markdown lines and the targets' verdicts for one scenario."""
    by: dict[tuple[str, str], list[dict]] = {}
    for r in rs:
        by.setdefault((r["job"].kind, r["job"].method.value), []).append(r)
    out = [f"\n== {name} ({span})", HEAD, UNITS]
    md = [
        f"\n**{name}** ({span}), at each controller's default aim\n",
        "| controller | aim W | export Wh | import Wh | mean grid W | avoidable import Wh | "
        "mean abs(grid - aim) W | settle mean/p90 s | commands | reversals | curtailed AC/DC Wh |"
        " export per phase Wh |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for kind, method in KINDS:
        group = sorted(by.get((kind, method.value), []), key=lambda r: r["job"].aim_w)
        default = DEFAULT_AIM.get(kind, AIM)
        for r in group:
            out.append(row(r))
            if r["job"].aim_w == default or (
                default not in [g["job"].aim_w for g in group] and r is group[0]
            ):
                m, p90, _ = r["settle"]
                md.append(
                    f"| {label(kind, method)} | {r['job'].aim_w:.0f} | {r['export']:.0f} | "
                    f"{r['import']:.0f} | {r['mean_w']:.0f} | {r['avoid']:.0f} | {r['mae']:.0f} "
                    f"| {m:.1f}/{p90:.0f} | {r['cmds']} | {r['rev']} | "
                    f"{r['curt_ac']:.0f}/{r['curt_dc']:.0f} | "
                    + "/".join(f"{v:.0f}" for v in r["export_ph"])
                    + " |"
                )
    ref = next(
        (r for r in by.get(("stock0", OVR.value), []) if r["job"].aim_w == DEFAULT_AIM["stock0"]),
        None,
    )
    verdict: dict[str, str] = {}
    if ref is None:
        return out, md, verdict
    imp0, exp0 = ref["import"], ref["export"]
    out.append(
        f"  matched grid vs stock ESS 0 W at {ref['job'].aim_w:.0f} W (import {imp0:.0f} Wh, "
        f"export {exp0:.0f} Wh); * = outside the aim sweep, extrapolated:"
    )
    out.append(f"  {'controller':<17}{'export @ its import':>22}{'import @ its export':>22}")
    md.append(
        f"\nMatched grid vs stock ESS 0 W (import {imp0:.0f} Wh, export {exp0:.0f} Wh): "
        "export at that import / import at that export"
    )
    curves = {}
    for kind, method in KINDS:
        group = by.get((kind, method.value), [])
        if not group:
            continue
        e_at_i = interp([(r["import"], r["export"]) for r in group], imp0)
        i_at_e = interp([(r["export"], r["import"]) for r in group], exp0)
        curves[(kind, method)] = group
        out.append(f"  {label(kind, method):<17}{fmt(e_at_i):>22}{fmt(i_at_e):>22}")
        md.append(f"- {label(kind, method)}: {fmt(e_at_i)} Wh / {fmt(i_at_e)} Wh")
    for method in (M3, OVR):
        ours = curves.get(("ours", method))
        bound = curves.get(("bound", M3))
        if not ours:
            continue
        verdict[f"pareto_{method.value}"] = pareto(ours, imp0, exp0)
        line = f"  ours ({method.value}): Pareto-dominates stock ESS 0 W: "
        line += verdict[f"pareto_{method.value}"]
        if bound and name in NOT_A_BOUND:
            line += f"; no bound on this day ({NOT_A_BOUND[name]})"
            verdict[f"bound_{method.value}"] = "n/a"
        elif bound:
            own = next((r for r in ours if r["job"].aim_w == AIM), ours[0])
            b, out_of = interp([(r["import"], r["export"]) for r in bound], own["import"])
            if own["export"] < SMALL_WH and b < SMALL_WH:
                ratio = "tie"
            else:
                ratio = f"{own['export'] / b:.2f}" if b > 0 else "inf"
            line += (
                f"; at its import {own['import']:.0f} Wh it exports {own['export']:.0f} Wh, "
                f"the bound {b:.0f}{'*' if out_of else ''} Wh: ratio {ratio} (target <= 1.3)"
            )
            verdict[f"bound_{method.value}"] = ratio
        out.append(line)
        md.append(line.strip())
    return out, md, verdict


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10:00-14:00 and aims 0, 25 W")
    ap.add_argument("--scenario", action="append", choices=list_scenarios())
    ap.add_argument("--aims", help="comma-separated aims W (default 0,25,50)")
    ap.add_argument("--dead-time", type=float, default=1.0, help="command -> effect delay (s)")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--markdown", action="store_true", help="also print the tables as markdown")
    args = ap.parse_args()
    names = args.scenario or list_scenarios()
    start, dur = (10 * 3600.0, 4 * 3600.0) if args.quick else (0.0, DAY)
    default_aims = "0,25" if args.quick else "0,25,50"
    aims = [float(a) for a in (args.aims or default_aims).split(",")]
    d = args.dead_time
    jobs = [
        Job(n, kind, method, aim, start, dur, d)
        for n in names
        for kind, method in KINDS
        for aim in aims
    ]
    t0 = time.perf_counter()
    print(f"venus-ems control benchmark — {' '.join(sys.argv[1:]) or '(whole days)'}")
    print(
        f"machine: {platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; dead time {d:g} s, meter 1 Hz (noise 5 W, 1 W "
        f"steps); aims {', '.join(f'{a:g}' for a in aims)} W; {len(jobs)} day runs"
    )
    with Pool(args.jobs) as pool:
        results = pool.map(run_job, jobs, chunksize=1)
    md: list[str] = []
    verdicts = {}
    span = "10:00-14:00" if args.quick else "whole day"
    for n in names:
        lines, mdl, verdict = scenario_report(
            n, [r for r in results if r["job"].scenario == n], span
        )
        print("\n".join(lines))
        md.extend(mdl)
        verdicts[n] = verdict
    print("\nTargets per scenario (Pareto vs stock ESS 0 W; export / bound at matched import):")
    for n, v in verdicts.items():
        print(f"  {n:<20} " + ", ".join(f"{k} {x}" for k, x in v.items()))
    for line in (*constant_load(d), *step_table(d), *limiter_section(args.quick, d)):
        print(line)
    cpu = sum(float(r["cpu"]) for r in results)
    print(f"\nwall {time.perf_counter() - t0:.0f} s, day runs {cpu:.0f} CPU s on {args.jobs} jobs")
    if args.markdown:
        print("\n".join(md))


if __name__ == "__main__":
    main()
