"""The report page: one self-contained HTML file (inline CSS and SVG, no script, no network).

One configuration, or two side by side (``--compare``): the KPI table (with the difference B - A
and which side is better), then each chart for A and B on the same scale. A chart appears only
when the site has something to show in it (consumers, curtailment, phases).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from ... import __version__
from .day import DayResult, Kpi
from .svg import Line, line_chart

__all__ = ["render_report"]

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1b1f24;
background:#f6f8fa}
main{max-width:1340px;margin:0 auto;padding:1rem}
h1{font-size:1.35rem;margin:.2rem 0}h2{font-size:1.05rem;margin:1.2rem 0 .4rem}
.sub{color:#57606a}.card{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:.8rem}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{padding:.25rem .7rem;border-bottom:1px solid #d8dee4;text-align:right}
th:first-child,td:first-child{text-align:left}
.better{color:#1a7f37;font-weight:600}.worse{color:#cf222e;font-weight:600}
.charts{display:grid;grid-template-columns:repeat(var(--cols),minmax(0,1fr));gap:.8rem}
svg.chart{width:100%;height:auto;background:#fff;border:1px solid #d0d7de;border-radius:6px}
svg .title{font-size:12px;font-weight:600;fill:#1b1f24}svg .legend{font-size:11px;fill:#1b1f24}
svg .ytick{font-size:10px;fill:#57606a;text-anchor:end}
svg .xtick{font-size:10px;fill:#57606a;text-anchor:middle}
svg .grid{stroke:#eaeef2;stroke-width:1}svg .zero{stroke:#8c959f;stroke-width:1}
ul{margin:.3rem 0;padding-left:1.2rem}
@media (max-width:800px){.charts{grid-template-columns:1fr}}
"""

_PHASE_COLORS = ("#8250df", "#bf3989", "#0550ae")
_CHARTS: list[tuple[str, str, list[tuple[str, str, str]], bool]] = [
    (
        "Power",
        "W",
        [
            ("pv_w", "PV", "#d4a72c"),
            ("load_w", "loads", "#0969da"),
            ("grid_w", "grid (+ import)", "#8250df"),
            ("battery_w", "battery (+ charging)", "#1a7f37"),
        ],
        False,
    ),
    ("Battery state of charge", "%", [("soc_pct", "SoC", "#1a7f37")], False),
    (
        "Grid per phase",
        "W",
        [(f"grid_l{i}_w", f"L{i}", c) for i, c in enumerate(_PHASE_COLORS, start=1)],
        False,
    ),
    (
        "ESS setpoint and grid",
        "W",
        [("setpoint_w", "setpoint in force", "#cf222e"), ("grid_w", "grid", "#8250df")],
        False,
    ),
    (
        "Consumers",
        "W",
        [
            ("ev_w", "EV charger", "#0969da"),
            ("heater_w", "water heater", "#cf222e"),
            ("micro_w", "micro-inverters (AC)", "#d4a72c"),
        ],
        True,
    ),
    (
        "PV and curtailment",
        "W",
        [
            ("pv_dc_w", "DC PV", "#d4a72c"),
            ("pv_ac_w", "AC PV", "#bc4c00"),
            ("curtailed_dc_w", "DC not harvested", "#6e7781"),
            ("curtailed_ac_w", "AC curtailed", "#cf222e"),
        ],
        True,
    ),
]
_RELAY_COLORS = ("#1a7f37", "#8250df", "#57606a", "#bf3989")


def _present(values: Sequence[float | None] | None, need_activity: bool) -> bool:
    if not values:
        return False
    known = [v for v in values if v is not None]
    return bool(known) and (not need_activity or max(abs(v) for v in known) > 1.0)


def _lines(result: DayResult, spec: list[tuple[str, str, str]], title: str) -> list[Line]:
    items = list(spec)
    if title == "Consumers":
        relays = sorted(k for k in result.series if k.startswith("relay:"))
        items += [(k, k[6:-2], _RELAY_COLORS[i % len(_RELAY_COLORS)]) for i, k in enumerate(relays)]
    lines = [
        Line(label, color, result.series[key])
        for key, label, color in items
        if key in result.series
    ]
    if title == "ESS setpoint and grid" and result.aim_w is not None:
        lines.append(Line("aim", "#57606a", [result.aim_w] * len(result.minutes), dashed=True))
    return lines


