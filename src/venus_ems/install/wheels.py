"""Where a bundle's dependencies come from, and how they are unpacked without pip.

For a GX: the pinned wheels (``release/requirements-gx.txt``) for CPython 3.12 on manylinux
(Venus OS is glibc-based: glibc 2.39 on 3.60+, so ``manylinux_2_17`` .. ``manylinux_2_39``;
musllinux wheels would not load), fetched with ``pip download --only-binary=:all: --no-deps``
into a wheelhouse that later builds reuse offline. A dependency without a wheel for the
architecture but with a pure-Python implementation (dbus-fast on armv7: PyPI has no armv7l
wheel) is taken from the same version's wheel for another architecture, without its compiled
modules. For tests: the distributions installed in this environment.

Wheels are unpacked like an installer would (``*.data/purelib|platlib`` merged, scripts and
headers dropped), minus build sources (``.pyx``, ``.pxd``, ``.c``, ``.h``) and ``RECORD``
(the bundle's own manifest replaces it).
"""

from __future__ import annotations

import email.parser
import hashlib
import importlib.metadata
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "GX_PLATFORMS",
    "Dist",
    "Pin",
    "Platform",
    "closure",
    "copy_installed",
    "extract_wheel",
    "fetch_wheels",
    "host_platform",
    "manylinux",
    "normalize",
    "read_pins",
]

_DROP_SUFFIXES = (".pyx", ".pxd", ".pxi", ".c", ".h", ".cpp", ".pyc")
_COMPILED = (".so", ".pyd")


def normalize(name: str) -> str:
    """PEP 503 name: ``Typing_Extensions`` -> ``typing-extensions``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def manylinux(machine: str, newest: int = 39, oldest: int = 17) -> tuple[str, ...]:
    """``manylinux_2_39_<machine>`` down to ``manylinux_2_17`` and ``manylinux2014``."""
    tags = [f"manylinux_2_{minor}_{machine}" for minor in range(newest, oldest - 1, -1)]
    return (*tags, f"manylinux2014_{machine}")


@dataclass(frozen=True)
class Platform:
    """A bundle target: architecture name, Python ``X.Y``, ``uname -m``, pip platform tags."""

    arch: str
    python: str
    machine: str
    pip_platforms: tuple[str, ...] = ()
    pure: frozenset[str] = field(default_factory=frozenset)
    """Distributions shipped without their compiled modules (pure-Python fallback)."""

    def marker_env(self) -> dict[str, str]:
        """PEP 508 marker values on the device."""
        return {
            "python_version": self.python,
            "python_full_version": f"{self.python}.0",
            "implementation_name": "cpython",
            "platform_python_implementation": "CPython",
            "sys_platform": "linux",
            "platform_system": "Linux",
            "os_name": "posix",
            "platform_machine": self.machine,
            "extra": "",
        }


GX_PLATFORMS = {
    "armv7hf": Platform("armv7hf", "3.12", "armv7l", manylinux("armv7l"), frozenset({"dbus-fast"})),
    "aarch64": Platform("aarch64", "3.12", "aarch64", manylinux("aarch64")),
}
"""Cerbo GX, Ekrano and older boards (cortex-a7/a8 hard-float); Cerbo GX B10+, Raspberry Pi 5."""


def host_platform(*, pure: Iterable[str] = ("dbus-fast",)) -> Platform:
    """This machine (test bundles), by default with dbus-fast pure as on armv7."""
    import platform as _platform  # noqa: PLC0415

    machine = _platform.machine()
    arch = {"armv7l": "armv7hf", "armv8l": "armv7hf"}.get(machine, machine)
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    return Platform(arch, python, machine, (), frozenset(normalize(p) for p in pure))


@dataclass(frozen=True)
class Pin:
    """``name==version``."""

    name: str
    version: str


def read_pins(path: Path) -> list[Pin]:
    """Pins from a requirements file of ``name==version`` lines; ValueError on anything else."""
    pins = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        if not sep or not re.fullmatch(r"[A-Za-z0-9_.-]+", name.strip()) or not version.strip():
            raise ValueError(f"{path}:{number}: expected name==version, got {raw!r}")
        pins.append(Pin(normalize(name.strip()), version.strip()))
    return pins


@dataclass(frozen=True)
class Dist:
    """One dependency as it goes into the bundle."""

    name: str
    version: str
    requires: tuple[str, ...]
    source: str
    """``wheel``, ``wheel without compiled modules`` or ``environment``."""
    origin: Path
    """The wheel file, or the installed distribution's metadata directory."""
    sha256: str | None = None


def _wheel_metadata(wheel: Path) -> tuple[str, str, tuple[str, ...]]:
    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n))
        msg = email.parser.BytesParser().parsebytes(zf.read(meta), headersonly=True)
    return normalize(msg["Name"]), msg["Version"], tuple(msg.get_all("Requires-Dist") or ())


def _pip_download(args: list[str], wheelhouse: Path) -> bool:
    """Offline from the wheelhouse first, then from the index; True on success."""
    base = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q"]
    offline = [*base, "--no-index", "--find-links", str(wheelhouse), "-d", str(wheelhouse), *args]
    if subprocess.run(offline, capture_output=True, check=False).returncode == 0:
        return True
    online = [*base, "-d", str(wheelhouse), *args]
    out = subprocess.run(online, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"pip download failed: {out.stderr.strip()[-2000:]}")
    return True


