"""Per-consumer runtime and energy counters: integration, rollover, atomic and corrupt files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from venus_ems.features.surplus_stats import MAX_GAP_S, ConsumerStats


def test_counts_what_ran_between_read_backs(tmp_path: Path):
    st = ConsumerStats(tmp_path / "pool.json", day="2026-07-01")
    st.advance(True, 750.0, 0.0)
    st.advance(True, 750.0, 60.0)
    st.advance(False, 0.0, 120.0)
    st.advance(False, 0.0, 180.0)
    assert st.runtime_today_s == 120.0
    assert st.energy_today_wh == pytest.approx(25.0)
    assert st.runtime_total_s == 120.0


def test_a_gap_counts_nothing(tmp_path: Path):
    st = ConsumerStats(tmp_path / "pool.json")
    st.advance(True, 1000.0, 0.0)
    st.advance(True, 1000.0, MAX_GAP_S + 1)  # the daemon was down: no invented energy
    assert st.runtime_total_s == 0.0
    assert st.energy_total_wh == 0.0


def test_day_rollover(tmp_path: Path):
    st = ConsumerStats(tmp_path / "pool.json", day="2026-07-01", runtime_today_s=50.0)
    st.energy_today_wh = 10.0
    st.roll("2026-07-02", "2026-07-01")
    assert (st.runtime_yesterday_s, st.energy_yesterday_wh) == (50.0, 10.0)
    assert (st.runtime_today_s, st.energy_today_wh) == (0.0, 0.0)
    st.roll("2026-07-05", "2026-07-04")  # days without a run: yesterday was nothing
    assert st.runtime_yesterday_s == 0.0


def test_saved_atomically_and_loaded_back(tmp_path: Path):
    path = tmp_path / "surplus" / "pool.json"
    st = ConsumerStats(path, day="2026-07-01", runtime_total_s=3600.0, energy_total_wh=750.0)
    st.save()
    assert not path.with_name("pool.json.tmp").exists()
    back, problem = ConsumerStats.load(path)
    assert problem == ""
    assert (back.day, back.runtime_total_s, back.energy_total_wh) == ("2026-07-01", 3600.0, 750.0)


@pytest.mark.parametrize(
    "text",
    ["{", "[]", json.dumps({"day": "x", "runtime_total_s": -1}), "x" * 5000],
)
def test_a_corrupt_file_is_moved_aside_and_counting_restarts(tmp_path: Path, text: str):
    path = tmp_path / "pool.json"
    path.write_text(text)
    st, problem = ConsumerStats.load(path)
    assert "moved aside" in problem
    assert st.runtime_total_s == 0.0
    assert path.with_name("pool.json.corrupt").exists()
