"""Fault row "bad config (fuzz of mutated example configs)": exit 0 or 2 only, every problem named.

config.example.toml is mutated (wrong types, huge numbers, deep tables, NUL and other control
characters, unicode, missing and extra keys), written back as TOML and checked, in-process
(many examples) and with the real command line (a few). Derandomized under CI (conftest).
"""

from __future__ import annotations

import copy
import io
import math
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from venus_ems.cli import main
from venus_ems.runtime.config import (
    EXIT_INVALID,
    EXIT_OK,
    InvalidConfigError,
    check_config,
    load_config,
)
from venus_ems.runtime.config.report import Loc, format_loc

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

EXAMPLES = int(os.environ.get("VENUS_EMS_FUZZ_EXAMPLES", "300"))
EXAMPLE = Path(__file__).parents[2] / "config.example.toml"
BASE: dict[str, Any] = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))


# ----------------------------------------------------------------- TOML out


@dataclass(frozen=True)
class Digits:
    """An integer too large for ``str(int)``, written as its digits."""

    text: str


@dataclass(frozen=True)
class Deep:
    """Tables or arrays nested ``depth`` levels deep, written as text (no deep Python value)."""

    depth: int
    kind: str

    def toml(self) -> str:
        if self.kind == "table":
            return "{ a = " * self.depth + "1" + " }" * self.depth
        return "[" * self.depth + "1" + "]" * self.depth


