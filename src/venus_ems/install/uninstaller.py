"""``venus-ems uninstall``: stop the service and remove every trace; keep the config unless asked.

Removed: the ``/data/rc.local`` line (and the file, if the installer created it and nothing else
is in it), ``/service/venus-ems`` and its supervise processes (``svc -dx``, the daemontools
procedure), the ``/data/apps/enabled`` link, the code directory, the logs, and every directory
the installer created. Kept unless ``purge``: ``/data/venus-ems/config.toml`` and ``state/``.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import anyio

from ..clock import RealClock
from .layout import Layout, find_installed
from .rclocal import remove_hook
from .service import supervised, svc

__all__ = ["uninstall"]

_STOP_TIMEOUT_S = 30.0


def uninstall(root: Path, *, purge: bool = False, say: Callable[[str], None] = print) -> int:
    """Remove the installation under ``root``; 0 when nothing of it is left (but kept data)."""
    layout = find_installed(root)
    if layout is None:
        if purge and Layout(root, apps=False).home.exists():
            shutil.rmtree(Layout(root, apps=False).home)
            say(f"removed {Layout(root, apps=False).home}")
        else:
            say(f"venus-ems is not installed under {root}")
        return 0
    record = layout.read_record()
    remove_hook(
        layout.rc_local,
        created=bool(record.get("rc_local_created")),
        added_newline=bool(record.get("rc_local_added_newline")),
    )
    layout.service_link.unlink(missing_ok=True)
    if not _stop(layout):
        say(f"venus-ems uninstall: supervise for {layout.service} did not stop; nothing removed")
        return 1
    if layout.apps:
        layout.apps_enabled.unlink(missing_ok=True)
    if layout.command.is_symlink():
        layout.command.unlink()
    shutil.rmtree(layout.log_dir, ignore_errors=True)
    if layout.code != layout.home:
        shutil.rmtree(layout.code, ignore_errors=True)
    elif layout.code.exists():
        for entry in layout.code.iterdir():
            if entry not in (layout.config, layout.state):
                _remove(entry)
    if purge:
        shutil.rmtree(layout.home, ignore_errors=True)
    for rel in sorted(record.get("created_dirs", []), key=lambda r: r.count("/"), reverse=True):
        directory = layout.root / rel
        if directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()
    kept = [p for p in (layout.config, layout.state) if p.exists()]
    say("venus-ems removed" + (f"; kept {', '.join(map(str, kept))}" if kept else ""))
    return 0


def _stop(layout: Layout) -> bool:
    """``svc -dx`` the service and its logger; True once no supervise runs for them."""
    dirs = [layout.service, layout.service / "log"]
    for directory in dirs:
        if supervised(directory):
            try:
                svc(directory, "-d", "-x")
            except subprocess.CalledProcessError:
                pass

    async def wait() -> bool:
        clock = RealClock()
        t0 = clock.monotonic()
        while clock.monotonic() - t0 < _STOP_TIMEOUT_S:
            alive = await anyio.to_thread.run_sync(lambda: [d for d in dirs if supervised(d)])
            if not alive:
                return True
            await clock.sleep(0.2)
        return False

    return anyio.run(wait)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
