"""``venus-ems`` command line.

Exit codes: 0 success (also after SIGTERM/SIGINT), 1 runtime failure (bus lost, crash),
2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import logging
import math
import signal
import sys
from collections.abc import Sequence

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

import anyio

from . import __version__
from .errors import ConfigError, EmsError
from .runtime.clock import Clock, RealClock
from .venus import Identity, PathSpec, Service, open_monitor
from .venus.daemon import PrivateBus

__all__ = ["EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "main"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
_LOG = logging.getLogger("venus_ems")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="venus-ems", description="Energy management for Victron GX devices."
    )
    p.add_argument("--version", action="version", version=f"venus-ems {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging on the console")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the daemon")
    run.add_argument("--config", required=True, help="config.toml")
    run.add_argument(
        "--bus", help="D-Bus address (default: system bus or DBUS_SESSION_BUS_ADDRESS)"
    )
    run.add_argument(
        "--dry-run", action="store_true", help="log what would be written, write nothing"
    )

    check = sub.add_parser("check-config", help="validate a config file (exit 0 or 2)")
    check.add_argument("config")

    status = sub.add_parser("status", help="print one status line per second")
    status.add_argument("--bus", help="D-Bus address")
    status.add_argument("--count", type=int, default=0, help="stop after N lines (0 = forever)")
    status.add_argument("--interval", type=float, default=1.0, help="seconds between lines")

    demo = sub.add_parser("demo", help="publish a service on a private bus and watch it")
    demo.add_argument("--seconds", type=float, default=math.inf, help="stop after this time")
    demo.add_argument("--bus", help="bus address (default: start a private dbus-daemon)")
    return p


# ----------------------------------------------------------------------------------- run


async def _daemon(config: object, bus: str | None, dry_run: bool) -> None:
    from .runtime.app import run_daemon  # noqa: PLC0415 - keep `check-config` light

    async with anyio.create_task_group() as tg:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            await tg.start(run_daemon, config, bus, None, dry_run)
            async for signum in signals:
                _LOG.info("stopping on %s", signal.Signals(signum).name)
                tg.cancel_scope.cancel()
                break


def _run(args: argparse.Namespace) -> int:
    from .runtime.config import load_config  # noqa: PLC0415
    from .runtime.logging import setup_logging  # noqa: PLC0415

    config = load_config(args.config)
    general = config.general
    setup_logging(
        "DEBUG" if args.verbose else general.log_level,
        general.log_path,
        console=general.log_console,
        secrets=config.secret_values(),
        backups=general.log_backups,
    )
    anyio.run(_daemon, config, args.bus, args.dry_run)
    return EXIT_OK


def _check_config(args: argparse.Namespace) -> int:
    from .runtime.config import check_config  # noqa: PLC0415

    code, text = check_config(args.config)
    print(text, file=sys.stdout if code == 0 else sys.stderr)
    return code


# ----------------------------------------------------------------------------------- status


async def _status(address: str | None, count: int, interval: float, clock: Clock) -> None:
    from .runtime.statusline import format_status  # noqa: PLC0415

    async with open_monitor(address) as mon:
        n = 0
        while count <= 0 or n < count:
            print(format_status(mon, clock.now().astimezone().strftime("%H:%M:%S")), flush=True)
            n += 1
            if count <= 0 or n < count:
                await clock.sleep(interval)


# ----------------------------------------------------------------------------------- demo


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
            line = "  ".join(
                f"L{n} {v:6.0f} W" for n, v in zip((1, 2, 3), seen, strict=True) if v is not None
            )
            print(f"t={t:5.0f}s grid {total:7.0f} W  {line}", flush=True)


def _demo(args: argparse.Namespace) -> int:
    if args.bus:
        anyio.run(_layer_demo, args.bus, args.seconds, RealClock())
        return EXIT_OK
    with PrivateBus() as bus:
        anyio.run(_layer_demo, bus.address, args.seconds, RealClock())
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``venus-ems`` console script; returns the exit code."""
    args = _parser().parse_args(argv)
    if args.command != "run":
        logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "check-config":
            return _check_config(args)
        if args.command == "status":
            anyio.run(_status, args.bus, args.count, args.interval, RealClock())
            return EXIT_OK
        if args.command == "demo":
            return _demo(args)
    except KeyboardInterrupt:
        return EXIT_OK
    except ConfigError as err:
        print(f"venus-ems: {err}", file=sys.stderr)
        return EXIT_USAGE
    except EmsError as err:
        print(f"venus-ems: {err}", file=sys.stderr)
        return EXIT_FAILURE
    except BaseExceptionGroup as group:
        from .runtime.supervisor import first_error  # noqa: PLC0415

        first = first_error(group)
        print(f"venus-ems: {type(first).__name__}: {first}", file=sys.stderr)
        return EXIT_USAGE if isinstance(first, ConfigError) else EXIT_FAILURE
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