def _string(text: str) -> str:
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def to_toml(value: Any) -> str:
    """One TOML value (inline tables and arrays only)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Digits):
        return value.text
    if isinstance(value, Deep):
        return value.toml()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_string(k)} = {to_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(to_toml(v) for v in value) + "]"
    raise TypeError(type(value))


def document(data: dict[str, Any]) -> str:
    """A TOML document: one line per top-level key."""
    return "".join(f"{_string(k)} = {to_toml(v)}\n" for k, v in data.items())


# ----------------------------------------------------------------- mutations


def _locs(value: Any, loc: Loc = ()) -> list[Loc]:
    out = [loc] if loc else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _locs(v, (*loc, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _locs(v, (*loc, i))
    return out


LOCS = _locs(BASE)


def _at(data: Any, loc: Loc) -> Any:
    for part in loc:
        data = data[part]
    return data


TABLES = [()] + [loc for loc in LOCS if isinstance(_at(BASE, loc), dict)]

CREDENTIALS = "admin:hunter2@192.168.1.50"
HOSTILE_TEXT = [
    "",
    "\x00",
    "a\x00b",
    "\x1b[2J",
    "line\nbreak",
    "\u202eevil",
    "\uff11\uff12",
    "💥" * 50,
    "x" * 5000,
    "192.168.1.50:99999",
    CREDENTIALS,
    "http://192.168.1.50/",
    "[fe80::1",
    "com.victronenergy.",
    "/Ac/Power/",
    "a/+/b",
    "TRACE",
]
HOSTILE_NUMBERS = [0, -1, 1, 2**63 - 1, -(2**63), 2**64, 10**30, -(10**30), 1e308, -1e-308, 0.5]

scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from(HOSTILE_NUMBERS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(HOSTILE_TEXT),
    st.integers(min_value=20, max_value=6000).map(lambda n: Digits("9" * n)),
)
keys = st.text(min_size=1, max_size=12) | st.sampled_from(["enabled", "host", "password", "x"])
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)


deep = st.builds(
    Deep, st.integers(min_value=5, max_value=3000), st.sampled_from(["table", "array"])
)


@dataclass(frozen=True)
class Mutation:
    kind: str  # replace | delete | add
    loc: Loc
    value: Any = None

    def apply(self, data: dict[str, Any]) -> Loc | None:
        """Change ``data``; the loc that was changed, or None if it no longer exists."""
        try:
            parent = _at(data, self.loc[:-1]) if self.kind != "add" else _at(data, self.loc)
        except (KeyError, IndexError, TypeError):
            return None
        if self.kind == "add":
            if not isinstance(parent, dict):
                return None
            key, value = self.value
            parent[key] = value
            return (*self.loc, key)
        last = self.loc[-1]
        try:
            parent[last]
        except (KeyError, IndexError, TypeError):
            return None
        if self.kind == "delete":
            del parent[last]
        else:
            parent[last] = self.value
        return self.loc


mutations = st.one_of(
    st.builds(Mutation, st.just("replace"), st.sampled_from(LOCS), values | deep),
    st.builds(Mutation, st.just("delete"), st.sampled_from(LOCS)),
    st.builds(Mutation, st.just("add"), st.sampled_from(TABLES), st.tuples(keys, values)),
)


def mutate(changes: list[Mutation]) -> tuple[str, list[Loc]]:
    data = copy.deepcopy(BASE)
    changed = [loc for m in changes if (loc := m.apply(data)) is not None]
    return document(data), changed


# ----------------------------------------------------------------- the checks


def related(problem_loc: Loc, changed: Loc) -> bool:
    """The problem is at the changed key, inside it, or at a table holding it."""
    n = min(len(problem_loc), len(changed))
    return n > 0 and problem_loc[:n] == changed[:n]


def assert_every_problem_named(path: Path, text: str, changed: list[Loc]) -> None:
    with pytest.raises(InvalidConfigError) as info:
        load_config(path, env={})
    problems = info.value.problems
    assert problems
    assert len(text.splitlines()) == 1 + len(problems), text  # nothing broke a line
    for problem in problems:
        assert f"  - {problem}" in text
        if problem.loc:
            assert any(related(problem.loc, loc) for loc in changed), (problem, changed)
            assert format_loc(problem.loc) in text
        else:  # the whole file, or a rule across tables: it names a changed table
            assert problem.message.startswith("TOML") or any(
                str(loc[0]) in problem.message for loc in changed
            ), (problem, changed)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutations, min_size=1, max_size=3))
def test_mutated_example_configs_exit_0_or_2_with_every_problem_named(tmp_path_factory, changes):
    text, changed = mutate(changes)
    path = tmp_path_factory.mktemp("fuzz") / "config.toml"
    path.write_text(text, encoding="utf-8")
    stdout, stderr = io.StringIO(), io.StringIO()
    with redirect_stdout(stdout), redirect_stderr(stderr):
        code = main(["check-config", str(path), "--no-bus"])  # the whole command, in-process
    out = stdout.getvalue() if code == EXIT_OK else stderr.getvalue()
    assert code in (EXIT_OK, EXIT_INVALID)
    loader_code, loader_out = check_config(path, env={})
    if loader_code == EXIT_INVALID:
        assert out.strip() == loader_out
        assert_every_problem_named(path, loader_out, changed)
    elif code == EXIT_INVALID:  # a feature refused a combination: it names its table
        assert any(f"[{loc[0]}]" in out for loc in changed), out
    for m in changes:
        if m.kind == "replace" and m.loc[-1] == "host" and m.value == CREDENTIALS:
            assert "hunter2" not in out.split("\n", 1)[-1]  # a password in host is never shown


def test_the_unmutated_example_is_valid(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(document(copy.deepcopy(BASE)), encoding="utf-8")
    assert check_config(path, env={})[0] == EXIT_OK


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutations, min_size=1, max_size=3))
def test_the_command_line_exits_0_or_2_on_mutated_configs(tmp_path_factory, changes):
    text, _ = mutate(changes)
    path = tmp_path_factory.mktemp("cli") / "config.toml"
    path.write_text(text, encoding="utf-8")
    res = subprocess.run(
        [sys.executable, "-m", "venus_ems.cli", "check-config", str(path), "--no-bus"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode in (EXIT_OK, EXIT_INVALID), res.stderr
    assert "Traceback" not in res.stderr
    assert (res.stdout if res.returncode == 0 else res.stderr).strip()
