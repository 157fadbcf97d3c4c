"""``venus-ems sim --report``: the stepped day, its KPIs against independent sums, the page."""

from __future__ import annotations

import json
import re

import pytest

from venus_ems.cli import main
from venus_ems.features.ess_control import ess_settings, tunables_for
from venus_ems.runtime.config import EssControlConfig, parse_config
from venus_ems.sim.report import adapters as report_adapters
from venus_ems.sim.report import make_report, simulate_day
from venus_ems.sim.report.svg import Line, line_chart, nice_ticks
from venus_ems.sim.scenarios import ScenarioDriver
from venus_ems.sim.stepped import CoreController, GridKpis, Run, run

ESS = "schema_version = 1\n[ess_control]\nenabled = true\n"
CAP = ESS + 'grid_target = "export_cap"\nexport_cap_w = 800.0\ntarget_w = -800.0\n'
START, SPAN = 7 * 3600.0, 900.0  # a quarter of an hour of a sunny morning: cheap, telling


def kpis(result) -> dict[str, float | None]:
    return {k.name: k.value for k in result.kpis}


def config(text: str):
    return parse_config(text)[0]


def test_energies_equal_an_independent_sum_over_the_same_day():
    result = simulate_day("cloudy-transients", None, start_s=START, duration_s=SPAN)
    driver = ScenarioDriver("cloudy-transients")
    site = driver.site
    while site.time < START:
        driver.step(1.0)
    pv0 = (site.solar.yield_kwh, site.pv_inverter.energy_kwh)
    imp = exp = 0.0
    for _ in range(round(SPAN)):
        driver.step(1.0)
        g = sum(site.grid_w)
        imp, exp = imp + max(g, 0.0) / 3600, exp + max(-g, 0.0) / 3600
    pv = site.solar.yield_kwh - pv0[0] + site.pv_inverter.energy_kwh - pv0[1]
    k = kpis(result)
    assert k["grid import"] == pytest.approx(imp / 1000, rel=1e-9)
    assert k["grid export"] == pytest.approx(exp / 1000, rel=1e-9)
    assert k["PV produced"] == pytest.approx(pv, rel=1e-6)
    assert len(result.minutes) == 15
    assert result.series["soc_pct"][-1] == pytest.approx(site.battery.soc, abs=0.5)
    assert result.notes == [
        "no config: Victron's own ESS loop alone (its grid setpoint is the aim)"
    ]


def test_the_ess_feature_runs_its_core_as_the_benchmark_does():
    cfg = config(ESS)
    result = simulate_day("summer-sunny", cfg, start_s=START, duration_s=SPAN)
    assert result.simulated == ["ess_control"]
    # the benchmark's harness with the feature's own settings: the same day, the same numbers
    table = EssControlConfig(enabled=True)
    settings = ess_settings(table, {t.name: t.default for t in tunables_for(table)}, 3)
    ctl = CoreController("ours", settings, 1.0)
    grid = GridKpis(result.aim_w)
    run(Run("summer-sunny", START, SPAN), ctl, [grid])
    k = kpis(result)
    assert k["grid export"] == pytest.approx(grid.export_wh / 1000, rel=1e-9)
    assert k["grid import"] == pytest.approx(grid.import_wh / 1000, rel=1e-9)
    assert k["tracking error |grid - aim|"] == pytest.approx(grid.mean_abs_error_w)
    assert k["setpoint commands"] == ctl.sender.commands > 0


def test_a_tuning_change_shows_in_the_kpis():
    zero = kpis(simulate_day("summer-sunny", config(ESS), start_s=START, duration_s=SPAN))
    cap = kpis(simulate_day("summer-sunny", config(CAP), start_s=START, duration_s=SPAN))
    assert cap["grid export"] > zero["grid export"] + 0.1  # ~800 W for a quarter hour
    assert cap["grid export"] < 0.25


def test_features_without_a_stepped_model_are_named_not_dropped(monkeypatch):
    text = (
        ESS + "[output_limiter]\nenabled = true\nlimit_w = 3000.0\n"
        "[settings_guard]\nenabled = true\n"
    )
    result = simulate_day("winter", config(text), start_s=START, duration_s=120)
    assert result.simulated == ["ess_control", "output_limiter"]
    assert "settings_guard: publishes or reports only, no effect on the day" in result.notes
    monkeypatch.delitem(report_adapters.ADAPTERS, "output_limiter")
    result = simulate_day("winter", config(text), start_s=START, duration_s=120)
    assert "output_limiter: acts on the site but has no stepped model yet; left out" in result.notes


def test_the_page_is_self_contained_and_escaped(tmp_path):
    cfg = config(ESS)
    page = make_report(
        "ev-charging",
        [("A", None, "stock <ESS>"), ("B", cfg, "ess.toml")],
        tmp_path,
        start_s=10 * 3600.0,  # the car arrives
        duration_s=300,
        parallel=False,
    )
    text = page.read_text()
    assert "<script" not in text
    assert not re.search(r"""(src|href)=|url\(|@import""", text)  # nothing fetched
    assert "stock &lt;ESS&gt;" in text
    assert text.count("<svg") >= 8  # A and B for power, SoC, phases, setpoint, consumers...
    assert "Consumers" in text  # the EV charges
    assert "B - A" in text
    data = json.loads((tmp_path / "kpis.json").read_text())
    assert set(data) == {"A", "B"}
    assert data["B"]["setpoint commands"]["value"] > 0


def test_svg_ticks_and_gaps():
    assert nice_ticks(-230.0, 4100.0) == [-2000.0, 0.0, 2000.0, 4000.0, 6000.0]
    assert nice_ticks(0.0, 100.0) == [0.0, 50.0, 100.0]
    assert nice_ticks(3.0, 3.0) == [3.0]
    svg = line_chart(
        "t <x>", "W", [0.0, 0.5, 1.0, 1.5, 2.0], [Line("a&b", "#000", [1.0, 2.0, None, 3.0, 4.0])]
    )
    assert svg.count("<polyline") == 2  # the gap splits the line
    assert "t &lt;x&gt;" in svg
    assert "a&amp;b" in svg


def test_cli_report_and_compare(tmp_path, capsys):
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text(ESS)
    b.write_text(CAP)
    out = tmp_path / "report"
    args = ["sim", "--scenario", "winter", "--start", "01:00", "--duration", "120", "--report"]
    assert main([*args, str(out), "--compare", str(a), str(b)]) == 0
    assert (out / "report.html").is_file()
    assert "report:" in capsys.readouterr().out
    assert main([*args, str(out), "--config", str(a)]) == 0
    assert main([*args, str(out)]) == 0  # Victron's ESS alone
    # mistakes are usage errors with a sentence, not tracebacks
    assert main(["sim", "--config", str(a)]) == 2
    assert main([*args, str(out), "--config", str(a), "--compare", str(a), str(b)]) == 2
    assert main([*args, str(out), "--config", str(tmp_path / "missing.toml")]) == 2
    b.write_text(ESS + "target_w = -5.0\n")  # zero export with a negative target
    assert main([*args, str(out), "--config", str(b)]) == 2
    assert main(["sim", "--scenario", "nope", "--report", str(out)]) == 2
    err = capsys.readouterr().err
    assert "missing.toml" in err
    assert "zero_export needs a target >= 0" in err
    assert "unknown scenario 'nope'" in err
