"""``venus-ems install``: put an unpacked bundle in place, start it, roll back if it is unhealthy.

Idempotent: running the same bundle again changes nothing and does not restart a healthy
daemon. An upgrade keeps ``config.toml`` and ``state/``, imports every module of the new build
with the device's Python before touching the running one, switches the ``current`` link, restarts
the service and waits for it to be healthy (see :mod:`.health`); if it is not, ``current`` goes
back to the previous build, which is restarted. Every path is under ``root``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from ..clock import RealClock
from . import manifest
from .health import Health, wait_healthy
from .layout import Layout, find_installed
from .rclocal import add_hook, hook_line
from .service import (
    boot_script,
    log_run_script,
    missing_tools,
    run_script,
    svc,
    svstat,
    tool,
    write_executable,
)
from .target import read_target, refusals

__all__ = ["EXIT_FAILED", "EXIT_REFUSED", "InstallOptions", "install", "log_tail", "read_bundle"]

EXIT_FAILED = 1
EXIT_REFUSED = 2

Say = Callable[[str], None]


@dataclass(frozen=True)
class InstallOptions:
    """What ``venus-ems install`` was asked to do."""

    source: Path
    """The unpacked bundle (the directory holding ``bundle.json``)."""
    root: Path = Path("/")
    python: str = sys.executable
    bus_address: str | None = None
    """For the health check; default: ``[general] bus_address`` of the config, else system."""
    timeout_s: float = 90.0
    settle_s: float = 10.0
    uname: str | None = None
    """Override ``uname -m`` (tests)."""


def read_bundle(directory: Path) -> dict[str, Any]:
    """``bundle.json`` of an unpacked bundle or installed build; ValueError if unreadable."""
    try:
        data = json.loads((directory / "bundle.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(f"{directory} is not a venus-ems bundle: {err}") from err
    if not isinstance(data, dict) or not {"version", "arch", "python"} <= data.keys():
        raise ValueError(f"{directory}/bundle.json lacks version, arch or python")
    return data


def install(opts: InstallOptions, say: Say = print) -> int:
    """Install or upgrade from ``opts.source``; the exit code (0 ok, 1 failed, 2 refused)."""
    try:
        bundle = read_bundle(opts.source)
    except ValueError as err:
        say(f"venus-ems install: {err}")
        return EXIT_REFUSED
    target = read_target(opts.root, uname=opts.uname)
    refused = refusals(target, arch=bundle["arch"], python=bundle["python"]) + missing_tools()
    if refused:
        for line in refused:
            say(f"venus-ems install: refused: {line}")
        return EXIT_REFUSED
    damaged = manifest.verify(opts.source)
    if damaged:
        say("venus-ems install: the bundle is damaged: " + "; ".join(damaged[:5]))
        return EXIT_FAILED
    version: str = bundle["version"]
    name = f"{version}-{manifest.digest(opts.source)[:8]}"
    layout = find_installed(opts.root) or Layout(opts.root, apps=target.apps_layout)
    record = layout.read_record()
    created: list[str] = list(record.get("created_dirs", []))

    dest = layout.versions / name
    if not _place(opts.source, dest, created, layout.root, say):
        return EXIT_FAILED
    if not _imports_ok(opts.python, dest, say):
        if _link_name(layout.current) != name:
            shutil.rmtree(dest, ignore_errors=True)
        return EXIT_FAILED

    _mkdirs(layout.state, created, layout.root)
    if not layout.config.exists():
        _fresh_config(opts.source, layout)
        say(f"created {layout.config} (every feature disabled: edit it, then restart)")
    changed = _write_service(layout, opts.python, created)
    hook = add_hook(layout.rc_local, hook_line(layout.boot_script))
    for warning in hook.warnings:
        say(f"warning: {warning}")
    if layout.apps:
        _mkdirs(layout.apps_enabled.parent, created, layout.root)
        _relink(layout.apps_enabled, layout.code)
    record.update(
        {
            "root": str(layout.root),
            "apps_layout": layout.apps,
            "python": opts.python,
            "created_dirs": created,
            "rc_local_created": bool(record.get("rc_local_created")) or hook.created,
            "rc_local_added_newline": bool(record.get("rc_local_added_newline"))
            or hook.added_newline,
        }
    )
    _save_record(layout, record)

    bus = opts.bus_address or _config_bus(layout.config)
    running = _link_name(layout.current)
    if running == name and not changed and layout.service_link.is_symlink():
        health = _health(layout, version, bus, opts, old_pid=None, settle_s=0.0, timeout_s=5.0)
        if health.ok:
            say(f"venus-ems {version} ({name}) is already installed and running")
            return 0
    return _switch_and_start(layout, name, version, running, bus, opts, say)


def _switch_and_start(
    layout: Layout,
    name: str,
    version: str,
    running: str | None,
    bus: str | None,
    opts: InstallOptions,
    say: Say,
) -> int:
    """Point ``current`` at ``name``, (re)start the service, roll back if it is unhealthy."""
    before = _link_name(layout.previous)
    if running is not None and running != name:
        _relink(layout.previous, Path("versions") / running)
    _relink(layout.current, Path("versions") / name)
    (layout.service / "down").unlink(missing_ok=True)
    old_pid = _start(layout)
    say(f"starting venus-ems {version} ({name}); waiting up to {opts.timeout_s:g} s")
    health = _health(layout, version, bus, opts, old_pid=old_pid, settle_s=opts.settle_s)
    if health.ok:
        say(f"venus-ems {version} is running ({health.detail}); logs: {layout.log_dir}/current")
        _prune(layout)
        return 0
    say(f"venus-ems {version} did not come up healthy: {health.detail}")
    for line in log_tail(layout.log_dir, 15):
        say(f"  log: {line}")
    if running is None or running == name:
        (layout.service / "down").write_text("")  # not started at boot either, no crash loop
        _svc_quietly(layout.service, "-d")
        say(
            "venus-ems is installed but stopped; fix the problem above (often "
            f"{layout.config}), then run the installer again"
        )
        return EXIT_FAILED
    return _roll_back(layout, name, running, before, bus, opts, say)


def _roll_back(
    layout: Layout,
    failed: str,
    back_to: str,
    previous: str | None,
    bus: str | None,
    opts: InstallOptions,
    say: Say,
) -> int:
    """Return to ``back_to`` (``previous`` stays the one before) and restart it."""
    _relink(layout.current, Path("versions") / back_to)
    if previous is not None and previous not in (failed, back_to):
        _relink(layout.previous, Path("versions") / previous)
    else:
        layout.previous.unlink(missing_ok=True)
    shutil.rmtree(layout.versions / failed, ignore_errors=True)
    old_version = read_bundle(layout.versions / back_to)["version"]
    old_pid = svstat(layout.service).pid
    _svc_quietly(layout.service, "-u", "-t")
    health = _health(layout, old_version, bus, opts, old_pid=old_pid, settle_s=opts.settle_s)
    state = "running again" if health.ok else f"NOT healthy either: {health.detail}"
    # a process of the failed build that was still starting may have written into it meanwhile
    shutil.rmtree(layout.versions / failed, ignore_errors=True)
    say(f"rolled back to venus-ems {old_version} ({back_to}): {state}")
    return EXIT_FAILED


def _health(
    layout: Layout,
    version: str,
    bus: str | None,
    opts: InstallOptions,
    *,
    old_pid: int | None,
    settle_s: float,
    timeout_s: float | None = None,
) -> Health:
    return anyio.run(
        lambda: wait_healthy(
            layout.service,
            version=version,
            bus_address=bus,
            timeout_s=opts.timeout_s if timeout_s is None else timeout_s,
            settle_s=settle_s,
            old_pid=old_pid,
            clock=RealClock(),
        )
    )


def _start(layout: Layout) -> int | None:
    """Link the service (svscan starts it) or restart it; the pid that must go away."""
    if not layout.service_link.is_symlink():
        _relink(layout.service_link, layout.service)
        return None
    status = svstat(layout.service)
    if status.supervised:
        _svc_quietly(layout.service, "-u", "-t")
    return status.pid


def _svc_quietly(directory: Path, *flags: str) -> None:
    """``svc``; a supervise that is not running is what the health check then reports."""
    try:
        svc(directory, *flags)
    except subprocess.CalledProcessError:
        pass


def _place(source: Path, dest: Path, created: list[str], root: Path, say: Say) -> bool:
    """Copy the bundle to ``dest`` and verify the copy (an identical one is kept as is)."""
    if dest.is_dir() and not manifest.verify(dest):
        return True
    _mkdirs(dest.parent, created, root)
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp, ignore=shutil.ignore_patterns("__pycache__"))
    problems = manifest.verify(tmp)
    if problems:
        shutil.rmtree(tmp, ignore_errors=True)
        say("venus-ems install: the copy on /data is damaged: " + "; ".join(problems[:5]))
        return False
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return True


def _imports_ok(python: str, build: Path, say: Say) -> bool:
    """Import every module of the new build with the device's Python (writes byte-code too)."""
    out = subprocess.run(
        [python, "-I", "-S", str(build / "launch.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if out.returncode == 0:
        return True
    say(f"venus-ems install: the new build does not import with {python}:")
    for line in (out.stderr or out.stdout).strip().splitlines()[-10:]:
        say(f"  {line}")
    return False


def _write_service(layout: Layout, python: str, created: list[str]) -> bool:
    """Service scripts, ``bin/venus-ems`` and ``boot.sh``; True if the ``run`` script changed."""
    try:
        softlimit: str | None = tool("softlimit")
    except FileNotFoundError:
        softlimit = None
    _mkdirs(layout.log_dir, created, layout.root)
    _mkdirs(layout.service_link.parent, created, layout.root)
    changed = write_executable(
        layout.service / "run", run_script(layout, python, softlimit=softlimit)
    )
    changed |= write_executable(
        layout.service / "log" / "run", log_run_script(layout, tool("multilog"))
    )
    launcher = layout.current / "launch.py"
    write_executable(layout.bin, f'#!/bin/sh\nexec "{python}" -I -S "{launcher}" "$@"\n')
    if layout.command != layout.bin and not layout.command.is_symlink():
        layout.command.parent.mkdir(parents=True, exist_ok=True)
        _relink(layout.command, layout.bin)
    write_executable(layout.boot_script, boot_script(layout))
    return changed


def _fresh_config(source: Path, layout: Layout) -> None:
    """The bundle's example config (every feature off) with the state directory set."""
    text = (source / "config.example.toml").read_text(encoding="utf-8")
    line = f'state_dir = "{layout.state}"'
    text, n = re.subn(r"(?m)^#?\s*state_dir\s*=.*$", line, text, count=1)
    if n == 0:
        text = re.sub(r"(?m)^\[general\]\s*$", f"[general]\n{line}", text, count=1)
    layout.config.parent.mkdir(parents=True, exist_ok=True)
    layout.config.write_text(text, encoding="utf-8")
    layout.config.chmod(0o600)


def _config_bus(config: Path) -> str | None:
    """``[general] bus_address`` of the config (read without validating it), if set."""
    if sys.version_info >= (3, 11):
        import tomllib  # noqa: PLC0415
    else:  # pragma: no cover
        import tomli as tomllib  # type: ignore[import-not-found,unused-ignore] # noqa: PLC0415

    try:
        data = tomllib.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = data.get("general", {}).get("bus_address")
    return value if isinstance(value, str) and value else None


def _mkdirs(path: Path, created: list[str], root: Path) -> None:
    """``mkdir -p``, remembering (relative to root) each directory it created."""
    missing = []
    for parent in (path, *path.parents):
        if parent.exists() or parent == root:
            break
        missing.append(parent)
    for directory in reversed(missing):
        directory.mkdir()
        rel = directory.relative_to(root).as_posix()
        if rel not in created:
            created.append(rel)


def _relink(link: Path, target: Path) -> None:
    """Point ``link`` at ``target``, atomically replacing what was there."""
    tmp = link.with_name(f".{link.name}.new")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    tmp.replace(link)


def _link_name(link: Path) -> str | None:
    """Name of the build a ``current``/``previous`` link points to, None without one."""
    try:
        return Path(link.readlink()).name
    except OSError:
        return None


def _save_record(layout: Layout, record: dict[str, Any]) -> None:
    layout.code.mkdir(parents=True, exist_ok=True)
    tmp = layout.record.with_name(".install.json.new")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(layout.record)


def _prune(layout: Layout) -> None:
    """Keep only the current and previous builds."""
    keep = {_link_name(layout.current), _link_name(layout.previous)}
    for build in layout.versions.iterdir():
        if build.name not in keep:
            shutil.rmtree(build, ignore_errors=True)


def log_tail(log_dir: Path, lines: int) -> list[str]:
    """The last ``lines`` lines multilog wrote, without their TAI64N stamps."""
    try:
        text = (log_dir / "current").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    out = []
    for line in text.splitlines()[-lines:]:
        stamp, _, rest = line.partition(" ")
        out.append(rest if stamp.startswith("@") else line)
    return out
