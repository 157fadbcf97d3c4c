"""``./dev bundle``: the release bundle for a GX, one self-extracting file per architecture.

The file ``venus-ems-<version>-<arch>.run`` is a short sh script followed by a tar.gz of::

    venus-ems-<version>/
      install.sh  launch.py  bundle.json  VERSION  PLATFORM  config.example.toml
      lib/                 venus_ems and the dependencies the firmware lacks (as we need them)
      groups/dbus-fast/    packages the firmware may ship in a version we accept (see launch.py);
      groups/aiohttp/      the bundled copy is used otherwise
      MANIFEST.sha256      every other file, sha256sum format

The archive is reproducible: sorted entries, fixed owner, modes and times
(``SOURCE_DATE_EPOCH``), gzip without a timestamp.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import manifest
from .wheels import (
    GX_PLATFORMS,
    Dist,
    Platform,
    closure,
    copy_installed,
    extract_wheel,
    fetch_wheels,
    host_platform,
    normalize,
    read_pins,
)

__all__ = ["BUILD_ONLY", "GROUPS", "MAX_BYTES", "build", "main"]

GROUPS = {"dbus-fast": "dbus-fast", "aiohttp": "aiohttp"}
"""Group name -> the distribution whose version decides whether the image's copy is used."""

MAX_BYTES = 15_000_000
"""Budget of one architecture's file."""

HERE = Path(__file__).resolve().parent
_EPOCH = 1_704_067_200  # 2024-01-01, when SOURCE_DATE_EPOCH is not set


