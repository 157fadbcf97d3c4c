"""Helpers for the install tests: build inputs, a GX-shaped root, a clean environment."""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def clean_python() -> str:
    """The interpreter this virtualenv was made from: no venus-ems, no dependencies."""
    base = getattr(sys, "_base_executable", sys.executable)
    return os.path.realpath(base)


def make_repo(tmp: Path, version: str, *, broken: bool = False) -> Path:
    """A copy of this repository's build inputs with another version (and a daemon that fails)."""
    repo = tmp / f"repo-{version}"
    shutil.copytree(
        REPO / "src" / "venus_ems",
        repo / "src" / "venus_ems",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    for name in ("config.example.toml",):
        shutil.copyfile(REPO / name, repo / name)
    shutil.copytree(REPO / "release", repo / "release")
    text = (REPO / "pyproject.toml").read_text()
    (repo / "pyproject.toml").write_text(
        re.sub(r'(?m)^version = ".*"$', f'version = "{version}"', text, count=1)
    )
    init = repo / "src" / "venus_ems" / "__init__.py"
    init.write_text(re.sub(r'__version__ = ".*"', f'__version__ = "{version}"', init.read_text()))
    if broken:
        daemon = repo / "src" / "venus_ems" / "daemon.py"
        daemon.write_text(
            daemon.read_text().replace(
                "    clock = clock or RealClock()\n",
                '    raise RuntimeError("deliberately broken build")\n',
                1,
            )
        )
    return repo


def make_gx_root(root: Path, venus: str = "v3.70", rc_local: str | None = None) -> Path:
    """A directory shaped like a GX: version file, machine, /data, /service, /var/log."""
    (root / "opt" / "victronenergy").mkdir(parents=True)
    (root / "opt" / "victronenergy" / "version").write_text(f"{venus}\nVictron Energy\n20261201\n")
    (root / "etc" / "venus").mkdir(parents=True)
    (root / "etc" / "venus" / "machine").write_text("einstein\n")
    (root / "data").mkdir()
    (root / "service").mkdir()
    (root / "var" / "log").mkdir(parents=True)
    if rc_local is not None:
        (root / "data" / "rc.local").write_text(rc_local)
        (root / "data" / "rc.local").chmod(0o755)
    return root


def daemon_env(**extra: str) -> dict[str, str]:
    """Environment for svscan and the installer: no virtualenv, no image packages reused."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p
    )
    env["VENUS_EMS_SITE_DIRS"] = ""
    env.update(extra)
    return env
