"""Strict parsing of MQTT payloads from other clients (pure, no I/O).

Anyone on the broker can publish to the topics we subscribe, so a payload is hostile input:
its size is bounded before it is decoded, a number is plain ASCII decimal syntax only
(``21.5``, ``-3``, ``+1e3``; never ``1_0``, full-width digits, ``nan`` or ``inf``), and JSON is
bounded in size, nesting depth and number length before the decoder sees it. Every problem is
a :class:`~venus_ems.errors.DeviceProtocolError` whose text is short and safe to log once.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from ...errors import DeviceProtocolError

__all__ = [
    "MAX_DEPTH",
    "MAX_JSON_BYTES",
    "MAX_NUMBER_CHARS",
    "parse_json",
    "parse_number",
    "payload_text",
    "quote",
    "short_topic",
]

MAX_JSON_BYTES = 4096
"""Largest payload decoded at all (bytes); sensors and set topics send a few dozen."""
MAX_NUMBER_CHARS = 40
"""Longest number accepted (characters, sign and exponent included)."""
MAX_DEPTH = 8
"""Deepest JSON nesting accepted (objects and arrays)."""

# ASCII only: re's \d would also match full-width and other Unicode digits
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NON_FINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
_ASCII_SPACE = " \t\r\n"


def quote(text: str, limit: int = 40) -> str:
    """``repr`` of ``text`` cut to ``limit`` characters (for messages about bad input)."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def short_topic(topic: str, limit: int = 100) -> str:
    """``topic`` cut to ``limit`` characters (a wildcard subscription lets others choose it)."""
    return topic if len(topic) <= limit else topic[:limit] + "..."


def payload_text(payload: bytes, *, limit: int = MAX_JSON_BYTES) -> str:
    """The payload as UTF-8 text; DeviceProtocolError if over ``limit`` bytes or not UTF-8."""
    if len(payload) > limit:
        raise DeviceProtocolError(f"payload of {len(payload)} bytes (at most {limit})")
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        raise DeviceProtocolError("payload is not UTF-8 text") from None


def parse_number(text: str) -> float:
    """A finite number in ASCII decimal syntax (ASCII blanks around it allowed).

    DeviceProtocolError for anything else: digit separators, non-ASCII digits, hex, nan/inf,
    more than :data:`MAX_NUMBER_CHARS` characters, or a value that overflows.
    """
    core = text.strip(_ASCII_SPACE)
    if len(core) > MAX_NUMBER_CHARS:
        raise DeviceProtocolError(f"number of {len(core)} characters (at most {MAX_NUMBER_CHARS})")
    if _NON_FINITE.fullmatch(core):
        raise DeviceProtocolError(f"{quote(core)} is not a finite number")
    if not _NUMBER.fullmatch(core):
        raise DeviceProtocolError(f"{quote(core)} is not a number")
    value = float(core)
    if not math.isfinite(value):
        raise DeviceProtocolError(f"{quote(core)} is not a finite number")
    return value


def _check_depth(text: str, max_depth: int) -> None:
    """Refuse nesting deeper than ``max_depth`` before the (recursive) decoder runs."""
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > max_depth:
                raise DeviceProtocolError(f"JSON nested deeper than {max_depth} levels")
        elif ch in "]}":
            depth -= 1


def _json_int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise ValueError(f"number of {len(text)} digits")
    return int(text)


def _json_float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise ValueError(f"number of {len(text)} characters")
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is not a finite number")
    return value


def _json_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a finite number")


def parse_json(text: str, *, limit: int = MAX_JSON_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    """Decode bounded, standard JSON (no NaN/Infinity); DeviceProtocolError saying why not."""
    if len(text) > limit:  # characters >= bytes / 4; callers bound the bytes first
        raise DeviceProtocolError(f"JSON of {len(text)} characters (at most {limit})")
    _check_depth(text, max_depth)
    try:
        return json.loads(
            text, parse_int=_json_int, parse_float=_json_float, parse_constant=_json_constant
        )
    except (ValueError, RecursionError) as err:
        reason = str(err).split(":", 1)[0] if isinstance(err, json.JSONDecodeError) else str(err)
        raise DeviceProtocolError(f"payload is not JSON ({reason[:60]})") from None
