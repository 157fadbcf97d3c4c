"""control/ stays pure: no I/O layers, no clock, no logging, no anyio, no eval (an AST check)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import venus_ems.control

PACKAGE = Path(venus_ems.control.__file__).parent

FORBIDDEN_MODULES = (
    "anyio",
    "asyncio",
    "logging",
    "time",
    "datetime",
    "threading",
    "socket",
    "subprocess",
    "random",
    "os",
    "aiohttp",
    "aiomqtt",
    "dbus_fast",
    "pymodbus",
    "venus_ems.venus",
    "venus_ems.devices",
    "venus_ems.runtime",
    "venus_ems.features",
    "venus_ems.sim",
    "venus_ems.web",
    "venus_ems.cli",
    "venus_ems.daemon",
    "venus_ems.clock",
)
FORBIDDEN_CALLS = ("eval", "exec", "compile", "__import__", "open")


def _resolve(node: ast.ImportFrom, module: str) -> str:
    """Absolute module name of a (possibly relative) ``from`` import inside venus_ems.control."""
    if node.level == 0:
        return node.module or ""
    parts = ["venus_ems", "control", module][: 3 - node.level]
    if node.module:
        parts.append(node.module)
    return ".".join(parts)


def violations(source: str, module: str = "x") -> list[str]:
    """Every forbidden import or call in ``source`` (a module of venus_ems.control)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node, module)
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in FORBIDDEN_CALLS
        ):
            found.append(f"call {node.func.id}() at line {node.lineno}")
        bad_names = [
            name
            for name in names
            if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN_MODULES)
        ]
        if bad_names:
            found.append(f"import {bad_names[0]} at line {node.lineno}")
    return found


def test_checker_catches_bad_imports() -> None:
    bad = (
        "import anyio\n"
        "from time import monotonic\n"
        "from ..clock import Clock\n"
        "from venus_ems.venus import bus\n"
        "import logging.handlers\n"
        "x = eval('1')\n"
    )
    found = violations(bad)
    assert len(found) == 6, found
    assert violations("from .commands import Decision\nimport math\n") == []


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_module_is_pure(path: Path) -> None:
    assert violations(path.read_text(), path.stem) == []


def test_every_module_is_checked() -> None:
    names = {p.stem for p in PACKAGE.glob("*.py")}
    assert {"grid_target", "modes", "output_limiter", "baseline", "phases"} <= names