def fetch_wheels(
    pins: list[Pin], platform: Platform, wheelhouse: Path, say: Callable[[str], None] = print
) -> list[Dist]:
    """Download (or reuse) the wheel of every pin for ``platform``."""
    binary = [p for p in pins if p.name not in platform.pure]
    pure = [p for p in pins if p.name in platform.pure]
    plat_args = [f"--platform={tag}" for tag in platform.pip_platforms]
    py = platform.python.replace(".", "")
    common = ["--only-binary=:all:", "--no-deps", "--implementation", "cp"]
    house = wheelhouse / f"cp{py}-{platform.arch}"
    house.mkdir(parents=True, exist_ok=True)
    say(f"wheels for {platform.arch} (cp{py}) -> {house}")
    _pip_download(
        [
            *common,
            "--python-version",
            platform.python,
            f"--abi=cp{py}",
            "--abi=abi3",
            "--abi=none",
            *plat_args,
            *(f"{p.name}=={p.version}" for p in binary),
        ],
        house,
    )
    donor = GX_PLATFORMS["aarch64"]
    donor_house = wheelhouse / f"cp{py}-{donor.arch}"
    if pure:
        donor_house.mkdir(parents=True, exist_ok=True)
        _pip_download(
            [
                *common,
                "--python-version",
                platform.python,
                f"--abi=cp{py}",
                *(f"--platform={tag}" for tag in donor.pip_platforms),
                *(f"{p.name}=={p.version}" for p in pure),
            ],
            donor_house,
        )
    out = []
    for pin in pins:
        where = donor_house if pin.name in platform.pure else house
        wheel = _find_wheel(where, pin)
        name, version, requires = _wheel_metadata(wheel)
        source = "wheel without compiled modules" if pin.name in platform.pure else "wheel"
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        out.append(Dist(name, version, requires, source, wheel, digest))
    return out


def _find_wheel(house: Path, pin: Pin) -> Path:
    stem = re.sub(r"[-_.]+", "_", pin.name)
    for wheel in sorted(house.glob("*.whl")):
        dist, version = wheel.name.split("-")[:2]
        if normalize(dist) == normalize(stem) and version == pin.version:
            return wheel
    raise FileNotFoundError(f"no wheel of {pin.name}=={pin.version} in {house}")


def _keep(rel: str, *, pure: bool) -> bool:
    if rel.endswith(_DROP_SUFFIXES) or "/__pycache__/" in f"/{rel}":
        return False
    if pure and rel.endswith(_COMPILED):
        return False
    return not re.fullmatch(r"[^/]+\.dist-info/(RECORD|INSTALLER|REQUESTED|direct_url\.json)", rel)


def extract_wheel(wheel: Path, dest: Path, *, pure: bool = False) -> None:
    """Unpack ``wheel`` into the site directory ``dest`` as an installer would."""
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            rel = info.filename
            data = re.match(r"[^/]+\.data/(purelib|platlib)/(.+)", rel)
            if data:
                rel = data.group(2)
            elif re.match(r"[^/]+\.data/", rel):
                continue
            if ".." in rel.split("/") or rel.startswith("/") or not _keep(rel, pure=pure):
                continue
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(info))
    _mark_installer(dest, wheel.name.split("-")[0], pure=pure)


def _mark_installer(dest: Path, stem: str, *, pure: bool) -> None:
    for info in dest.glob("*.dist-info"):
        if normalize(info.name.split("-")[0]) == normalize(stem):
            text = "venus-ems bundle" + (" (pure Python: compiled modules removed)" if pure else "")
            (info / "INSTALLER").write_text(text + "\n", encoding="utf-8")


def copy_installed(name: str, dest: Path, *, pure: bool = False) -> Dist:
    """Copy the installed distribution ``name`` into ``dest`` (test bundles)."""
    dist = importlib.metadata.distribution(name)
    base = Path(str(dist.locate_file("")))
    for entry in dist.files or ():
        rel = entry.as_posix()
        if ".." in rel.split("/") or not _keep(rel, pure=pure):
            continue
        origin = base / rel
        if origin.is_file():
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(origin, target)
    _mark_installer(dest, name, pure=pure)
    source = "environment (compiled modules removed)" if pure else "environment"
    return Dist(
        normalize(dist.metadata["Name"]),
        dist.version,
        tuple(dist.requires or ()),
        source,
        base,
    )


def closure(
    roots: Iterable[str], requires: Callable[[str], Iterable[str]], env: dict[str, str]
) -> list[str]:
    """Normalised names of ``roots`` and everything they require on ``env`` (markers applied).

    ``roots`` and the strings ``requires(name)`` returns are PEP 508 requirements.
    """
    from packaging.requirements import Requirement  # noqa: PLC0415 - build machine only

    seen: list[str] = []
    todo = list(roots)
    while todo:
        req = Requirement(todo.pop(0))
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        name = normalize(req.name)
        if name in seen:
            continue
        seen.append(name)
        todo.extend(requires(name))
    return seen
