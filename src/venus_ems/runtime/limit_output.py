"""The limit of one micro-inverter as an actuator output, written through its gateway.

:class:`InverterLimitWriter` turns a limit in W into a whole percent of the inverter's
nameplate, queues it as a non-persistent limit and then reads the gateway back until it
reports that limit acknowledged (``Ok``): a write is done only when it is verified. A refused
command (``Failure``) or one not confirmed within ``verify_timeout_s`` raises, so the actuator
retries it; ``failures`` counts failed writes in a row (the feature restarts an inverter that
keeps failing). The writer opens the gateway with an HTTP session of its own, created on first
use and closed after the actuator's last (safe) write, because the actuator outlives the
feature that claims it: on shutdown, or when the feature crashed, the safe limit must still go
out.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from ..clock import Clock
from ..devices import PowerLimiter
from ..errors import DeviceConnectionError, DeviceError, DeviceProtocolError, DeviceTimeoutError
from .actuator import Actuator

__all__ = ["InverterLimitWriter", "LimiterOpener", "inverter_limit_actuator"]

LimiterOpener = Callable[[aiohttp.ClientSession], Awaitable[PowerLimiter]]
"""Opens the gateway on a session (e.g. ``devices.registry.open_device`` with the config)."""


class InverterLimitWriter:
    """Writes and verifies one inverter's limit (W, + = producing) through its gateway."""

    def __init__(
        self,
        opener: LimiterOpener,
        serial: str,
        *,
        clock: Clock,
        nameplate_w: float | None = None,
        verify_timeout_s: float = 12.0,
        poll_s: float = 0.5,
    ) -> None:
        """``nameplate_w``: 100 % of the limit (None: as the gateway reports it)."""
        self._opener = opener
        self.serial = serial
        self.clock = clock
        self.nameplate_w = nameplate_w
        self.verify_timeout_s = verify_timeout_s
        self.poll_s = poll_s
        self._session: aiohttp.ClientSession | None = None
        self._device: PowerLimiter | None = None
        self.confirmed_pct: int | None = None
        self.confirmed_at: float | None = None
        self.failures = 0

    @property
    def target(self) -> str:
        """What is written, for logs and status."""
        return f"micro-inverter {self.serial} limit"

    async def _gateway(self) -> PowerLimiter:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1))
            self._device = None
        if self._device is None:
            self._device = await self._opener(self._session)
        return self._device

    def percent(self, watts: float, nameplate_w: float) -> int:
        """``watts`` as a whole percent of ``nameplate_w`` (0..100)."""
        return int(min(max(round(watts * 100.0 / nameplate_w), 0), 100))

    async def write(self, value: float) -> None:
        """Queue the limit, then wait until the gateway confirms it; DeviceError otherwise."""
        try:
            await self._write(value)
        except DeviceError as err:
            self.failures += 1
            if isinstance(err, DeviceConnectionError):
                self._device = None  # reconnect (and identify the gateway again) next time
            raise
        self.failures = 0

    async def _write(self, value: float) -> None:
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"limit {value!r} W: expected a finite value >= 0")
        dtu = await self._gateway()
        status = (await dtu.read_limits()).get(self.serial)
        if status is None:
            raise DeviceProtocolError(f"the gateway does not list inverter {self.serial}")
        nameplate = self.nameplate_w or status.max_power_w
        if nameplate is None:
            raise DeviceProtocolError(f"nameplate of {self.serial} not known yet")
        pct = self.percent(value, nameplate)
        await dtu.set_limit(self.serial, pct)
        deadline = self.clock.monotonic() + self.verify_timeout_s
        while True:
            await self.clock.sleep(self.poll_s)
            status = (await dtu.read_limits()).get(self.serial)
            if status is None:
                raise DeviceProtocolError(f"the gateway no longer lists inverter {self.serial}")
            if status.state == "Ok" and abs(status.limit_pct - pct) < 0.6:
                self.confirmed_pct, self.confirmed_at = pct, self.clock.monotonic()
                return
            if status.state == "Failure":
                raise DeviceProtocolError(f"inverter {self.serial} did not take limit {pct} %")
            if self.clock.monotonic() >= deadline:
                raise DeviceTimeoutError(
                    f"limit {pct} % of {self.serial} not confirmed within "
                    f"{self.verify_timeout_s:g} s (gateway shows {status.limit_pct:g} %, "
                    f"{status.state})"
                )

    async def aclose(self) -> None:
        """Close the session (after the actuator's last write)."""
        if self._session is not None:
            await self._session.close()
        self._session = self._device = None


def inverter_limit_actuator(
    name: str,
    writer: InverterLimitWriter,
    clock: Clock,
    *,
    safe_w: float,
    **kw: Any,
) -> Actuator[float]:
    """One inverter's limit (W) whose safe state is ``safe_w``, written and verified once."""
    kw.setdefault("write_timeout_s", writer.verify_timeout_s + 8.0)
    kw.setdefault("shutdown_timeout_s", writer.verify_timeout_s + 8.0)
    return Actuator(name, writer, safe_value=safe_w, clock=clock, **kw)
