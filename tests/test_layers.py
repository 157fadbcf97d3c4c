"""The layer rules of DESIGN.md: imports that must never exist, checked on the source with ast.

Layers, top to bottom (an arrow may only point down)::

    launch               a bundle's entry point: sets sys.path, then runs cli (nothing imports it)
    cli, daemon          wire everything together
    install              bundle, install/uninstall on a GX, doctor (used by cli only)
    features             one module per user-facing feature
    runtime              feature contract, supervisor, actuators, config, status, MQTT link
    control | devices | venus      pure cores | device drivers | the D-Bus layer
    clock, errors, callbacks    leaves: import nothing of ours

``sim`` (the simulated GX) sits beside ``cli``: it may use everything, nothing uses it.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "src" / "venus_ems"

LEAVES = {"clock", "errors", "callbacks", "__init__"}
_OURS = {
    "clock", "errors", "callbacks", "control", "venus", "devices", "runtime", "features", "sim",
    "web", "cli", "daemon", "install", "launch",
}  # fmt: skip
# layer -> layers it must never import (``venus_ems.<layer>``)
FORBIDDEN = {
    "clock": _OURS - {"clock"},
    "errors": _OURS - {"errors"},
    "callbacks": _OURS - {"callbacks"},
    "control": _OURS - {"control", "errors"},
    "venus": {
        "features",
        "control",
        "devices",
        "runtime",
        "sim",
        "web",
        "cli",
        "daemon",
        "install",
        "launch",
    },
    "devices": {
        "features",
        "venus",
        "runtime",
        "control",
        "sim",
        "web",
        "cli",
        "daemon",
        "install",
        "launch",
    },
    "runtime": {"features", "sim", "web", "cli", "daemon", "install", "launch"},
    "features": {"sim", "web", "cli", "daemon", "install", "launch"},
    "daemon": {"sim", "web", "cli", "install", "launch"},
    "web": {"devices", "cli", "sim", "install", "launch"},
    "install": {"features", "sim", "web", "cli", "daemon", "devices", "control", "launch"},
}


def imported_layers(source: str, rel: tuple[str, ...]) -> set[str]:
    """``venus_ems`` sub-packages imported by the module at ``rel`` (parts under the package)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(source)):
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


def layer_of(path: Path) -> str:
    """``runtime`` for runtime/x.py, ``clock`` for clock.py."""
    return path.relative_to(SRC).with_suffix("").parts[0]


def layer_imports() -> dict[str, set[str]]:
    """Layer -> the other layers its modules import."""
    graph: dict[str, set[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        layer = layer_of(path)
        rel = path.relative_to(SRC).with_suffix("").parts
        found = imported_layers(path.read_text(), rel) - {layer, "__init__"}
        graph.setdefault(layer, set()).update(found)
    return graph


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_forbidden_imports(layer):
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        if layer_of(path) != layer:
            continue
        rel = path.relative_to(SRC).with_suffix("").parts
        hits = imported_layers(path.read_text(), rel) & FORBIDDEN[layer]
        if hits:
            bad.append(f"{path.relative_to(SRC)} imports {sorted(hits)}")
    assert bad == []


def test_layers_form_no_cycle():
    graph = layer_imports()
    assert set(graph) >= {"runtime", "features", "control", "devices", "venus", "clock"}
    list(graphlib.TopologicalSorter(graph).static_order())  # raises CycleError on a cycle


def test_the_cycle_check_sees_a_cycle():
    cyclic = {"runtime": {"features"}, "features": {"runtime"}}
    with pytest.raises(graphlib.CycleError):
        list(graphlib.TopologicalSorter(cyclic).static_order())


def test_the_checker_sees_relative_and_absolute_imports():
    source = "from ..venus import codec\nimport venus_ems.runtime.clock\nfrom . import commands\n"
    assert imported_layers(source, ("control", "probe")) == {"venus", "runtime", "control"}
    assert imported_layers("from .clock import Clock\n", ("daemon",)) == {"clock"}
    assert imported_layers("from ...clock import Clock\n", ("devices", "x", "y")) == {"clock"}
