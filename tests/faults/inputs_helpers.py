"""Shared helpers of the input fault tests (``test_inputs_*.py``; no tests here).

``Daemon`` runs ``venus-ems run`` as its own process (so its memory is its own) and reads its
resident set and peak resident set from ``/proc``; the peak can be reset between faults.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from types import TracebackType

from waiting import until

__all__ = ["Daemon", "daemon_config"]

CLI = [sys.executable, "-m", "venus_ems.cli"]


def daemon_config(state_dir: Path, body: str) -> str:
    """A config file text: quiet console, state in ``state_dir``, then ``body`` (TOML tables)."""
    return f"""
schema_version = 1
[general]
log_console = false
log_path = "{state_dir}"
state_dir = "{state_dir}"
restart_backoff_initial_s = 0.2
restart_backoff_max_s = 1.0
{body}
"""


class Daemon:
    """``venus-ems run`` in a subprocess; a context manager that stops it with SIGTERM."""

    def __init__(self, tmp_path: Path, bus: str, config: str) -> None:
        """Write ``config`` under ``tmp_path``; start on entry."""
        self.dir = tmp_path
        self.bus = bus
        self.config = tmp_path / "config.toml"
        self.config.write_text(config)
        self.log = tmp_path / "daemon.out"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Daemon:
        """Start the daemon."""
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [*CLI, "run", "--config", str(self.config), "--bus", self.bus],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """SIGTERM, then wait (kill after 10 s)."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    @property
    def pid(self) -> int:
        """Process id; AssertionError before start."""
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        """Still running."""
        return self.proc is not None and self.proc.poll() is None

    def _status_kb(self, key: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        raise KeyError(key)

    def rss_mb(self) -> float:
        """Resident set now, MB."""
        return self._status_kb("VmRSS") / 1024

    def peak_mb(self) -> float:
        """Peak resident set since start or the last :meth:`reset_peak`, MB."""
        return self._status_kb("VmHWM") / 1024

    def reset_peak(self) -> None:
        """Reset the kernel's peak resident set to the current one (``clear_refs`` 5)."""
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")

    def output(self) -> str:
        """What the daemon printed (its log goes to a file under ``state_dir``)."""
        return self.log.read_text(errors="replace")

    def log_text(self) -> str:
        """The daemon's log file."""
        path = self.dir / "venus-ems.log"
        return path.read_text(errors="replace") if path.exists() else ""


async def wait_alive(daemon: Daemon, predicate: object, timeout: float) -> None:
    """Wait for ``predicate()`` while the daemon runs; AssertionError with its output if it died."""

    def check() -> bool:
        if not daemon.alive():
            raise AssertionError(f"the daemon exited:\n{daemon.output()}\n{daemon.log_text()}")
        return bool(predicate())  # type: ignore[operator]

    await until(check, timeout)


def cpu_count() -> int:
    """Cores available to this process."""
    return len(os.sched_getaffinity(0))
