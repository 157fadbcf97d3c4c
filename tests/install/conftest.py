"""Fixtures for the install tests: bundles built from this tree, a GX-shaped root, svscan."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from venus_ems.install.bundle import build
from venus_ems.venus.daemon import PrivateBus

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


@pytest.fixture(scope="session")
def bundles(tmp_path_factory) -> dict[str, Path]:
    """Host bundles from this environment: the current version, a good and a broken upgrade."""
    tmp = tmp_path_factory.mktemp("bundles")
    out: dict[str, Path] = {}
    for key, version, broken in (
        ("v1", "0.1.0", False),
        ("v2", "0.1.1", False),
        ("bad", "0.1.2", True),
    ):
        repo = REPO if key == "v1" else make_repo(tmp, version, broken=broken)
        out[key] = build(
            "host",
            tmp / key,
            repo=repo,
            from_env=True,
            version=version,
            compresslevel=1,
            say=lambda _: None,
        )
    return out


@pytest.fixture(scope="module")
def sim_bus() -> Iterator[str]:
    """A private bus with a simulated GX on it (its own process)."""
    with PrivateBus() as bus:
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "gx_sim.py"), bus.address],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
            yield bus.address
        finally:
            proc.terminate()
            proc.wait(10)
            if proc.stdout is not None:
                proc.stdout.close()


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


@pytest.fixture
def svscan():
    """Start ``svscan ROOT/service`` (Debian's daemontools); stopped with its supervisors."""
    if shutil.which("svscan") is None:
        pytest.skip("daemontools is not installed (./dev setup installs it)")
    started: list[subprocess.Popen[bytes]] = []

    def start(root: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            ["svscan", str(root / "service")],
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        # svscan, the supervise processes and the services they run share this process group
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                continue
        _reap_group(proc.pid)


def _reap_group(pgid: int) -> None:
    """Kill what is left of the group we started (a daemon svscan's TERM did not reach)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def daemon_env(**extra: str) -> dict[str, str]:
    """Environment for svscan and the installer: no virtualenv, no image packages reused."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p
    )
    env["VENUS_EMS_SITE_DIRS"] = ""
    env.update(extra)
    return env