def _project(repo: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib  # noqa: PLC0415
    else:  # pragma: no cover
        import tomli as tomllib  # type: ignore[import-not-found,unused-ignore] # noqa: PLC0415

    project: dict[str, Any] = tomllib.loads((repo / "pyproject.toml").read_text("utf-8"))["project"]
    return project


def _minimum(requirement: str) -> str:
    """``"dbus-fast>=2.24"`` -> ``"2.24"`` (``"0"`` without a lower bound)."""
    from packaging.requirements import Requirement  # noqa: PLC0415

    lows = [s.version for s in Requirement(requirement).specifier if s.operator in (">=", "==")]
    return lows[0] if lows else "0"


def build(
    arch: str,
    out: Path,
    *,
    repo: Path,
    wheelhouse: Path | None = None,
    from_env: bool = False,
    version: str | None = None,
    compresslevel: int = 9,
    host_pure: tuple[str, ...] = ("dbus-fast",),
    say: Callable[[str], None] = print,
) -> Path:
    """Build the bundle for ``arch`` (``host`` with ``from_env``) into ``out``; its path.

    ``host_pure``: distributions a host bundle ships without compiled modules (as on armv7).
    """
    project = _project(repo)
    version = version or project["version"]
    platform = host_platform(pure=host_pure) if arch == "host" else GX_PLATFORMS[arch]
    top = f"venus-ems-{version}"
    stage = out / f".stage-{platform.arch}" / top
    shutil.rmtree(stage.parent, ignore_errors=True)
    stage.mkdir(parents=True)

    dists = _dependencies(platform, repo, stage, wheelhouse, from_env, project, say)
    groups = _place_groups(platform, project["dependencies"], dists, stage, from_env)
    _copy_package(repo / "src" / "venus_ems", stage / "lib" / "venus_ems", version)
    shutil.copyfile(HERE.parent / "launch.py", stage / "launch.py")
    shutil.copyfile(HERE / "sh" / "install.sh", stage / "install.sh")
    (stage / "install.sh").chmod(0o755)
    shutil.copyfile(repo / "config.example.toml", stage / "config.example.toml")
    (stage / "VERSION").write_text(version + "\n", encoding="utf-8")
    (stage / "PLATFORM").write_text(
        f"arch={platform.arch}\npython={platform.python}\n", encoding="utf-8"
    )
    info = {
        "name": "venus-ems",
        "version": version,
        "arch": platform.arch,
        "python": platform.python,
        "platform_tags": list(platform.pip_platforms),
        "groups": groups,
        "packages": [
            {
                "name": d.name,
                "version": d.version,
                "source": d.source,
                "file": d.origin.name if not from_env else None,
                "sha256": d.sha256,
                "group": next((g for g, v in groups.items() if d.name in v["members"]), None),
            }
            for d in sorted(dists.values(), key=lambda d: d.name)
        ],
    }
    (stage / "bundle.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    manifest.write(stage)
    payload = _tar_gz(stage.parent, top, compresslevel)
    target = out / f"venus-ems-{version}-{platform.arch}.run"
    target.write_bytes(_header(version, platform.arch, top, payload) + payload)
    target.chmod(0o755)
    shutil.rmtree(stage.parent)
    say(f"{target}: {target.stat().st_size / 1e6:.1f} MB")
    return target


def _dependencies(
    platform: Platform,
    repo: Path,
    stage: Path,
    wheelhouse: Path | None,
    from_env: bool,
    project: dict[str, Any],
    say: Callable[[str], None],
) -> dict[str, Dist]:
    """Every dependency (closure of pyproject's, on the target), unpacked into a scratch dir."""
    env = platform.marker_env()
    scratch = stage.parent / "unpacked"
    if from_env:
        import importlib.metadata as md  # noqa: PLC0415

        names = closure(project["dependencies"], lambda n: md.requires(n) or (), env)
        dists = {}
        for name in names:
            dists[name] = copy_installed(name, scratch / name, pure=name in platform.pure)
        return dists
    pins = read_pins(repo / "release" / "requirements-gx.txt")
    house = wheelhouse or Path.home() / ".cache" / "venus-ems" / "wheelhouse"
    fetched = {d.name: d for d in fetch_wheels(pins, platform, house, say)}
    missing = [
        n
        for n in closure(
            project["dependencies"], lambda n: fetched[n].requires if n in fetched else (), env
        )
        if n not in fetched
    ]
    if missing:
        raise RuntimeError(f"release/requirements-gx.txt lacks {', '.join(missing)}")
    for dist in fetched.values():
        extract_wheel(dist.origin, scratch / dist.name, pure=dist.name in platform.pure)
    return fetched


def _place_groups(
    platform: Platform,
    requirements: list[str],
    dists: dict[str, Dist],
    stage: Path,
    from_env: bool,
) -> dict[str, dict[str, Any]]:
    """Move each dependency to ``lib/`` or its group; the groups' description for bundle.json.

    A group holds its root and what only the root needs; anything the rest also needs is core.
    """
    env = platform.marker_env()

    def requires(name: str) -> tuple[str, ...]:
        return dists[name].requires if name in dists else ()

    roots = {
        normalize(r.split(";")[0].split(">")[0].split("=")[0].split("<")[0]): r
        for r in requirements
    }
    group_roots = {normalize(d) for d in GROUPS.values()}
    core = set(closure([r for n, r in roots.items() if n not in group_roots], requires, env))
    groups: dict[str, dict[str, Any]] = {}
    for group, root in GROUPS.items():
        members = [n for n in closure([roots[root]], requires, env) if n not in core]
        groups[group] = {
            "dir": f"groups/{group}",
            "dist": root,
            "minimum": _minimum(roots[root]),
            "bundled": dists[root].version,
            "members": members,
        }
    scratch = stage.parent / "unpacked"
    for name in dists:
        where = next((v["dir"] for v in groups.values() if name in v["members"]), "lib")
        _merge(scratch / name, stage / where)
    shutil.rmtree(scratch)
    del from_env
    return groups


def _merge(source: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():
        target = dest / item.name
        if item.is_dir():
            shutil.copytree(item, target, dirs_exist_ok=True)
        else:
            shutil.copyfile(item, target)


BUILD_ONLY = ("install/bundle.py", "install/wheels.py")
"""Modules that build bundles (they need ``packaging``): not shipped."""


def _copy_package(src: Path, dest: Path, version: str) -> None:
    """Our package without byte-code and build-only modules, plus a minimal dist-info."""
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for rel in BUILD_ONLY:
        (dest / rel).unlink()
    info = dest.parent / f"venus_ems-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: venus-ems\nVersion: {version}\n", encoding="utf-8"
    )
    (info / "INSTALLER").write_text("venus-ems bundle\n", encoding="utf-8")


def _tar_gz(base: Path, top: str, compresslevel: int) -> bytes:
    """A reproducible tar.gz of ``base/top``."""
    mtime = int(os.environ.get("SOURCE_DATE_EPOCH", _EPOCH))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in [base / top, *sorted((base / top).rglob("*"))]:
            info = tar.gettarinfo(str(path), arcname=path.relative_to(base).as_posix())
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = mtime
            executable = path.is_dir() or path.name == "install.sh"
            info.mode = 0o755 if executable else 0o644
            if path.is_file():
                with path.open("rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    packed = io.BytesIO()
    with gzip.GzipFile(
        fileobj=packed, mode="wb", compresslevel=compresslevel, mtime=0, filename=""
    ) as gz:
        gz.write(raw.getvalue())
    return packed.getvalue()


def _header(version: str, arch: str, top: str, payload: bytes) -> bytes:
    text = (HERE / "sh" / "selfextract.sh").read_text(encoding="utf-8")
    lines = text.count("\n") + 1
    for key, value in {
        "@VERSION@": version,
        "@ARCH@": arch,
        "@TOP@": top,
        "@LINES@": str(lines),
        "@PAYLOAD_SHA256@": hashlib.sha256(payload).hexdigest(),
    }.items():
        text = text.replace(key, value)
    return text.encode("utf-8")


def main(argv: list[str] | None = None) -> int:
    """``python -m venus_ems.install.bundle [--arch A]... [--out DIR]``; 1 if over budget."""
    ap = argparse.ArgumentParser(prog="venus-ems-bundle", description=__doc__.splitlines()[0])
    ap.add_argument("--arch", action="append", choices=[*GX_PLATFORMS, "host"])
    ap.add_argument("--out", type=Path, default=Path("dist"))
    ap.add_argument("--wheelhouse", type=Path, help="wheel cache (default ~/.cache/venus-ems)")
    ap.add_argument(
        "--from-env", action="store_true", help="host only: this environment's packages"
    )
    ap.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[3])
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    status = 0
    sums = []
    for arch in args.arch or list(GX_PLATFORMS):
        path = build(
            arch, args.out, repo=args.repo, wheelhouse=args.wheelhouse, from_env=args.from_env
        )
        sums.append(f"{manifest.sha256_file(path)}  {path.name}\n")
        if path.stat().st_size > MAX_BYTES:
            print(f"{path.name} is over the {MAX_BYTES / 1e6:.0f} MB budget", file=sys.stderr)
            status = 1
    (args.out / "SHA256SUMS").write_text("".join(sums), encoding="utf-8")
    return status


if __name__ == "__main__":
    sys.exit(main())
