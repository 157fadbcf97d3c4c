"""Where an installation lives, every path relative to a root prefix (``/`` on a GX).

Code (replaced on upgrade) and user data (kept) are apart:

* code: ``/data/apps/available/venus-ems`` on Venus OS 3.70+ (with the ``/data/apps/enabled``
  link), else ``/data/venus-ems``; inside it ``versions/<version>-<build>/``, the ``current``
  and ``previous`` links, ``service/`` (daemontools ``run`` and ``log/run``), ``bin/venus-ems``,
  ``boot.sh`` and ``install.json``;
* data: ``/data/venus-ems/config.toml`` and ``/data/venus-ems/state/`` (on both layouts), and
  ``/data/venus-ems/venus-ems``, a link to ``bin/venus-ems``;
* ``/service/venus-ems`` -> the service directory, re-linked at boot by ``/data/rc.local``;
* ``/var/log/venus-ems``: multilog's directory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["NAME", "Layout", "find_installed"]

NAME = "venus-ems"


@dataclass(frozen=True)
class Layout:
    """Every path of one installation under ``root``."""

    root: Path
    apps: bool
    """True for the ``/data/apps`` layout (Venus OS 3.70+)."""

    @property
    def data(self) -> Path:
        """``/data``: the only place that survives a firmware update."""
        return self.root / "data"

    @property
    def home(self) -> Path:
        """User data: ``/data/venus-ems`` (config and state)."""
        return self.data / NAME

    @property
    def code(self) -> Path:
        """The code directory (equal to :attr:`home` on the classic layout)."""
        return self.data / "apps" / "available" / NAME if self.apps else self.home

    @property
    def apps_enabled(self) -> Path:
        """``/data/apps/enabled/venus-ems`` (a link to :attr:`code`), apps layout only."""
        return self.data / "apps" / "enabled" / NAME

    @property
    def config(self) -> Path:
        """The user's config file, kept on upgrade and by a plain uninstall."""
        return self.home / "config.toml"

    @property
    def state(self) -> Path:
        """Persisted state (energy counters), kept like the config."""
        return self.home / "state"

    @property
    def versions(self) -> Path:
        """One directory per installed build."""
        return self.code / "versions"

    @property
    def current(self) -> Path:
        """Link to the running build."""
        return self.code / "current"

    @property
    def previous(self) -> Path:
        """Link to the build to roll back to."""
        return self.code / "previous"

    @property
    def service(self) -> Path:
        """The daemontools service directory (``run``, ``log/run``)."""
        return self.code / "service"

    @property
    def bin(self) -> Path:
        """``bin/venus-ems``: the command line of the current build."""
        return self.code / "bin" / NAME

    @property
    def command(self) -> Path:
        """``/data/venus-ems/venus-ems``: the same command, at one path on both layouts."""
        return self.home / NAME

    @property
    def boot_script(self) -> Path:
        """Run from ``/data/rc.local`` at every boot: re-links the service."""
        return self.code / "boot.sh"

    @property
    def record(self) -> Path:
        """``install.json``: what the installer created (so uninstall removes exactly that)."""
        return self.code / "install.json"

    @property
    def service_link(self) -> Path:
        """``/service/venus-ems`` (``/service`` is rebuilt in RAM at every boot)."""
        return self.root / "service" / NAME

    @property
    def log_dir(self) -> Path:
        """Multilog's directory (``/var/log`` is ``/data/log`` on a GX)."""
        return self.root / "var" / "log" / NAME

    @property
    def rc_local(self) -> Path:
        """The boot hook run at runlevel 5, after svscan started."""
        return self.data / "rc.local"

    def read_record(self) -> dict[str, Any]:
        """The installer's record, {} when there is none or it is unreadable."""
        try:
            data = json.loads(self.record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}


def find_installed(root: Path) -> Layout | None:
    """The installation under ``root`` (either layout), None when there is none."""
    for apps in (True, False):
        layout = Layout(root, apps)
        if layout.record.is_file() or layout.current.is_symlink():
            return layout
    return None
