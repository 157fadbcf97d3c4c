"""The daemontools service: ``run`` and ``log/run``, and ``svc``/``svstat``/``svok`` to drive it.

Victron's conventions (docs/deployment.md): ``run`` merges stderr into stdout and execs the
program under ``softlimit``; ``log/run`` execs ``multilog t`` into ``/var/log/<name>`` with a
size and file-count bound. A service directory is started by ``svscan`` once it appears under
``/service`` (within 5 s) and restarted by ``supervise`` one second after it exits.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .layout import Layout

__all__ = [
    "DATA_LIMIT_BYTES",
    "LOG_FILES",
    "LOG_FILE_BYTES",
    "SvStatus",
    "boot_script",
    "log_run_script",
    "missing_tools",
    "run_script",
    "supervised",
    "svc",
    "svstat",
    "tool",
    "write_executable",
]

LOG_FILE_BYTES = 200_000
"""multilog rotates ``current`` at this size ..."""
LOG_FILES = 10
"""... and keeps this many old files: at most ~2.2 MB of logs on /data."""
DATA_LIMIT_BYTES = 300_000_000
"""``softlimit -d``: a leak ends in MemoryError and a restart, not in a GX out of memory."""

_STATUS = re.compile(r":\s+(up|down)\s+(?:\(pid (\d+)\)\s+)?(\d+) seconds")


def tool(name: str) -> str:
    """Absolute path of a daemontools program; FileNotFoundError with a hint when missing."""
    found = shutil.which(name) or (
        f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None
    )
    if found is None:
        raise FileNotFoundError(f"{name} not found: daemontools is not installed")
    return found


def missing_tools() -> list[str]:
    """A message per daemontools program we need that is not installed."""
    needed = ("svscan", "supervise", "svc", "svstat", "svok", "multilog")
    gone = [n for n in needed if not shutil.which(n) and not Path(f"/usr/bin/{n}").exists()]
    return [f"daemontools is not installed (missing: {' '.join(gone)})"] if gone else []


def _q(path: Path | str) -> str:
    return shlex.quote(str(path))


def run_script(layout: Layout, python: str, *, softlimit: str | None) -> str:
    """The service's ``run``: the current build's launcher, logging to stderr only."""
    launcher = layout.current / "launch.py"
    command = f"{_q(python)} -I -S {_q(launcher)} run --config {_q(layout.config)} --log-to-stderr"
    if softlimit:
        command = f"{_q(softlimit)} -d {DATA_LIMIT_BYTES} {command}"
    return (
        "#!/bin/sh\n"
        "# venus-ems under daemontools. Written by `venus-ems install`, rewritten on every\n"
        "# install: edit config.toml, not this file.\n"
        "exec 2>&1\n"
        f"exec {command}\n"
    )


def log_run_script(layout: Layout, multilog: str) -> str:
    """``log/run``: timestamped, size-bounded logs in :attr:`Layout.log_dir`."""
    return (
        "#!/bin/sh\n"
        "# venus-ems logs (multilog: tai64n stamps, rotated at "
        f"{LOG_FILE_BYTES} bytes, {LOG_FILES} files kept)\n"
        f"exec {_q(multilog)} t s{LOG_FILE_BYTES} n{LOG_FILES} {_q(layout.log_dir)}\n"
    )


def boot_script(layout: Layout) -> str:
    """``boot.sh``, run by ``/data/rc.local``: ``/service`` is rebuilt in RAM at every boot."""
    return (
        "#!/bin/sh\n"
        "# Re-link venus-ems into /service after a boot or firmware update. Called from\n"
        "# /data/rc.local; written by `venus-ems install`, removed by `venus-ems uninstall`.\n"
        f"mkdir -p {_q(layout.log_dir)}\n"
        f"[ -e {_q(layout.service_link)} ] || ln -s {_q(layout.service)} "
        f"{_q(layout.service_link)}\n"
    )


def write_executable(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` (mode 755) atomically; False if it already was exactly that."""
    try:
        if path.read_text(encoding="utf-8") == text and path.stat().st_mode & 0o111:
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.new")
    tmp.write_text(text, encoding="utf-8")
    tmp.chmod(0o755)
    tmp.replace(path)
    return True


@dataclass(frozen=True)
class SvStatus:
    """What ``svstat`` says about a service directory."""

    supervised: bool
    up: bool
    pid: int | None
    seconds: int | None
    text: str


def svstat(directory: Path) -> SvStatus:
    """Parse ``svstat DIR``: ``DIR: up (pid 123) 5 seconds`` or ``... supervise not running``."""
    out = subprocess.run(
        [tool("svstat"), str(directory)], capture_output=True, text=True, timeout=10, check=False
    )
    text = (out.stdout + out.stderr).strip()
    match = _STATUS.search(text)
    if match is None:
        return SvStatus(supervised=False, up=False, pid=None, seconds=None, text=text)
    pid = int(match.group(2)) if match.group(2) else None
    return SvStatus(True, match.group(1) == "up", pid, int(match.group(3)), text)


def supervised(directory: Path) -> bool:
    """True if a ``supervise`` process runs for ``directory`` (``svok``)."""
    try:
        return (
            subprocess.run([tool("svok"), str(directory)], timeout=10, check=False).returncode == 0
        )
    except FileNotFoundError:
        return False


def svc(directory: Path, *flags: str) -> None:
    """``svc FLAGS DIR`` (``-u`` up, ``-d`` down, ``-t`` TERM, ``-x`` exit); CalledProcessError."""
    subprocess.run(
        [tool("svc"), *flags, str(directory)], capture_output=True, timeout=10, check=True
    )
