"""``venus-ems doctor``: collect the facts (files, config, D-Bus), run the checks, print a screen.

Reads only; exit code 1 when a check failed (or warned, with ``strict``), else 0.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TextIO

import anyio

from ..errors import BusError
from ..venus import open_monitor
from . import manifest
from .checks import FAIL, WARN, Check, Facts, all_checks
from .installer import read_bundle
from .layout import Layout, find_installed
from .rclocal import MARKER
from .service import svstat
from .target import read_target

__all__ = ["collect", "doctor", "render"]


def _install_facts(f: Facts, layout: Layout) -> None:
    build = layout.current.resolve()
    try:
        version = read_bundle(build)["version"]
    except ValueError as err:
        f.installed, f.integrity = f"broken install in {layout.code}", [str(err)]
        return
    f.installed = f"{version} ({build.name}) in {layout.code}"
    f.integrity = manifest.verify(build)
    try:
        f.service = svstat(layout.service)
    except (OSError, FileNotFoundError):
        f.service = None
    f.hook = _hook_problem(layout)


def _hook_problem(layout: Layout) -> str | None:
    rc = layout.rc_local
    try:
        text = rc.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"{rc} is missing: venus-ems will not start after a firmware update"
    if MARKER not in text:
        return f"{rc} lacks the venus-ems line: run the installer again"
    if not os.access(rc, os.X_OK):
        return f"{rc} is not executable, so Venus OS does not run it at boot"
    if rc.with_name("rc.local.disabled").exists():
        return "Venus OS disabled the boot hooks (Settings > General > Modifications)"
    return None


def _config_facts(f: Facts, path: Path) -> None:
    from ..runtime.config import InvalidConfigError, load_config  # noqa: PLC0415

    f.config_path = str(path)
    try:
        config = load_config(path)
    except InvalidConfigError as err:
        lines = str(err).splitlines()
        f.config_error = "; ".join(lines[1:4] or lines[:1])
        return
    except (OSError, ValueError) as err:
        f.config_error = str(err)
        return
    f.enabled = config.enabled_features()
    f.ess_method = config.ess_control.method if config.ess_control.enabled else None


async def _bus_facts(f: Facts, address: str | None) -> None:
    try:
        with anyio.fail_after(20):
            async with open_monitor(address) as monitor:
                for state in monitor.services():
                    f.services[state.name] = dict(state.values)
    except (BusError, TimeoutError) as err:
        f.bus_error = f"cannot read the bus: {err or 'timed out'}"


def collect(*, root: Path, config: Path, bus_address: str | None) -> Facts:
    """Gather every fact the checks need."""
    f = Facts(target=read_target(root))
    layout = find_installed(root)
    if layout is not None:
        _install_facts(f, layout)
    _config_facts(f, config)
    try:
        f.service_dirs = sorted(p.name for p in (root / "service").iterdir())
    except OSError:
        f.service_dirs = []
    anyio.run(_bus_facts, f, bus_address)
    return f


def render(checks: list[Check], out: TextIO) -> None:
    """One line per check, then the verdict."""
    width = max((len(c.title) for c in checks), default=10)
    out.writelines(f"{c.level:<4}  {c.title:<{width}}  {c.text}\n" for c in checks)
    fails = sum(c.level == FAIL for c in checks)
    warns = sum(c.level == WARN for c in checks)
    verdict = "all good" if not (fails or warns) else f"{fails} failed, {warns} warnings"
    out.write(f"venus-ems doctor: {verdict}\n")


def doctor(
    *,
    root: Path,
    config: Path,
    bus_address: str | None,
    strict: bool = False,
    out: TextIO | None = None,
) -> int:
    """Print the report; 1 if a check failed (or warned, with ``strict``), else 0."""
    checks = all_checks(collect(root=root, config=config, bus_address=bus_address))
    render(checks, out or sys.stdout)
    bad = {FAIL, WARN} if strict else {FAIL}
    return 1 if any(c.level in bad for c in checks) else 0
