"""Strict, bounded readers for decoded JSON: every bad field is a ``DeviceProtocolError``.

A device is hostile input: a field may be missing, of the wrong type, NaN, a 400-digit
integer, a megabyte string or a list of a million items. These readers accept exactly what a
parser asks for and raise ``DeviceProtocolError`` naming the field otherwise, so a parser
built from them can only return a reading or raise the error tree. ``where`` names the request
or object for the message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import DeviceProtocolError

__all__ = [
    "MAX_MAGNITUDE",
    "bool_field",
    "items",
    "number",
    "obj",
    "optional_number",
    "text",
]

MAX_MAGNITUDE = 1e15
"""Largest absolute value a number field may have (W, Wh, V...: far above any real device)."""


def obj(doc: Any, key: str, where: str) -> Mapping[str, Any]:
    """``doc[key]`` as a JSON object; DeviceProtocolError if missing or not an object."""
    if not isinstance(doc, Mapping):
        raise DeviceProtocolError(f"{where}: expected a JSON object, got {type(doc).__name__}")
    value = doc.get(key)
    if not isinstance(value, Mapping):
        raise DeviceProtocolError(f"{where}: {key!r} missing or not an object")
    return value


def optional_number(doc: Mapping[str, Any], key: str, where: str) -> float | None:
    """``doc[key]`` as a finite float within ±MAX_MAGNITUDE, None if absent or null.

    DeviceProtocolError for anything else (bools, strings, NaN, huge integers).
    """
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DeviceProtocolError(f"{where}: {key!r} is not a number: {_head(value)}")
    # compare before converting: float() of a 400-digit integer raises OverflowError
    if not -MAX_MAGNITUDE <= value <= MAX_MAGNITUDE:  # False for NaN too
        raise DeviceProtocolError(f"{where}: {key!r} is not a finite number in range")
    return float(value)


def number(doc: Mapping[str, Any], key: str, where: str) -> float:
    """``doc[key]`` as a finite float; DeviceProtocolError if missing or not a number."""
    value = optional_number(doc, key, where)
    if value is None:
        raise DeviceProtocolError(f"{where}: {key!r} missing")
    return value


def bool_field(doc: Mapping[str, Any], key: str, where: str) -> bool:
    """``doc[key]`` as a bool; DeviceProtocolError if missing or not a bool."""
    value = doc.get(key)
    if not isinstance(value, bool):
        raise DeviceProtocolError(f"{where}: {key!r} missing or not true/false: {_head(value)}")
    return value


def text(doc: Mapping[str, Any], key: str, where: str, *, max_length: int = 64) -> str:
    """``doc[key]`` as a non-empty string of at most ``max_length`` characters."""
    value = doc.get(key)
    if not isinstance(value, str) or not value:
        raise DeviceProtocolError(f"{where}: {key!r} missing or not a string: {_head(value)}")
    if len(value) > max_length:
        raise DeviceProtocolError(f"{where}: {key!r} longer than {max_length} characters")
    return value


def items(doc: Mapping[str, Any], key: str, where: str, *, max_items: int) -> Sequence[Any]:
    """``doc[key]`` as a JSON array of at most ``max_items`` entries."""
    value = doc.get(key)
    if not isinstance(value, list):
        raise DeviceProtocolError(f"{where}: {key!r} missing or not a list")
    if len(value) > max_items:
        raise DeviceProtocolError(f"{where}: {key!r} has {len(value)} entries, at most {max_items}")
    return value


def _head(value: Any) -> str:
    """A short, safe rendering of a bad value for an error message."""
    shown = repr(value)
    return shown if len(shown) <= 40 else f"{shown[:37]}..."
