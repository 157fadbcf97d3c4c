"""Victron service names are spelt in one place: ``venus_ems.venus.names``."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import venus_ems
from venus_ems.venus import names

SRC = Path(venus_ems.__file__).parent
SPELT = re.compile(r"^com\.victronenergy\.[a-z0-9_]+(\.[A-Za-z0-9_]+)?$")
# D-Bus interface names are not service names
INTERFACES = {"com.victronenergy.BusItem", "com.victronenergy.Settings"}
# monitor.py is being changed by another work package (issue 9, bounded inputs); until it moves
# to names, it may keep exactly these and no more
NOT_YET = {
    "venus/monitor.py": [
        "com.victronenergy.",
        "com.victronenergy.settings",
        "com.victronenergy.platform",
        "com.victronenergy.vecan",
    ]
}


def literals(path: Path) -> list[str]:
    """Service names written as string literals in ``path`` (docstrings are prose, not code)."""
    tree = ast.parse(path.read_text())
    docs = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docs
        and (SPELT.match(node.value) or node.value == names.PREFIX)
        and node.value not in INTERFACES
    ]


def test_the_checker_finds_a_spelt_name(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text('"""com.victronenergy.grid in prose is fine."""\nX = "com.victronenergy.hub4"\n')
    assert literals(bad) == ["com.victronenergy.hub4"]


def test_no_module_spells_a_service_name() -> None:
    found = {
        rel: sorted(spelt)
        for path in sorted(SRC.rglob("*.py"))
        if (rel := path.relative_to(SRC).as_posix()) != "venus/names.py"
        and (spelt := literals(path))
    }
    assert found == {rel: sorted(spelt) for rel, spelt in NOT_YET.items()}


def test_service_name() -> None:
    assert names.service_name(names.GRID, "venusems_m1") == "com.victronenergy.grid.venusems_m1"
    assert names.service_name(names.VENUSEMS, "timetogo") == "com.victronenergy.venusems.timetogo"
    for cls, suffix in [
        ("grid", "x"),
        (names.GRID + ".a", "x"),
        (names.GRID, ""),
        (names.GRID, "x."),
    ]:
        with pytest.raises(ValueError, match="expected"):
            names.service_name(cls, suffix)
