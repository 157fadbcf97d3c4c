"""Readable config problems: ``table.key = value: expected ... (line N)`` from pydantic errors."""

from __future__ import annotations

import difflib
import itertools
import json
import re
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from ...errors import ConfigError
from .secrets import MASK, Secret

__all__ = ["InvalidConfigError", "Loc", "Problem", "locate_keys", "problems_from_errors"]

Loc = tuple[str | int, ...]


class _Missing:
    """Marker: the problem has no value to show (missing key, whole table)."""


NO_VALUE = _Missing()


class _Masked:
    """Stands in for a secret value in a problem report."""

    def __repr__(self) -> str:
        """The mask."""
        return MASK


MASKED = _Masked()


@dataclass(frozen=True)
class Problem:
    """One config problem at ``loc`` (``()`` = the file) with an optional value and line."""

    loc: Loc
    message: str
    value: object = NO_VALUE
    line: int | None = None
    column: int | None = None

    @property
    def key(self) -> str:
        """Dotted key such as ``grid_meter[0].host``; ``(file)`` for whole-file problems."""
        return format_loc(self.loc)

    def __str__(self) -> str:
        """``key = value: message (line N)``; whole-file problems have no key."""
        where = ""
        if self.line is not None:
            col = f", column {self.column}" if self.column is not None else ""
            where = f" (line {self.line}{col})"
        if not self.loc:
            return f"{self.message}{where}"
        value = "" if isinstance(self.value, _Missing) else f" = {render(self.value)}"
        return f"{self.key}{value}: {self.message}{where}"


class InvalidConfigError(ConfigError):
    """The config file has problems; ``problems`` lists every one, the message shows them all."""

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        """``source`` names the file; at least one problem."""
        self.source = source
        self.problems = tuple(problems)
        n = len(self.problems)
        head = f"{source}: {n} problem{'s' if n != 1 else ''}"
        super().__init__("\n".join([head, *(f"  - {p}" for p in self.problems)]))


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SHOWN = 60  # characters of a value shown in a problem


def _quoted(text: str) -> str:
    """``text`` as a JSON string, every non-printable character escaped (one safe line)."""
    return "".join(
        c if c.isprintable() else f"\\u{ord(c):04x}" for c in json.dumps(text, ensure_ascii=False)
    )


def format_loc(loc: Loc) -> str:
    """``("grid_meter", 0, "host")`` -> ``grid_meter[0].host``; odd keys are quoted."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        key = part if _BARE_KEY.fullmatch(part) else _quoted(part[:_SHOWN])
        out += f".{key}" if out else key
    return out or "(file)"


def render(value: object, depth: int = 0) -> str:
    """A value as TOML-ish text, shortened to 60 characters (deep or huge values elided)."""
    if depth > 3:
        return "..."
    if isinstance(value, (Secret, _Masked)):
        text = MASK
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        # control characters escaped: a problem line must not become two or hide text
        text = _quoted(value[: _SHOWN * 2])
    elif isinstance(value, int) and value.bit_length() > 64:
        text = f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    elif isinstance(value, Mapping):
        items = list(itertools.islice(value.items(), 8))
        text = (
            "{ "
            + ", ".join(f"{format_loc((k,))} = {render(v, depth + 1)}" for k, v in items)
            + " }"
        )
    elif isinstance(value, (list, tuple)):
        text = "[" + ", ".join(render(v, depth + 1) for v in value[:8]) + "]"
    else:
        text = str(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


_SIMPLE = {
    "missing": "required key is missing",
    "string_type": "expected a string",
    "int_type": "expected an integer",
    "int_from_float": "expected an integer",
    "float_type": "expected a number",
    "bool_type": "expected true or false",
    "model_type": "expected a table",
    "model_attributes_type": "expected a table",
    "dict_type": "expected a table",
    "tuple_type": "expected an array",
    "list_type": "expected an array",
}
_BOUNDS = {
    "greater_than": ("gt", ">"),
    "greater_than_equal": ("ge", ">="),
    "less_than": ("lt", "<"),
    "less_than_equal": ("le", "<="),
}


def _message(err: ErrorDetails) -> str:
    """Turn one pydantic error into 'expected ...' wording."""
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind in _SIMPLE:
        return _SIMPLE[kind]
    if kind in _BOUNDS:
        name, op = _BOUNDS[kind]
        return f"expected a value {op} {ctx.get(name)}"
    if kind == "literal_error":
        return f"expected one of {ctx.get('expected')}"
    if kind == "string_too_short":
        n = ctx.get("min_length", 1)
        return "expected a non-empty string" if n == 1 else f"expected at least {n} characters"
    if kind == "string_too_long":
        return f"expected at most {ctx.get('max_length')} characters"
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])
    msg = err["msg"]
    return msg[:1].lower() + msg[1:]


def _types_in(tp: Any) -> Iterable[Any]:
    """``tp`` and every type argument nested in it (Annotated, unions, tuples)."""
    yield tp
    for arg in typing.get_args(tp):
        yield from _types_in(arg)


def _model_in(tp: Any) -> type[BaseModel] | None:
    """The first pydantic model class inside annotation ``tp``."""
    for t in _types_in(tp):
        if isinstance(t, type) and issubclass(t, BaseModel):
            return t
    return None


def _model_at(root: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model class of the table at ``loc`` (array indexes skipped), or None."""
    model: type[BaseModel] | None = root
    for part in loc:
        if isinstance(part, int):
            continue
        if model is None or part not in model.model_fields:
            return None
        model = _model_in(model.model_fields[part].annotation)
    return model


