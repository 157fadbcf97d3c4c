"""The device seam: features and the runtime use devices only through the protocols and registry.

A feature is written against ``PhaseMeter``/``PowerMeter``/``Switch`` (``devices.base``, also
re-exported by ``devices``) and opens its device with ``devices.registry``; importing a driver
family (``devices.shelly``, ``devices.blueprint``...) from outside ``devices/`` would tie the
feature to one product again.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "src" / "venus_ems"
SEAM = {"venus_ems.devices", "venus_ems.devices.base", "venus_ems.devices.registry"}
USERS = ("features", "runtime", "daemon.py", "cli.py", "web")


def imported_modules(source: str, rel: tuple[str, ...]) -> set[str]:
    """Absolute names of every module the source at ``rel`` imports (relative ones resolved)."""
    package = ["venus_ems", *rel[:-1]]
    out: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            out.add(module)
            # ``from ..devices import shelly`` imports the module venus_ems.devices.shelly
            out.update(f"{module}.{a.name}" for a in node.names)
    return out


def device_imports(source: str, rel: tuple[str, ...]) -> set[str]:
    """The ``venus_ems.devices...`` modules (not names inside them) that the source imports."""
    found = set()
    for name in imported_modules(source, rel):
        parts = name.split(".")
        if parts[:2] != ["venus_ems", "devices"]:
            continue
        target = SRC.joinpath(*parts[1:])
        if target.with_suffix(".py").exists() or (target / "__init__.py").exists():
            found.add(name)
    return found


def sources() -> list[Path]:
    out: list[Path] = []
    for user in USERS:
        root = SRC / user
        if root.suffix == ".py":
            out.append(root)
        else:
            out += sorted(root.rglob("*.py"))
    return [p for p in out if p.exists()]


def rel(path: Path) -> tuple[str, ...]:
    return path.relative_to(SRC).with_suffix("").parts


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(SRC)))
def test_only_the_seam_is_imported(path):
    assert device_imports(path.read_text(), rel(path)) <= SEAM


def test_the_meter_features_open_devices_through_the_registry():
    path = SRC / "features" / "meter.py"
    assert "venus_ems.devices.registry" in device_imports(path.read_text(), rel(path))


@pytest.mark.parametrize(
    "source",
    [
        "from ..devices.shelly import open_shelly\n",
        "from ..devices import blueprint\n",
        "from venus_ems.devices.shelly.gen2 import Gen2Shelly\n",
        "import venus_ems.devices.shelly\n",
    ],
)
def test_the_check_sees_a_driver_import(source):
    assert not device_imports(source, ("features", "probe")) <= SEAM


def test_the_check_lets_the_seam_pass():
    source = (
        "from ..devices import PhaseMeter, is_fresh\nfrom ..devices.registry import open_device\n"
    )
    assert device_imports(source, ("features", "probe")) == {
        "venus_ems.devices",
        "venus_ems.devices.registry",
    }
