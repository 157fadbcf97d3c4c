"""The ``install``, ``uninstall`` and ``doctor`` sub-commands of the ``venus-ems`` command line.

Only argparse here; each command imports its module when it runs, so ``venus-ems run`` pays
nothing for them.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["COMMANDS", "add_commands", "run_command"]

COMMANDS = ("install", "uninstall", "doctor")


def add_commands(sub: Any) -> None:
    """Add the sub-parsers to the ``venus-ems`` parser's ``add_subparsers()`` object."""
    inst = sub.add_parser(
        "install",
        help="install or upgrade on a GX from a bundle (.run file or unpacked directory)",
    )
    inst.add_argument("bundle", nargs="?", help="venus-ems-<version>-<arch>.run")
    inst.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    _common(inst)
    inst.add_argument("--python", help="interpreter for the daemon (default: this one)")
    inst.add_argument("--timeout", type=float, default=90.0, help="seconds to become healthy")
    inst.add_argument("--settle", type=float, default=10.0, help="seconds it must stay up")

    rm = sub.add_parser("uninstall", help="stop venus-ems and remove it (config kept)")
    _common(rm)
    rm.add_argument("--purge", action="store_true", help="also remove config.toml and state")

    doc = sub.add_parser("doctor", help="what an installer must know, on one screen")
    _common(doc)
    doc.add_argument("--config", type=Path, help="default: /data/venus-ems/config.toml")
    doc.add_argument("--strict", action="store_true", help="warnings count as failures too")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", type=Path, default=Path("/"), help=argparse.SUPPRESS)
    parser.add_argument("--bus", help="D-Bus address (default: the system bus)")


def run_command(args: argparse.Namespace) -> int:
    """Run one of :data:`COMMANDS`; its exit code."""
    if args.command == "install":
        return _install(args)
    if args.command == "uninstall":
        from .uninstaller import uninstall  # noqa: PLC0415

        return uninstall(args.root, purge=args.purge)
    from .doctor import doctor  # noqa: PLC0415

    config = args.config or args.root / "data" / "venus-ems" / "config.toml"
    return doctor(root=args.root, config=config, bus_address=args.bus, strict=args.strict)


def _install(args: argparse.Namespace) -> int:
    import sys  # noqa: PLC0415

    from .installer import InstallOptions, install  # noqa: PLC0415

    if args.source is None:
        if not args.bundle:
            print("venus-ems install: give the bundle file (venus-ems-<version>-<arch>.run)")
            return 2
        return _run_bundle(Path(args.bundle), args)
    opts = InstallOptions(
        source=args.source,
        root=args.root,
        python=args.python or sys.executable,
        bus_address=args.bus,
        timeout_s=args.timeout,
        settle_s=args.settle,
    )
    return install(opts)


def _run_bundle(bundle: Path, args: argparse.Namespace) -> int:
    """Unpack a .run (or .tar.gz) file and run *its* install.sh with our options."""
    import io  # noqa: PLC0415 - `venus-ems run` never needs these
    import os  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import tarfile  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    data = bundle.read_bytes()
    if data.startswith(b"#!"):
        skip = next(
            int(line.split(b"=", 1)[1])
            for line in data.split(b"\n", 40)[:40]
            if line.startswith(b"skip=")
        )
        data = data.split(b"\n", skip - 1)[-1]
    passed = [
        "--root",
        str(args.root),
        "--timeout",
        str(args.timeout),
        "--settle",
        str(args.settle),
    ]
    if args.python:
        passed += ["--python", args.python]
    if args.bus:
        passed += ["--bus", args.bus]
    with tempfile.TemporaryDirectory(prefix="venus-ems-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            tar.extractall(tmp, filter="data")
        (top,) = Path(tmp).iterdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("VENUS_EMS_")}
        return subprocess.run(
            ["sh", str(top / "install.sh"), *passed], env=env, check=False
        ).returncode
