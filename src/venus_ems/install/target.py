"""The device we install on: Venus OS version, CPU architecture and Python, and what we support.

Facts (docs/deployment.md): Venus OS 3.60 and later ship Python 3.12 on glibc 2.39; older
releases ship Python 3.8 and are refused. ``/opt/victronenergy/version`` holds the release on its
first line (``v3.67``, betas ``v3.80~40``). ``uname -m`` is ``armv7l`` on the Cerbo GX, Ekrano
and older boards and ``aarch64`` on the Cerbo GX B10+, Raspberry Pi 5 and newer.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "APPS_LAYOUT_FROM",
    "BUNDLE_ARCHES",
    "MIN_VENUS",
    "Target",
    "VenusVersion",
    "bundle_arch",
    "read_target",
    "refusals",
]

MIN_VENUS = (3, 60)
"""Oldest Venus OS we install on (the first with Python 3.12)."""

APPS_LAYOUT_FROM = (3, 70)
"""From this release on, code goes under ``/data/apps/available/venus-ems``."""

BUNDLE_ARCHES = {"armv7l": "armv7hf", "armv8l": "armv7hf", "aarch64": "aarch64", "x86_64": "x86_64"}
"""``uname -m`` -> the bundle architecture that runs there (x86_64 bundles are for tests)."""

_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:~(\d+))?")


@dataclass(frozen=True, order=True)
class VenusVersion:
    """A Venus OS release: ``v3.67`` is (3, 67), the beta ``v3.80~40`` is (3, 80) beta 40."""

    major: int
    minor: int
    beta: int | None = None

    @classmethod
    def parse(cls, text: str) -> VenusVersion | None:
        """The release in ``text`` (first line of the version file), None if unreadable."""
        match = _VERSION.match(text.strip())
        if match is None:
            return None
        beta = int(match.group(3)) if match.group(3) else None
        return cls(int(match.group(1)), int(match.group(2)), beta)

    def __str__(self) -> str:
        """``v3.80~40``."""
        return f"v{self.major}.{self.minor:02d}" + (f"~{self.beta}" if self.beta else "")

    @property
    def release(self) -> tuple[int, int]:
        """(major, minor), betas count as the release they lead to."""
        return (self.major, self.minor)


@dataclass(frozen=True)
class Target:
    """What we know about the device."""

    venus: VenusVersion | None
    """None when ``/opt/victronenergy/version`` is missing or unreadable (not a GX)."""
    machine: str | None
    """Venus machine name from ``/etc/venus/machine`` (``einstein`` = Cerbo GX), if known."""
    uname: str
    """``uname -m``."""
    python: tuple[int, int]
    """The Python that runs us."""

    @property
    def arch(self) -> str | None:
        """The bundle architecture this device runs, None if none does."""
        return bundle_arch(self.uname)

    @property
    def apps_layout(self) -> bool:
        """True on Venus OS 3.70 and later (``/data/apps``)."""
        return self.venus is not None and self.venus.release >= APPS_LAYOUT_FROM


def bundle_arch(uname_machine: str) -> str | None:
    """``armv7l`` -> ``armv7hf``; None for a machine no bundle is built for."""
    return BUNDLE_ARCHES.get(uname_machine)


def _first_line(path: Path) -> str | None:
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            return f.readline(200).strip() or None
    except OSError:
        return None


def read_target(root: Path, *, uname: str | None = None) -> Target:
    """The device under ``root`` (``/`` on a GX; a temporary tree in tests)."""
    text = _first_line(root / "opt" / "victronenergy" / "version")
    return Target(
        venus=VenusVersion.parse(text) if text else None,
        machine=_first_line(root / "etc" / "venus" / "machine"),
        uname=uname or os.uname().machine,
        python=(sys.version_info.major, sys.version_info.minor),
    )


def refusals(target: Target, *, arch: str, python: str) -> list[str]:
    """Why a bundle for ``arch`` and Python ``python`` ("3.12") cannot run here; [] if it can."""
    out: list[str] = []
    if target.venus is None:
        out.append(
            "this is not a Venus OS device (no readable /opt/victronenergy/version); "
            "venus-ems installs on a GX running Venus OS v3.60 or later"
        )
    elif target.venus.release < MIN_VENUS:
        out.append(
            f"Venus OS {target.venus} is too old: venus-ems needs v3.60 or later "
            "(earlier releases ship Python 3.8); update the firmware first"
        )
    here = target.arch
    if here != arch:
        hint = f"use the {here} bundle" if here else "no venus-ems bundle exists for this CPU"
        out.append(f"this bundle is for {arch}, this device is {target.uname}: {hint}")
    have = f"{target.python[0]}.{target.python[1]}"
    if have != python:
        out.append(
            f"this bundle is built for Python {python}, this device runs Python {have}"
            + (" (Venus OS v3.60 and later ship 3.12)" if python == "3.12" else "")
        )
    return out
