"""Install, kill -9, boot, upgrade, roll back and uninstall under Debian's daemontools.

Each test builds a directory shaped like a GX (``/data``, ``/service``, ``/var/log``, the Venus
version file), runs ``svscan`` on its ``service`` directory and installs a bundle built from
this tree with the self-extracting file, the way a user does, into that root. The daemon runs
with the clean interpreter this virtualenv was made from (nothing but the bundle importable)
against a simulated GX on a private bus.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from gx_helpers import clean_python, daemon_env, make_gx_root

from venus_ems.errors import BusError
from venus_ems.install.layout import find_installed
from venus_ems.install.service import supervised, svstat
from venus_ems.venus.bus import call, connect
from waiting import until

pytestmark = [pytest.mark.slow, pytest.mark.anyio]

USER_RC = "#!/bin/sh\n# the user's own boot script\necho hello > /dev/null\nexit 0\n"


def write_config(root: Path, bus: str) -> Path:
    home = root / "data" / "venus-ems"
    home.mkdir(parents=True, exist_ok=True)
    config = home / "config.toml"
    config.write_text(
        "schema_version = 1\n[general]\n"
        f'bus_address = "{bus}"\nstate_dir = "{home / "state"}"\n'
        "[settings_guard]\nenabled = true\n"
    )
    return config


async def run_bundle(bundle: Path, root: Path, bus: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        "sh",
        str(bundle),
        "--root",
        str(root),
        "--python",
        clean_python(),
        "--bus",
        bus,
        "--timeout",
        "40",
        "--settle",
        "2",
    ]
    return await anyio.to_thread.run_sync(
        lambda: subprocess.run(
            cmd, check=False, capture_output=True, text=True, env=daemon_env(), timeout=240
        )
    )


async def published_version(bus: str) -> str | None:
    """``/Version`` of com.victronenergy.venusems, None when nobody publishes it."""
    conn = await connect(bus)
    try:
        body = await call(
            conn,
            "com.victronenergy.venusems",
            "/Version",
            "com.victronenergy.BusItem",
            "GetValue",
            timeout=2,
        )
    except BusError:
        return None
    finally:
        conn.disconnect()
    return body[0].value


async def until_version(bus: str, want: str | None, timeout: float = 20.0) -> None:
    with anyio.fail_after(timeout):
        while await published_version(bus) != want:
            await anyio.sleep(0.1)


def tree(root: Path) -> dict[str, str]:
    """Every path under root with its content hash (links: their target)."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            out[rel] = "-> " + os.readlink(path)
        elif path.is_file():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            out[rel] = "dir"
    return out


async def test_install_runs_under_supervise_restarts_after_kill9_and_after_a_reboot(
    bundles, sim_bus, svscan, tmp_path
):
    root = make_gx_root(tmp_path / "gx", "v3.70", rc_local=USER_RC)
    config = write_config(root, sim_bus)
    config_bytes = config.read_bytes()
    svscan(root, daemon_env())

    done = await run_bundle(bundles["v1"], root, sim_bus)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "venus-ems 0.1.0 is running" in done.stdout

    layout = find_installed(root)
    assert layout is not None
    assert layout.apps  # Venus OS 3.70: the /data/apps layout
    assert layout.code == root / "data" / "apps" / "available" / "venus-ems"
    assert (root / "data" / "apps" / "enabled" / "venus-ems").resolve() == layout.code
    assert os.readlink(root / "service" / "venus-ems") == str(layout.service)
    assert config.read_bytes() == config_bytes  # the user's config is never rewritten
    rc = (root / "data" / "rc.local").read_text()
    assert rc.startswith(USER_RC.removesuffix("exit 0\n"))  # the user's lines are untouched
    assert rc.splitlines()[-1] == "exit 0"  # and ours comes before their exit
    assert "venus-ems boot hook" in rc.splitlines()[-2]
    assert await published_version(sim_bus) == "0.1.0"
    first = svstat(layout.service)
    assert first.up
    assert first.pid

    # supervise restarts a killed daemon
    os.kill(first.pid, signal.SIGKILL)
    await until(lambda: (s := svstat(layout.service)).up and s.pid != first.pid, timeout=20)
    again = svstat(layout.service)
    await until_version(sim_bus, "0.1.0")
    log = (root / "var" / "log" / "venus-ems" / "current").read_text()
    assert "venus-ems running" in log  # the daemon's own log lines reach multilog

    # the same bundle again: nothing changes, the daemon is not restarted
    same = await run_bundle(bundles["v1"], root, sim_bus)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "already installed and running" in same.stdout
    assert svstat(layout.service).pid == again.pid
    assert (root / "data" / "rc.local").read_text() == rc

    # a reboot (or firmware update) rebuilds /service in RAM; rc.local links us again
    (root / "service" / "venus-ems").unlink()
    for directory in (layout.service, layout.service / "log"):
        subprocess.run(["svc", "-dx", str(directory)], check=True)
    await until(lambda: not supervised(layout.service) and not supervised(layout.service / "log"))
    subprocess.run([str(root / "data" / "rc.local")], check=True, env=daemon_env())
    assert (root / "service" / "venus-ems").is_symlink()
    await until(lambda: svstat(layout.service).up, timeout=20)
    await until_version(sim_bus, "0.1.0")


