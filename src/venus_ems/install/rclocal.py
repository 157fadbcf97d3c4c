"""Our line in ``/data/rc.local``: added once, never touching anyone else's lines, removed exactly.

The line carries a marker so it is found again; it goes before a final ``exit`` (lines after it
would never run) and the file keeps every other byte. A file we created is deleted again when
our line was all it held. Venus OS runs ``/data/rc.local`` only when it is executable, and its
Modifications check may disable it by renaming it ``rc.local.disabled``: both are reported.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MARKER", "HookResult", "add_hook", "hook_line", "remove_hook"]

MARKER = "# venus-ems boot hook"
_SHEBANG = "#!/bin/sh\n"
_EXIT = re.compile(r"^\s*exit(\s+\S+)?\s*(#.*)?$")


def hook_line(boot_script: Path) -> str:
    """The line: run ``boot.sh`` if it is there, never fail the rest of rc.local."""
    path = shlex.quote(str(boot_script))
    return f"[ -x {path} ] && {path} || true  {MARKER}\n"


@dataclass(frozen=True)
class HookResult:
    """What :func:`add_hook` did: ``changed``, ``created`` the file, and warnings for the user."""

    changed: bool
    created: bool
    warnings: tuple[str, ...] = ()
    added_newline: bool = False
    """The file did not end in a newline and we added one (removed again with our line)."""


def add_hook(rc_local: Path, line: str) -> HookResult:
    """Make ``rc_local`` run ``line`` at boot; idempotent (an old form of our line is replaced)."""
    warnings: list[str] = []
    disabled = rc_local.with_name(rc_local.name + ".disabled")
    if disabled.exists():
        warnings.append(
            f"{disabled} exists: Venus OS disabled the boot hooks (Settings > General > "
            "Modifications); venus-ems will not start after a reboot until they are enabled"
        )
    if not rc_local.exists():
        rc_local.write_text(_SHEBANG + line, encoding="utf-8")
        rc_local.chmod(0o755)
        return HookResult(True, True, tuple(warnings))
    text = rc_local.read_text(encoding="utf-8", errors="surrogateescape")
    lines = text.splitlines(keepends=True)
    ours = [i for i, existing in enumerate(lines) if MARKER in existing]
    added_newline = False
    if ours == [] or len(ours) > 1 or lines[ours[0]] != line:
        kept = [existing for existing in lines if MARKER not in existing]
        if kept and not kept[-1].endswith("\n"):
            kept[-1] += "\n"
            added_newline = True
        kept.insert(_insert_at(kept), line)
        _write(rc_local, "".join(kept))
        changed = True
    else:
        changed = False
    if not rc_local.stat().st_mode & 0o100:
        warnings.append(
            f"{rc_local} is not executable, so Venus OS does not run it at boot: "
            f"`chmod +x {rc_local}` if its other lines may run too"
        )
    return HookResult(changed, False, tuple(warnings), added_newline)


def _insert_at(lines: list[str]) -> int:
    """Index before a trailing ``exit`` (and the blank lines and comments after it)."""
    for i in range(len(lines) - 1, -1, -1):
        stripped = lines[i].strip()
        if not stripped or (stripped.startswith("#") and not stripped.startswith("#!")):
            continue
        return i if _EXIT.match(stripped) else len(lines)
    return len(lines)


def remove_hook(rc_local: Path, *, created: bool, added_newline: bool = False) -> bool:
    """Remove our line; delete the file if we ``created`` it and nothing else is left."""
    try:
        text = rc_local.read_text(encoding="utf-8", errors="surrogateescape")
    except FileNotFoundError:
        return False
    lines = text.splitlines(keepends=True)
    kept = [line for line in lines if MARKER not in line]
    if len(kept) == len(lines):
        return False
    rest = "".join(kept)
    if added_newline and rest.endswith("\n"):
        rest = rest[:-1]
    if created and rest.strip() in ("", _SHEBANG.strip()):
        rc_local.unlink()
    else:
        _write(rc_local, rest)
    return True


def _write(path: Path, text: str) -> None:
    """Replace the file's content, keeping its mode (atomic rename)."""
    mode = path.stat().st_mode & 0o7777
    tmp = path.with_name(f".{path.name}.venus-ems")
    tmp.write_text(text, encoding="utf-8", errors="surrogateescape")
    tmp.chmod(mode)
    tmp.replace(path)
