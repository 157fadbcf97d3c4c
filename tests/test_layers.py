"""The layer rules of DESIGN.md: imports that must never exist, checked on the source with ast."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "src" / "venus_ems"

# layer -> layers it must never import (``venus_ems.<layer>``)
FORBIDDEN = {
    "control": {"venus", "devices", "runtime", "features", "sim", "web", "cli"},
    "venus": {"features", "control", "devices", "sim", "web", "cli"},
    "devices": {"features", "venus", "sim", "web", "cli"},
    "runtime": {"sim", "web", "cli"},
    "features": {"sim", "web", "cli"},
    "web": {"devices", "cli"},
}


def imported_layers(path: Path) -> set[str]:
    """``venus_ems`` sub-packages a module imports (absolute or relative)."""
    rel = path.relative_to(SRC).with_suffix("").parts
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = list(rel[: len(rel) - node.level])
                module = [*base, *(node.module.split(".") if node.module else [])]
                names = [".".join(["venus_ems", *module])]
                if not node.module:
                    names = [".".join(["venus_ems", *base, a.name]) for a in node.names]
            else:
                names = [node.module or ""]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "venus_ems" and len(parts) > 1:
                out.add(parts[1])
    return out


def modules(layer: str) -> list[Path]:
    base = SRC / layer
    if base.is_dir():
        return sorted(base.rglob("*.py"))
    single = SRC / f"{layer}.py"
    return [single] if single.exists() else []


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_forbidden_imports(layer):
    bad = []
    for path in modules(layer):
        hits = imported_layers(path) & FORBIDDEN[layer]
        if hits:
            bad.append(f"{path.relative_to(SRC)} imports {sorted(hits)}")
    assert bad == []


def test_the_checker_sees_relative_and_absolute_imports(tmp_path):
    probe = SRC / "control" / "_probe_for_test.py"
    probe.write_text(
        "from ..venus import codec\nimport venus_ems.runtime.clock\nfrom . import commands\n"
    )
    try:
        assert imported_layers(probe) == {"venus", "runtime", "control"}
    finally:
        probe.unlink()
