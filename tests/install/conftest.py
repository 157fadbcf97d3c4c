"""Fixtures for the install tests: bundles built from this tree, a simulated GX, svscan."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from gx_helpers import HERE, REPO, make_repo

from venus_ems.install.bundle import build
from venus_ems.venus.daemon import PrivateBus


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