def _annotation_at(root: type[BaseModel], loc: Loc) -> Any:
    """The annotation of the last key in ``loc``, or None."""
    keys = [i for i, part in enumerate(loc) if isinstance(part, str)]
    if not keys:
        return None
    holder = _model_at(root, loc[: keys[-1]])
    name = loc[keys[-1]]
    if holder is None or not isinstance(name, str) or name not in holder.model_fields:
        return None
    return holder.model_fields[name].annotation


def problems_from_errors(
    root: type[BaseModel], errors: Iterable[ErrorDetails], lines: Mapping[Loc, int]
) -> list[Problem]:
    """Rewrite pydantic errors into Problems, masking secrets and locating lines."""
    out = []
    for err in errors:
        loc: Loc = tuple(p for p in err["loc"] if isinstance(p, (str, int)))
        kind, value = err["type"], err.get("input", NO_VALUE)
        message = _message(err)
        secret = _is_secret(_annotation_at(root, loc))
        if kind == "extra_forbidden" and loc and isinstance(loc[-1], str):
            message = "unknown key"
            # a misspelt password is still a password: never echo it
            secret = bool(_SECRETISH.search(loc[-1]))
            holder = _model_at(root, loc[:-1])
            if holder is not None:
                near = difflib.get_close_matches(loc[-1], list(holder.model_fields), n=1)
                if near:
                    message += f" (did you mean {near[0]!r}?)"
                    secret = secret or _is_secret(holder.model_fields[near[0]].annotation)
        if kind == "missing" or (isinstance(value, Mapping) and kind == "value_error"):
            value = NO_VALUE
        if kind == "host_credentials" and isinstance(value, str):
            value = MASK + "@" + value.rsplit("@", 1)[1]  # what precedes '@' may be a password
        if secret:
            is_ref = isinstance(value, Mapping) and set(value) == {"env"}
            value = value if is_ref or isinstance(value, _Missing) else MASKED
        out.append(Problem(loc, message, value, _line(lines, loc)))
    # report in file order; problems without a line (rare) go last
    return sorted(out, key=lambda p: p.line if p.line is not None else 1 << 30)


_SECRETISH = re.compile(r"pass|secret|token|key|pw", re.IGNORECASE)


def _is_secret(annotation: Any) -> bool:
    """True if the annotation holds a Secret."""
    return annotation is not None and any(t is Secret for t in _types_in(annotation))


def _line(lines: Mapping[Loc, int], loc: Loc) -> int | None:
    """Line of ``loc`` or of its nearest enclosing key/table."""
    for n in range(len(loc), 0, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


_ARRAY_HEADER = re.compile(r"^\[\[\s*([^\]]+?)\s*\]\]")
_HEADER = re.compile(r"^\[\s*([^\]]+?)\s*\]")
_KEY = re.compile(
    r"""^((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*="""
)


def _split(dotted: str) -> list[str]:
    """``a."b.c".d`` -> ``["a", "b.c", "d"]``."""
    parts = re.findall(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""", dotted)
    return [p[1:-1] if p[:1] in "\"'" else p for p in parts]


def locate_keys(text: str) -> dict[Loc, int]:
    """Best-effort map from each table/key loc to its line (1-based) in TOML ``text``."""
    lines: dict[Loc, int] = {}
    arrays: dict[tuple[str, ...], int] = {}
    table: Loc = ()

    def resolve(names: list[str]) -> Loc:
        path: list[str | int] = []
        for i, name in enumerate(names):
            path.append(name)
            if tuple(names[: i + 1]) in arrays:
                path.append(arrays[tuple(names[: i + 1])])
        return tuple(path)

    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if m := _ARRAY_HEADER.match(line):
            names = _split(m[1])
            key = tuple(names)
            arrays[key] = arrays.get(key, -1) + 1
            for other in [k for k in arrays if len(k) > len(key) and k[: len(key)] == key]:
                del arrays[other]
            table = resolve(names)
            lines.setdefault(table, number)
            lines.setdefault(table[:-1], number)
        elif m := _HEADER.match(line):
            table = resolve(_split(m[1]))
            lines.setdefault(table, number)
        elif m := _KEY.match(line):
            lines.setdefault(table + tuple(_split(m[1])), number)
    return lines
