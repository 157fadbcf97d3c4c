"""Tests that need the shared device vectors skip without them locally and fail under CI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
VECTOR_TESTS = "tests/devices/test_shelly_vectors.py"


def pytest_run(tmp_path: Path, *, vectors: Path, ci: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "VENUS_EMS_CI")}
    env["VENUS_EMS_VECTORS"] = str(vectors)
    if ci:
        env["VENUS_EMS_CI"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", "-rs", VECTOR_TESTS],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=120, check=False,
    )  # fmt: skip


def test_without_vectors_they_skip_locally(tmp_path):
    res = pytest_run(tmp_path, vectors=tmp_path / "absent", ci=False)
    assert res.returncode == 0, res.stdout + res.stderr
    assert " skipped" in res.stdout
    assert "not available at" in res.stdout


def test_without_vectors_ci_fails_before_any_test(tmp_path):
    res = pytest_run(tmp_path, vectors=tmp_path / "absent", ci=True)
    assert res.returncode == 4, res.stdout + res.stderr  # a usage error: nothing ran
    assert "the shared vectors not available" in res.stderr
    assert "CI needs them" in res.stderr


def test_a_missing_vector_fails_its_test_under_ci(tmp_path):
    (tmp_path / "vectors").mkdir()  # a folder without the files the tests name
    res = pytest_run(tmp_path, vectors=tmp_path / "vectors", ci=True)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "CI needs it" in res.stdout
    assert " skipped" not in res.stdout
