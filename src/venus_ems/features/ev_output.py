"""The EV charger as an owned output: force on/off/neutral, current per phase, phases.

One actuator per daemon (``ev.charger``) so that it outlives restarts of ``[ev_charger]``: on
SIGTERM, a crash of the feature, or claims that expired (stale inputs), it writes the safe
command (``safe_state = "pause"``: charging forced off; ``"neutral"``: the charger's own logic)
at the minimum current. Each write is acknowledged by the charger (the driver waits for its
``response``) or fails and is retried. The writer uses the feature's open connection while
there is one, otherwise it opens one of its own for that write (the safe write at shutdown
runs after the feature closed its connection).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from ..clock import Clock
from ..control.ev_surplus import ChargerCommand
from ..devices.base import EvCharger, EvChargerReading
from ..runtime.actuator import Actuator

__all__ = ["ChargerOpener", "ChargerWriter", "apply_command", "charger_actuator"]

ChargerOpener = Callable[[aiohttp.ClientSession], Awaitable[Any]]
"""Opens (logs in to) the charger on a session; the result is entered with ``async with``."""


async def apply_command(device: EvCharger, cmd: ChargerCommand) -> list[str]:
    """Write what differs, stop first / start last; returns the keys written (DeviceError)."""
    reading: EvChargerReading = await device.read_charger()
    done: list[str] = []
    if cmd.force not in ("on", reading.force):
        await device.set_force(cmd.force)
        done.append(f"force={cmd.force}")
    switch = cmd.phases is not None and reading.phases_selected != cmd.phases
    if switch and device.can_switch_phases:
        await device.set_phases(cmd.phases)
        done.append(f"phases={cmd.phases}")
    amps = min(max(cmd.amps, reading.min_current_a), reading.max_current_a)
    if int(reading.set_current_a) != int(amps):
        await device.set_current(amps)
        done.append(f"amps={int(amps)}")
    if cmd.force == "on" and reading.force != "on":
        await device.set_force("on")
        done.append("force=on")
    return done


class ChargerWriter:
    """Writes a :class:`ChargerCommand` to the charger, acknowledged key by key."""

    def __init__(self, opener: ChargerOpener, host: str) -> None:
        """``opener`` logs in on a session of the writer's own when no live connection is set."""
        self._opener = opener
        self.host = host
        self.live: Any = None
        """The feature's open charger (None while the feature is not connected)."""
        self.last_keys: list[str] = []

    @property
    def target(self) -> str:
        """What is written, for logs and status."""
        return f"Wattpilot {self.host}"

    async def write(self, value: ChargerCommand) -> None:
        """Apply ``value``; DeviceError (retried by the actuator) when not acknowledged."""
        live = self.live
        if live is not None and getattr(live, "connected", False):
            self.last_keys = await apply_command(live, value)
            return
        async with aiohttp.ClientSession() as session:
            device = await self._opener(session)
            async with device:
                self.last_keys = await apply_command(device, value)


def charger_actuator(
    writer: ChargerWriter, clock: Clock, *, safe: ChargerCommand, **kw: Any
) -> Actuator[ChargerCommand]:
    """The charger output whose safe state is ``safe`` (paused or neutral at minimum current)."""
    kw.setdefault("write_timeout_s", 20.0)
    kw.setdefault("shutdown_timeout_s", 20.0)
    return Actuator("ev.charger", writer, safe_value=safe, clock=clock, **kw)
