"""Helpers of the output fault tests (``test_outputs_*.py``): the simulated GX on real time,
``venus-ems run`` as a child process that can be killed, and timings in real seconds.

A plain module (not a conftest), so that other fault tests keep their own fixtures.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import Process

from venus_ems.clock import Clock, RealClock
from venus_ems.sim.venus.gx import SimulatedGx

__all__ = [
    "EV_DAY",
    "STATUS",
    "Daemon",
    "simulated_gx",
    "wait_for",
    "write_config",
]

ROOT = Path(__file__).parents[2]
STATUS = "com.victronenergy.venusems"
EV_DAY: dict[str, Any] = {"scenario": "ev-charging", "start_s": 10.5 * 3600}
"""10:30 on the EV day: the Multi inverts about 11 kW for the car, ESS mode 1."""


def write_config(
    tmp_path: Path, body: str, *, name: str = "venus-ems.toml", **general: Any
) -> Path:
    """A config with logging on the console (INFO) and the state dir under ``tmp_path``."""
    lines = [
        "schema_version = 1",
        "[general]",
        "log_console = true",
        "log_level = 'INFO'",
        f"state_dir = '{tmp_path / 'state'}'",
        *(f"{k} = {v!r}" for k, v in general.items()),
        body,
    ]
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


@asynccontextmanager
async def simulated_gx(
    bus_address: str,
    *,
    scenario: str,
    start_s: float,
    settings: dict[str, Any] | None = None,
    mode3_timeout_s: float | None = None,
    clock: Clock | None = None,
) -> AsyncIterator[SimulatedGx]:
    """A simulated GX on ``clock`` (real time by default), running until the block ends."""
    gx = SimulatedGx(
        scenario, address=bus_address, clock=clock or RealClock(), start_s=start_s,
        settings=settings,
    )  # fmt: skip
    if mode3_timeout_s is not None:
        gx.site.ess.mode3_timeout_s = mode3_timeout_s
    async with anyio.create_task_group() as tg:
        await tg.start(gx.run)
        try:
            yield gx
        finally:
            tg.cancel_scope.cancel()


class Daemon:
    """``venus-ems run`` as a child process; everything it logs goes to ``log``."""

    def __init__(self, config: Path, bus_address: str, log: Path) -> None:
        self.config = config
        self.bus_address = bus_address
        self.log = log
        self.proc: Process | None = None
        self.started_at = 0.0

    async def start(self) -> Daemon:
        cmd = [sys.executable, "-m", "venus_ems.cli", "run", "--config", str(self.config)]
        with self.log.open("ab") as out:
            self.proc = await anyio.open_process(
                [*cmd, "--bus", self.bus_address], cwd=ROOT, stdout=out, stderr=out
            )
        self.started_at = time.monotonic()
        return self

    def signal(self, signum: int) -> float:
        """Send ``signum``; returns the (monotonic) time it was sent."""
        assert self.proc is not None
        self.proc.send_signal(signum)
        return time.monotonic()

    async def wait(self, timeout: float = 10.0) -> int:
        assert self.proc is not None
        with anyio.fail_after(timeout):
            return await self.proc.wait()

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def __aenter__(self) -> Daemon:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        if self.alive():
            assert self.proc is not None
            with anyio.CancelScope(shield=True):
                self.proc.send_signal(signal.SIGKILL)
                await self.proc.wait()
        if self.proc is not None:
            await self.proc.aclose()


async def wait_for(
    predicate: Callable[[], object],
    timeout: float,
    what: str | Callable[[], str],
    *,
    daemon: Daemon | None = None,
    interval: float = 0.02,
) -> float:
    """Poll until ``predicate()``; returns the real seconds it took (AssertionError if not)."""
    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > timeout:
            log = "" if daemon is None else "\n--- daemon log ---\n" + daemon.text()[-4000:]
            text = what() if callable(what) else what
            raise AssertionError(f"not within {timeout} s: {text}{log}")
        await anyio.sleep(interval)
    return time.monotonic() - t0


def report(name: str, **figures: float) -> None:
    """Print measured figures (seen with ``pytest -s``; docs/reliability.md keeps them)."""
    text = ", ".join(f"{k} = {v:.3f}" for k, v in figures.items())
    print(f"\n[measured] {name}: {text}", file=sys.stderr)
    path = os.environ.get("VENUS_EMS_FAULT_FIGURES")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(f"{name}: {text}\n")
