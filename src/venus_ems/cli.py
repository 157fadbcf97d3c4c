"""``venus-ems`` command line.

Exit codes: 0 success (also after SIGTERM/SIGINT, outputs safe first); 1 runtime failure: the bus
lost, a feature crash-looping, every feature failed, or a bug outside the features (outputs safe
first when the daemon was running); 2 usage or configuration error (also when every feature
stopped on a ConfigError).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import sys
import tempfile
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

import anyio

from . import __version__
from .errors import ConfigError, EmsError

if TYPE_CHECKING:
    from .runtime.config import Config, WebConfig
from .clock import Clock, RealClock, ScaledClock
from .install.commands import COMMANDS, add_commands, run_command
from .venus import open_monitor
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
    run.add_argument(
        "--log-to-stderr",
        action="store_true",
        help="log to stderr only, for a supervisor's logger (multilog on a GX)",
    )

    check = sub.add_parser("check-config", help="validate a config file (exit 0 or 2)")
    check.add_argument("config")
    check.add_argument(
        "--bus", help="D-Bus address to read localsettings from (default: as for run)"
    )
    check.add_argument(
        "--no-bus", action="store_true", help="do not ask localsettings which values it overrides"
    )

    sub.add_parser(
        "hash-password",
        help="print the [web] password_hash for a password (asked for, or read from stdin)",
    )

    status = sub.add_parser("status", help="print one status line per second")
    status.add_argument("--bus", help="D-Bus address")
    status.add_argument("--count", type=int, default=0, help="stop after N lines (0 = forever)")
    status.add_argument("--interval", type=float, default=1.0, help="seconds between lines")

    sim = sub.add_parser("sim", help="run the simulated GX with emulated devices")
    sim.add_argument("--scenario", default="summer-sunny", help="see --list")
    sim.add_argument("--list", action="store_true", help="list the scenarios and exit")
    sim.add_argument("--speed", type=float, default=1.0, help="time factor (1 = real time)")
    sim.add_argument(
        "--start", help="time of day to start at (HH:MM; default 12:00 live, 00:00 for --report)"
    )
    sim.add_argument(
        "--duration",
        type=float,
        default=math.inf,
        help="simulated seconds to run (default: forever live, a whole day for --report)",
    )
    sim.add_argument(
        "--report",
        metavar="DIR",
        help="run the day stepped, as fast as possible, and write DIR/report.html",
    )
    sim.add_argument("--config", help="with --report: the venus-ems config to simulate")
    sim.add_argument(
        "--compare",
        nargs=2,
        metavar=("FILE_A", "FILE_B"),
        help="with --report: two configs side by side",
    )
    sim.add_argument("--bus", help="bus address (default: start a private dbus-daemon)")
    sim.add_argument(
        "--external-meter",
        action="store_true",
        help="no GX grid meter: follow the lowest-instance grid service on the bus",
    )
    sim.add_argument(
        "--bus-settings",
        action="store_true",
        help="keep settings in the com.victronenergy.settings already on --bus (e.g. Victron's "
        "localsettings) instead of starting one",
    )
    sim.add_argument("--shelly-port", type=int, default=0, help="port of the emulated Shelly")
    sim.add_argument("--opendtu-port", type=int, default=0, help="port of the emulated OpenDTU")
    sim.add_argument(
        "--heater",
        choices=["tcp", "rtu-over-tcp", "rtu"],
        help="add a hot-water tank and its Heizstab Modbus heater (emulated on TCP or a pty)",
    )
    sim.add_argument(
        "--control-port", type=int, default=0, help="port of the HTTP fault control (0 = free)"
    )

    demo = sub.add_parser("demo", help="the simulated GX plus the venus-ems daemon, live")
    demo.add_argument("--seconds", type=float, default=math.inf, help="stop after this time")
    demo.add_argument("--scenario", default="summer-sunny")
    demo.add_argument("--start", default="11:00", help="time of day to start at (HH:MM)")
    demo.add_argument("--speed", type=float, default=1.0, help="time factor (1 = real time)")
    demo.add_argument("--bus", help="bus address (default: start a private dbus-daemon)")
    demo.add_argument(
        "--control-port", type=int, default=0, help="port of the HTTP fault control (0 = free)"
    )
    demo.add_argument(
        "--web",
        metavar="[HOST:]PORT",
        help="also serve the dashboard, e.g. --web 8088 (loopback, no password)",
    )

    fault = sub.add_parser(
        "sim-fault",
        help="inject a fault into a running sim/demo device (no mode: show the faults)",
        description="Without a device, lists the devices, their faults, the modes and the "
        "parameters (see docs/simulation.md).",
    )
    fault.add_argument(
        "--control",
        default=os.environ.get("VENUS_EMS_SIM_CONTROL"),
        help="fault control URL printed by sim/demo (default: $VENUS_EMS_SIM_CONTROL)",
    )
    fault.add_argument("device", nargs="?", help="device name (shelly, opendtu)")
    fault.add_argument("mode", nargs="?", help="fault mode; ok ends the fault")
    fault.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="a fault parameter"
    )

    add_commands(sub)
    return p


# ----------------------------------------------------------------------------------- run


async def _daemon(config: Config, bus: str | None, dry_run: bool) -> None:
    from .daemon import run_daemon  # noqa: PLC0415 - keep `check-config` light

    extras = []
    if config.web.enabled:
        from .web import WebServer  # noqa: PLC0415 - only with [web] enabled

        extras.append(WebServer(config.web, RealClock()))
    async with anyio.create_task_group() as tg:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            await tg.start(
                partial(run_daemon, config, bus_address=bus, dry_run=dry_run, extras=extras)
            )
            async for signum in signals:
                _LOG.info("stopping on %s", signal.Signals(signum).name)
                tg.cancel_scope.cancel()
                break


def _run(args: argparse.Namespace) -> int:
    from .runtime.config import config_warnings, load_config  # noqa: PLC0415
    from .runtime.logging import setup_logging  # noqa: PLC0415

    try:
        config = load_config(args.config)
    except ConfigError:
        from .runtime.rescue import clear_after_config_error  # noqa: PLC0415

        anyio.run(clear_after_config_error, args.config, args.bus, RealClock())
        raise
    general = config.general
    setup_logging(
        "DEBUG" if args.verbose else general.log_level,
        general.log_path,
        console=general.log_console or args.log_to_stderr,
        to_file=not args.log_to_stderr,
        secrets=config.secret_values(),
        backups=general.log_backups,
    )
    for warning in config_warnings(config, args.config):
        _LOG.warning("config: %s", warning)
    anyio.run(_daemon, config, args.bus, args.dry_run)
    return EXIT_OK


def _hash_password() -> int:
    import getpass  # noqa: PLC0415

    from .runtime.passwords import hash_password  # noqa: PLC0415

    if sys.stdin.isatty():
        password = getpass.getpass("dashboard password: ")
        if getpass.getpass("again: ") != password:
            raise ConfigError("the two passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        print(hash_password(password))
    except ValueError as err:
        raise ConfigError(str(err)) from None
    return EXIT_OK


def _check_config(args: argparse.Namespace) -> int:
    from .runtime.config import checked_config  # noqa: PLC0415

    code, text, config = checked_config(args.config)
    lines = [text]
    if config is not None:
        from .features import create_features  # noqa: PLC0415
        from .features.overrides import configured_tunables, localsettings_report  # noqa: PLC0415

        try:
            tunables = configured_tunables(create_features(config))
        except ConfigError as err:  # a feature refuses a combination the model allows
            code, lines = EXIT_USAGE, [f"{args.config}: 1 problem", f"  - {err}"]
        else:
            if tunables and not args.no_bus:
                address = args.bus or config.general.bus_address
                lines += anyio.run(localsettings_report, tunables, address)
    print("\n".join(lines), file=sys.stdout if code == 0 else sys.stderr)
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


# ----------------------------------------------------------------------------------- sim, demo


def _sim_clock(speed: float) -> Clock:
    if speed <= 0:
        raise ConfigError(f"--speed must be > 0, got {speed}")
    return RealClock() if speed == 1 else ScaledClock(speed)


async def _sim(address: str, args: argparse.Namespace, clock: Clock) -> None:
    from .runtime.statusline import format_status  # noqa: PLC0415
    from .sim.run import running_site, time_of_day  # noqa: PLC0415

    start = _start(args.start or "12:00")
    async with (
        running_site(
            args.scenario,
            address=address,
            clock=clock,
            start_s=start,
            external_meter=args.external_meter,
            bus_settings=args.bus_settings,
            shelly_port=args.shelly_port,
            opendtu_port=args.opendtu_port,
            control_port=args.control_port,
            heater=args.heater,
        ) as sim,
        open_monitor(address) as mon,
    ):
        print(sim.describe(), flush=True)
        start_text = args.start or "12:00"
        print(f"scenario {args.scenario} from {start_text}, speed {args.speed:g}x; Ctrl-C stops.")
        site = sim.gx.site
        t_end = site.time + args.duration
        while site.time < t_end:
            clock_text = time_of_day(site.time)
            if math.isfinite(args.duration):
                done = 100 * (site.time + args.duration - t_end) / args.duration
                clock_text += f" {done:3.0f}%"
            print(format_status(mon, clock_text), flush=True)
            await anyio.sleep(1.0)  # progress once per real second, whatever the speed
        if math.isfinite(args.duration):
            print(format_status(mon, f"{time_of_day(site.time)} 100%"), flush=True)


def _report(args: argparse.Namespace) -> int:
    """``sim --report DIR``: simulate the day stepped and write the HTML report."""
    from .sim.report.command import report_files  # noqa: PLC0415

    page = report_files(
        args.scenario,
        args.report,
        config=args.config,
        compare=args.compare,
        start_s=_start(args.start or "00:00"),
        duration_s=None if math.isinf(args.duration) else args.duration,
        progress=sys.stderr.isatty(),
    )
    print(f"report: {page}")
    return EXIT_OK


def _start(text: str) -> float:
    from .sim.run import parse_time_of_day  # noqa: PLC0415

    try:
        return parse_time_of_day(text)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def _with_bus(bus: str | None, fn: Any, *args: Any) -> int:
    """Run ``fn(address, *args)``, on a private dbus-daemon unless ``bus`` is given."""
    if bus:
        anyio.run(fn, bus, *args)
        return EXIT_OK
    with PrivateBus() as private:
        anyio.run(fn, private.address, *args)
    return EXIT_OK


def _list_scenarios() -> int:
    from .sim.scenarios import get_scenario, list_scenarios  # noqa: PLC0415

    for name in list_scenarios():
        print(f"{name:20s} {get_scenario(name).description}")
    return EXIT_OK


async def _demo(address: str, args: argparse.Namespace, clock: Clock) -> None:
    from .sim.demo import run_demo  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="venus-ems-demo-") as state_dir:
        await run_demo(
            address,
            clock,
            scenario=args.scenario,
            start_s=_start(args.start),
            state_dir=state_dir,
            seconds=args.seconds,
            control_port=args.control_port,
            web=args.web_config,
        )


def _web_option(text: str | None) -> WebConfig | None:
    """``--web [HOST:]PORT`` -> an enabled loopback [web] config (ConfigError if malformed)."""
    from pydantic import ValidationError  # noqa: PLC0415

    from .runtime.config import WebConfig  # noqa: PLC0415

    if text is None:
        return None
    host, _, port = text.rpartition(":")
    try:
        return WebConfig(enabled=True, host=host or "127.0.0.1", port=int(port))
    except (ValueError, ValidationError) as err:
        raise ConfigError(f"--web {text}: expected [HOST:]PORT on loopback ({err})") from None


# ----------------------------------------------------------------------------------- sim-fault


def _sim_fault(args: argparse.Namespace) -> int:
    from .sim.control import fault_request  # noqa: PLC0415

    if not args.control:
        raise ConfigError("sim-fault needs --control URL (printed by sim/demo)")
    if args.mode is not None and args.device is None:
        raise ConfigError("sim-fault: name the device before the mode")
    params: dict[str, float] = {}
    for item in args.set:
        name, sep, text = item.partition("=")
        try:
            params[name.strip()] = float(text)
        except ValueError:
            raise ConfigError(f"--set {item!r}: expected NAME=NUMBER") from None
        if not sep:
            raise ConfigError(f"--set {item!r}: expected NAME=NUMBER")
    if params and args.device is None:
        raise ConfigError("sim-fault: --set needs a device")
    try:
        status, answer = anyio.run(
            partial(fault_request, args.control, args.device, args.mode, params)
        )
    except OSError as err:
        print(f"venus-ems: no fault control at {args.control}: {err}", file=sys.stderr)
        return EXIT_FAILURE
    print(json.dumps(answer, indent=2), file=sys.stdout if status == 200 else sys.stderr)
    return EXIT_OK if status == 200 else EXIT_USAGE


def _exit_code(exc: BaseException) -> int:
    """2 for a configuration error, 1 for any other failure; a bug is logged with its traceback."""
    from .runtime.supervisor import root_cause  # noqa: PLC0415

    err = root_cause(exc)
    if isinstance(err, EmsError):
        print(f"venus-ems: {err}", file=sys.stderr)
        return EXIT_USAGE if isinstance(err, ConfigError) else EXIT_FAILURE
    _LOG.critical("venus-ems stopped on a bug", exc_info=err)
    print(f"venus-ems: {type(err).__name__}: {err}", file=sys.stderr)
    return EXIT_FAILURE


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
        if args.command == "hash-password":
            return _hash_password()
        if args.command == "status":
            anyio.run(_status, args.bus, args.count, args.interval, RealClock())
            return EXIT_OK
        if args.command == "sim":
            if args.list:
                return _list_scenarios()
            if args.report is not None:
                return _report(args)
            if args.config or args.compare:
                raise ConfigError("--config and --compare go with --report DIR")
            if args.bus_settings and not args.bus:
                raise ConfigError("--bus-settings needs --bus: a new private bus has no settings")
            return _with_bus(args.bus, _sim, args, _sim_clock(args.speed))
        if args.command == "demo":
            args.web_config = _web_option(args.web)  # a bad --web fails before anything starts
            return _with_bus(args.bus, _demo, args, _sim_clock(args.speed))
        if args.command == "sim-fault":
            return _sim_fault(args)
        if args.command in COMMANDS:
            return run_command(args)
    except KeyboardInterrupt:
        return EXIT_OK
    except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - every end has an exit code
        return _exit_code(exc)
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
