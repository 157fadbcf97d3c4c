"""``venus-ems`` command line.

Exit codes: 0 success, 1 runtime failure (bus lost, crash), 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from collections.abc import Sequence

import anyio

from . import __version__
from .errors import EmsError
from .runtime.clock import Clock, RealClock
from .venus import Identity, PathSpec, Service, open_monitor
from .venus.daemon import PrivateBus

__all__ = ["main"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="venus-ems", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"venus-ems {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="publish a service on a private bus and watch it")
    demo.add_argument("--seconds", type=float, default=math.inf, help="stop after this time")
    demo.add_argument("--bus", help="bus address (default: start a private dbus-daemon)")
    return p


async def _layer_demo(address: str, seconds: float, clock: Clock) -> None:
    """Publish a grid meter whose power follows a slow sine and print what a Monitor sees."""
    svc = Service(
        "com.victronenergy.grid.venusems_demo",
        identity=Identity("venus-ems demo meter", connection="demo"),
        device_instance=40,
        address=address,
    )
    svc.add_path("/Ac/Power", 0.0, PathSpec("d", "%.0F W"))
    for n in (1, 2, 3):
        svc.add_path(f"/Ac/L{n}/Power", 0.0, PathSpec("d", "%.0F W"))
    print(f"bus: {address}")
    print(
        f"try: dbus-send --bus='{address}' --print-reply "
        "--dest=com.victronenergy.grid.venusems_demo /Ac/Power com.victronenergy.BusItem.GetValue"
    )
    start = clock.monotonic()
    async with svc, open_monitor(address, watch={"com.victronenergy.grid": None}) as mon:
        while (t := clock.monotonic() - start) < seconds:
            phases = [400 * math.sin(t / 5 + k * 2.1) for k in range(3)]
            svc.update(
                {"/Ac/Power": sum(phases)}
                | {f"/Ac/L{k + 1}/Power": p for k, p in enumerate(phases)}
            )
            await clock.sleep(1.0)
            seen = [mon.get_float(svc.name, f"/Ac/L{n}/Power") for n in (1, 2, 3)]
            total = mon.get_float(svc.name, "/Ac/Power")
            print(
                f"t={t:5.0f}s grid {total:7.0f} W  "
                + "  ".join(
                    f"L{n} {v:6.0f} W"
                    for n, v in zip((1, 2, 3), seen, strict=True)
                    if v is not None
                ),
                flush=True,
            )


def _run_demo(args: argparse.Namespace) -> int:
    if args.bus:
        anyio.run(_layer_demo, args.bus, args.seconds, RealClock())
        return EXIT_OK
    with PrivateBus() as bus:
        anyio.run(_layer_demo, bus.address, args.seconds, RealClock())
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``venus-ems`` console script; returns the exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    try:
        if args.command == "demo":
            return _run_demo(args)
    except KeyboardInterrupt:
        return EXIT_OK
    except EmsError as err:
        print(f"venus-ems: {err}", file=sys.stderr)
        return EXIT_USAGE if isinstance(err, ValueError) else EXIT_FAILURE
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
