"""A stand-alone ``com.victronenergy.settings`` (the simulated GX's localsettings) process.

For running ``venus-ems sim --bus-settings`` (or anything else that expects Victron's
localsettings) against a settings service that is not the simulator's::

    python -m venus_ems.sim.localsettings --bus ADDRESS [--file settings.json]

It prints ``ready: ...`` once it owns the name and stops on SIGTERM or SIGINT (exit code 0);
exit code 1 when the name is taken or the bus is unreachable.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import anyio

from ..errors import BusError
from ..venus.settings import SETTINGS_SERVICE
from .venus.settings import LocalSettings

__all__ = ["main"]


async def _serve(address: str | None, file: Path | None) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with LocalSettings(address=address, file=file) as ls:
            print(f"ready: {SETTINGS_SERVICE} as {ls.service.bus.unique_name}", flush=True)
            async for _signum in signals:
                return


def main(argv: Sequence[str] | None = None) -> int:
    """Publish the settings service until SIGTERM/SIGINT; returns the exit code."""
    p = argparse.ArgumentParser(
        prog="python -m venus_ems.sim.localsettings",
        description="A stand-alone com.victronenergy.settings.",
    )
    p.add_argument("--bus", help="D-Bus address (default: DBUS_SESSION_BUS_ADDRESS or system)")
    p.add_argument("--file", type=Path, help="JSON file to keep the settings in")
    args = p.parse_args(argv)
    try:
        anyio.run(_serve, args.bus, args.file)
    except BusError as err:
        print(f"localsettings: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
