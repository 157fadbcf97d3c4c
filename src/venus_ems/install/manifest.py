"""SHA-256 manifests in ``sha256sum`` format (``<hex>  <relative path>``), written and verified.

``MANIFEST.sha256`` lists every file of a bundle except itself, sorted, so ``sha256sum -c`` on
the GX verifies it too. Python byte-code caches (``__pycache__``) are never listed: they are
written on the device.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

__all__ = ["MANIFEST", "digest", "files", "sha256_file", "verify", "write"]

MANIFEST = "MANIFEST.sha256"
_CHUNK = 1 << 16


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes; OSError if unreadable."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def files(top: Path) -> Iterator[Path]:
    """Every regular file under ``top`` that a manifest lists, sorted by relative path."""
    found = [
        p
        for p in top.rglob("*")
        if (p.is_file() or p.is_symlink())
        and "__pycache__" not in p.relative_to(top).parts
        and p.relative_to(top).as_posix() != MANIFEST
    ]
    yield from sorted(found, key=lambda p: p.relative_to(top).as_posix())


def write(top: Path) -> str:
    """Write ``top/MANIFEST.sha256``; return its text."""
    lines = [f"{sha256_file(p)}  {p.relative_to(top).as_posix()}\n" for p in files(top)]
    text = "".join(lines)
    (top / MANIFEST).write_text(text, encoding="utf-8")
    return text


def digest(top: Path) -> str:
    """SHA-256 of the manifest itself: one identifier for the whole build."""
    return hashlib.sha256((top / MANIFEST).read_bytes()).hexdigest()


def verify(top: Path) -> list[str]:
    """Problems found in ``top`` against its manifest; [] when every file is present and equal.

    Files that are present but not listed are problems too (a bundle must be exactly what was
    built), except byte-code caches.
    """
    try:
        text = (top / MANIFEST).read_text(encoding="utf-8")
    except OSError as err:
        return [f"{MANIFEST} cannot be read: {err.strerror or err}"]
    problems: list[str] = []
    listed: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        want, sep, rel = line.partition("  ")
        if not sep or len(want) != 64 or not rel or rel.startswith("/") or ".." in rel.split("/"):
            problems.append(f"{MANIFEST} line {number} is malformed")
            continue
        listed.add(rel)
        path = top / rel
        try:
            have = sha256_file(path)
        except OSError:
            problems.append(f"{rel}: missing")
            continue
        if have != want:
            problems.append(f"{rel}: checksum mismatch")
    problems.extend(
        f"{rel}: not in the manifest"
        for rel in (p.relative_to(top).as_posix() for p in files(top))
        if rel not in listed
    )
    return problems