def _charts(results: Sequence[DayResult]) -> list[str]:
    out = []
    for title, unit, spec, activity in _CHARTS:
        per_result = []
        for r in results:
            lines = [ln for ln in _lines(r, spec, title) if _present(ln.values, activity)]
            if title == "Grid per phase" and r.phases < 2:
                lines = []
            per_result.append(lines)
        if not any(per_result):
            continue
        values = [v for lines in per_result for ln in lines for v in ln.values if v is not None]
        lo, hi = min([*values, 0.0]), max([*values, 0.0])
        if title == "Battery state of charge":
            lo, hi = 0.0, 100.0
        for r, lines in zip(results, per_result, strict=True):
            name = f"{title} — {r.label}" if len(results) > 1 else title
            hours = [m / 60.0 for m in r.minutes]
            out.append(line_chart(name, unit, hours, lines, y_range=(lo, hi)))
    return out


def _fmt(k: Kpi) -> str:
    if k.value is None:
        return "-"
    return f"{k.value:,.{k.digits}f}" + (f" {k.unit}" if k.unit else "")


def _kpi_table(results: Sequence[DayResult]) -> str:
    head = "".join(f"<th>{escape(r.label)}</th>" for r in results)
    if len(results) == 2:
        head += "<th>B - A</th>"
    rows = []
    for i, k in enumerate(results[0].kpis):
        cells = "".join(f"<td>{_fmt(r.kpis[i])}</td>" for r in results)
        if len(results) == 2:
            a, b = results[0].kpis[i].value, results[1].kpis[i].value
            if a is None or b is None:
                cells += "<td>-</td>"
            else:
                diff = b - a
                cls = ""
                if k.better and abs(diff) >= 0.5 * 10 ** (-k.digits):
                    good = diff < 0 if k.better == "lower" else diff > 0
                    cls = ' class="better"' if good else ' class="worse"'
                cells += f"<td{cls}>{diff:+,.{k.digits}f}</td>"
        rows.append(f"<tr><td>{escape(k.name)}</td>{cells}</tr>")
    return (
        f"<table><thead><tr><th>KPI</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _about(r: DayResult, source: str) -> str:
    items = [f"<li>{escape(n)}</li>" for n in r.notes]
    sim = ", ".join(r.simulated) or "none"
    return (
        f'<div class="card"><b>{escape(r.label)}</b> <span class="sub">{escape(source)}</span>'
        f"<br>features acting on the day: {escape(sim)}"
        + (f"<ul>{''.join(items)}</ul>" if items else "")
        + "</div>"
    )


def render_report(results: Sequence[DayResult], sources: Sequence[str]) -> str:
    """The whole HTML document for one or two results (``sources`` names their configs)."""
    first = results[0]
    start_h = first.start_s / 3600
    span = f"{int(start_h):02d}:{int(start_h * 60) % 60:02d} + {first.duration_s / 3600:g} h"
    abouts = "".join(_about(r, s) for r, s in zip(results, sources, strict=True))
    charts = "\n".join(_charts(results))
    cpu = " + ".join(f"{r.cpu_s:.1f}" for r in results)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>venus-ems report: {escape(first.scenario)}</title>
<style>{_CSS}</style></head>
<body><main>
<h1>venus-ems simulation report: {escape(first.scenario)}</h1>
<p class="sub">{escape(first.description)}; {escape(span)}, stepped at 1 s; a command reaches
the physics 1 s after it is sent. Grid + = import, battery + = charging, PV + = producing.</p>
<div class="charts" style="--cols:{len(results)}">{abouts}</div>
<h2>KPIs</h2>
<div class="card">{_kpi_table(results)}
<p class="sub">Tracking error: mean |grid - aim| over the seconds where the battery and the Multi
could reach the aim; avoidable import: import above the aim they could have covered; "moved
against ESS rules": discharged below the SoC floor or charged beyond DVCC's share.</p></div>
<h2>The day</h2>
<div class="charts" style="--cols:2">
{charts}
</div>
<p class="sub">venus-ems {escape(__version__)}; simulated in {cpu} CPU s.</p>
</main></body></html>
"""
