"""Start venus-ems from an installed or unpacked bundle, seeing only the bundle's packages.

The service's ``run`` script and ``bin/venus-ems`` run ``python3 -I -S launch.py ARGS``: no
environment variables, no user or system site-packages, so nothing but the bundle and the
standard library is importable — except a package group (``dbus-fast``, ``aiohttp`` and its
helpers) that the firmware itself ships in a version we accept: then the image's copy is used
and the system site-packages directory is appended after the bundle. A version is accepted when
it is at least the minimum venus-ems declares and has the major version of the bundled one.
The choice is made at every start, so a firmware update that brings a newer (or older) copy is
followed without reinstalling.

``launch.py --check`` imports every module of venus_ems and reports what fails: the installer
runs it with the device's Python before switching to a new version. This file uses only the
standard library and is copied to the bundle's top directory.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

__all__ = ["accepts", "check_imports", "choose_paths", "image_versions", "main", "version_key"]

HERE = Path(__file__).resolve().parent
_DIST = re.compile(r"^(?P<name>[A-Za-z0-9_.]+?)-(?P<version>[0-9][^-]*)\.(?:dist|egg)-info$")


def version_key(text: str) -> tuple[int, ...]:
    """``"3.9.4"`` -> (3, 9, 4); stops at the first part that is not a number (``"2.0rc1"``)."""
    out: list[int] = []
    for part in text.split("."):
        digits = re.match(r"\d+", part)
        if digits is None:
            break
        out.append(int(digits.group()))
        if digits.end() != len(part):
            break
    return tuple(out)


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def image_versions(site_dirs: list[str]) -> dict[str, str]:
    """Normalised distribution name -> version found in the given site-packages directories."""
    found: dict[str, str] = {}
    for directory in site_dirs:
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            match = _DIST.match(name)
            if match:
                found.setdefault(_normal(match.group("name")), match.group("version"))
    return found


def accepts(image: str, *, minimum: str, bundled: str) -> bool:
    """True if the image's version is >= ``minimum`` with the major version of ``bundled``."""
    have, low, ours = version_key(image), version_key(minimum), version_key(bundled)
    return bool(have) and have >= low and have[:1] == ours[:1]


def choose_paths(
    bundle: dict[str, Any], top: Path, site_dirs: list[str]
) -> tuple[list[str], dict[str, str]]:
    """(sys.path entries to put first, {group: "bundled 5.2.0" or "image 5.3.0"})."""
    paths = [str(top / "lib")]
    chosen: dict[str, str] = {}
    image = image_versions(site_dirs)
    reuse = False
    for group, info in sorted(bundle.get("groups", {}).items()):
        have = image.get(_normal(info["dist"]))
        if have and accepts(have, minimum=info["minimum"], bundled=info["bundled"]):
            chosen[group] = f"image {have}"
            reuse = True
        else:
            paths.append(str(top / info["dir"]))
            chosen[group] = f"bundled {info['bundled']}"
    if reuse:
        paths.extend(d for d in site_dirs if d not in sys.path)
    return paths, chosen


def _system_site_dirs() -> list[str]:
    import site  # noqa: PLC0415 - only to compute the directories; not run at start-up (-S)

    return [d for d in site.getsitepackages() if os.path.isdir(d)]


def check_imports(package: str = "venus_ems") -> list[str]:
    """Import every module of ``package``; one line per module that fails."""
    import importlib  # noqa: PLC0415
    import pkgutil  # noqa: PLC0415

    failures: list[str] = []
    root = importlib.import_module(package)
    names = [package] + [
        m.name for m in pkgutil.walk_packages(root.__path__, f"{package}.", onerror=lambda _: None)
    ]
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as err:  # noqa: BLE001, PERF203 - report every failure, keep going
            failures.append(f"{name}: {type(err).__name__}: {err}")
    return failures


def _no_pydantic_plugins() -> None:
    """Give pydantic a plugin loader that finds none (a bundle has no plugins).

    pydantic searches every installed distribution's entry points for plugins, importing
    importlib.metadata, email, zipfile and csv to do so (about 1 MB). ``PYDANTIC_DISABLE_PLUGINS``
    (set too) is the documented switch; it skips the search but not those imports.
    """
    import types  # noqa: PLC0415

    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    loader = types.ModuleType("pydantic.plugin._loader")
    loader.get_plugins = lambda: ()  # type: ignore[attr-defined]
    sys.modules.setdefault("pydantic.plugin._loader", loader)


def _site_dirs() -> list[str]:
    """The system site-packages, or ``$VENUS_EMS_SITE_DIRS`` (``:``-separated; tests)."""
    override = os.environ.get("VENUS_EMS_SITE_DIRS")
    if override is not None:
        return [d for d in override.split(os.pathsep) if d]
    return _system_site_dirs()


def main(argv: list[str]) -> int:
    """Set up ``sys.path`` from ``bundle.json`` and run the venus-ems command line."""
    bundle = json.loads((HERE / "bundle.json").read_text(encoding="utf-8"))
    paths, chosen = choose_paths(bundle, HERE, _site_dirs())
    sys.path[:0] = [p for p in paths if p not in sys.path]
    _no_pydantic_plugins()
    os.environ["VENUS_EMS_BUNDLE"] = str(HERE)
    os.environ["VENUS_EMS_PACKAGES"] = ", ".join(f"{g} {c}" for g, c in chosen.items())
    if argv[:1] == ["--check"]:
        failures = check_imports()
        for line in failures:
            print(line, file=sys.stderr)
        if not failures:
            packages = os.environ["VENUS_EMS_PACKAGES"]
            print(f"venus-ems {bundle['version']}: every module imports ({packages})")
        return 1 if failures else 0
    from venus_ems.cli import main as cli_main  # noqa: PLC0415

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