async def test_upgrade_keeps_config_and_state_and_a_broken_build_is_rolled_back(
    bundles, sim_bus, svscan, tmp_path
):
    root = make_gx_root(tmp_path / "gx", "v3.67")
    config = write_config(root, sim_bus)
    (root / "data" / "venus-ems" / "state").mkdir()
    counters = root / "data" / "venus-ems" / "state" / "counters.json"
    counters.write_text('{"kwh": 12.5}')
    svscan(root, daemon_env())

    assert (await run_bundle(bundles["v1"], root, sim_bus)).returncode == 0
    layout = find_installed(root)
    assert layout is not None
    assert not layout.apps  # Venus OS 3.67: /data/venus-ems
    assert layout.code == root / "data" / "venus-ems"

    up = await run_bundle(bundles["v2"], root, sim_bus)
    assert up.returncode == 0, up.stdout + up.stderr
    assert await published_version(sim_bus) == "0.1.1"
    assert os.readlink(layout.previous).startswith("versions/0.1.0-")
    assert counters.read_text() == '{"kwh": 12.5}'
    assert "bus_address" in config.read_text()
    good_pid = svstat(layout.service).pid

    bad = await run_bundle(bundles["bad"], root, sim_bus)
    assert bad.returncode == 1
    assert "venus-ems 0.1.2 did not come up healthy" in bad.stdout
    assert "deliberately broken build" in bad.stdout  # the log tail says why
    assert "rolled back to venus-ems 0.1.1" in bad.stdout
    assert "running again" in bad.stdout
    assert await published_version(sim_bus) == "0.1.1"
    assert os.readlink(layout.current).startswith("versions/0.1.1-")
    assert os.readlink(layout.previous).startswith("versions/0.1.0-")  # still one step back
    assert sorted(p.name.split("-")[0] for p in layout.versions.iterdir()) == ["0.1.0", "0.1.1"]
    status = svstat(layout.service)
    assert status.up
    assert status.pid != good_pid  # the good build was restarted
    assert counters.read_text() == '{"kwh": 12.5}'


async def test_uninstall_removes_every_trace_and_purge_the_config_too(
    bundles, sim_bus, svscan, tmp_path
):
    root = make_gx_root(tmp_path / "gx", "v3.70", rc_local="#!/bin/sh\necho mine")
    before = tree(root)
    write_config(root, sim_bus)
    svscan(root, daemon_env())
    assert (await run_bundle(bundles["v1"], root, sim_bus)).returncode == 0
    layout = find_installed(root)
    assert layout is not None
    assert await published_version(sim_bus) == "0.1.0"
    service = layout.service

    bin_ = root / "data" / "venus-ems" / "venus-ems"  # the one path on both layouts
    assert bin_.resolve() == layout.bin.resolve()
    out = await anyio.to_thread.run_sync(
        lambda: subprocess.run(
            [str(bin_), "uninstall", "--root", str(root)],
            check=False,
            capture_output=True,
            text=True,
            env=daemon_env(),
            timeout=60,
        )
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert not supervised(service)
    await until_version(sim_bus, None)
    left = tree(root)
    kept = {k for k in left if k.startswith("data/venus-ems")}
    assert kept == {"data/venus-ems", "data/venus-ems/config.toml"}  # an empty state/ goes
    assert {k: v for k, v in left.items() if k not in kept} == before  # rc.local byte-identical

    out = subprocess.run(
        [sys.executable, "-m", "venus_ems.cli", "uninstall", "--purge", "--root", str(root)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert tree(root) == before


async def test_a_first_install_that_does_not_come_up_is_stopped_not_left_crash_looping(
    bundles, sim_bus, svscan, tmp_path
):
    root = make_gx_root(tmp_path / "gx", "v3.70")
    write_config(root, sim_bus)
    svscan(root, daemon_env())
    bad = await run_bundle(bundles["bad"], root, sim_bus)
    assert bad.returncode == 1
    assert "crash loop" in bad.stdout
    assert "installed but stopped" in bad.stdout
    layout = find_installed(root)
    assert layout is not None
    assert (layout.service / "down").exists()  # not started at the next boot either
    assert svstat(layout.service).supervised
    # stopped, and still down 2 s later (supervise would have restarted it within 1 s)
    await until(lambda: not (s := svstat(layout.service)).up and s.seconds >= 2, timeout=10)
    # fixed (here: a good build), installed again: the down file goes, the daemon runs
    good = await run_bundle(bundles["v1"], root, sim_bus)
    assert good.returncode == 0, good.stdout + good.stderr
    assert not (layout.service / "down").exists()
    assert await published_version(sim_bus) == "0.1.0"
