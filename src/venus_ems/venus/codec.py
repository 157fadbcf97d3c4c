"""Python values <-> Venus D-Bus variants, text formatting and SetValue result codes.

The wire rules are those of velib_python (``wrap_dbus_value`` / ``unwrap_dbus_value``):
``None`` is an empty ``ai`` array (invalid), ``float`` is ``d``, ``bool`` is ``b``, ``int`` is
``i`` or ``x`` when it does not fit 32 bits, ``str`` is ``s``, a list is ``av`` (an empty list is
``au``), a dict is ``a{sv}``. Any empty array decodes to ``None``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from enum import IntEnum
from typing import Any, TypeAlias

from dbus_fast import Variant
from dbus_fast.signature import SignatureTree, get_signature_tree

__all__ = [
    "INVALID",
    "INVALID_TEXT",
    "SetResult",
    "TextFormat",
    "Value",
    "WriteError",
    "coerce_for_write",
    "coerce_value",
    "format_text",
    "text_variant",
    "unwrap",
    "wrap",
    "wrap_as",
]

Value: TypeAlias = bool | int | float | str | list[Any] | dict[str, Any] | None
"""A value of a Venus D-Bus path; ``None`` means invalid."""

TextFormat: TypeAlias = "str | Callable[[Any], str] | None"
"""How to render a value as text: a printf format such as ``'%.0F W'``, a callable, or default."""

INVALID_TEXT = "---"

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

_SIG: dict[str, SignatureTree] = {
    s: get_signature_tree(s) for s in ("ai", "au", "d", "b", "i", "x", "s", "av", "a{sv}", "a{ss}")
}
_SIG_D, _SIG_I, _SIG_X, _SIG_S, _SIG_B = (_SIG[s] for s in ("d", "i", "x", "s", "b"))

INVALID = Variant(_SIG["ai"], [], False)
"""The wire encoding of an invalid value: a variant holding an empty int32 array."""

# Signatures whose Python value needs no conversion after dbus-fast unmarshalling.
_PLAIN = frozenset("dixsbuqnytgo")


class SetResult(IntEnum):
    """SetValue return codes: 0 accepted, anything else rejected (never a D-Bus error)."""

    OK = 0
    NOT_WRITABLE = 1
    REJECTED = 2
    WRONG_TYPE = 3
    OUT_OF_RANGE = 4
    TOO_LARGE = 5


class WriteError(ValueError):
    """A written value cannot be accepted; carries the SetValue code to return."""

    def __init__(self, code: SetResult, message: str) -> None:
        """Store the result code next to the message."""
        super().__init__(message)
        self.code = code


def wrap(value: Any) -> Variant:
    """Python value -> variant following velib's rules; raises TypeError for other types."""
    t = type(value)
    if t is float:
        return Variant(_SIG_D, value, False)
    if t is str:
        return Variant(_SIG_S, value, False)
    if value is None:
        return INVALID
    if t is bool:
        return Variant(_SIG_B, value, False)
    if t is int:
        if _INT32_MIN <= value <= _INT32_MAX:
            return Variant(_SIG_I, value, False)
        if _INT64_MIN <= value <= _INT64_MAX:
            return Variant(_SIG_X, value, False)
        raise TypeError(f"integer {value} does not fit 64 bits")
    if isinstance(value, float):
        return Variant(_SIG_D, float(value), False)
    if isinstance(value, int):  # IntEnum and friends
        return wrap(int(value))
    if isinstance(value, str):
        return Variant(_SIG_S, str(value), False)
    if isinstance(value, (list, tuple)):
        if not value:
            return Variant(_SIG["au"], [], False)
        return Variant(_SIG["av"], [wrap(v) for v in value], False)
    if isinstance(value, dict):
        return Variant(_SIG["a{sv}"], {_key(k): wrap(v) for k, v in value.items()}, False)
    raise TypeError(f"cannot put {t.__name__} on D-Bus")


def _key(k: Any) -> str:
    if not isinstance(k, str):
        raise TypeError(f"D-Bus dict keys must be str, not {type(k).__name__}")
    return k


def text_variant(text: str) -> Variant:
    """A Text entry (variant holding ``s``)."""
    return Variant(_SIG_S, text, False)


def wrap_as(dbus_type: str, value: Any) -> Variant:
    """Wrap an already coerced value with a declared type letter (``d i x s b`` or ``v``)."""
    if value is None:
        return INVALID
    if dbus_type == "d":
        return Variant(_SIG_D, value, False)
    if dbus_type == "i":
        return Variant(_SIG_I, value, False)
    if dbus_type == "s":
        return Variant(_SIG_S, value, False)
    if dbus_type == "x":
        return Variant(_SIG_X, value, False)
    return wrap(value)


def unwrap(v: Any) -> Value:
    """Variant (or plain unmarshalled value) -> Python value; any empty array -> None."""
    if type(v) is Variant:
        if v.signature in _PLAIN:
            return v.value  # type: ignore[no-any-return]
        v = v.value
    if isinstance(v, (list, bytes)):
        if not v:
            return None
        return [unwrap(x) for x in v]
    if isinstance(v, dict):
        return {k: unwrap(x) for k, x in v.items()}
    return v  # type: ignore[no-any-return]


def format_text(path: str, value: Any, fmt: TextFormat = None) -> str:
    """Text of a value as velib renders it: ``---`` when invalid, hex ``/ProductId``."""
    if value is None:
        return INVALID_TEXT
    if fmt is None:
        if path == "/ProductId" and type(value) is int:
            return f"0x{value:X}"
        return str(value)
    if isinstance(fmt, str):
        try:
            return str(fmt % value)
        except (TypeError, ValueError):
            return str(value)
    return fmt(value)


def coerce_value(dbus_type: str, value: Any) -> Value:
    """Value set by our own code -> the declared type; raises TypeError on a programming error.

    Our own code may hand a number to a string path or a bool to a numeric one (it is converted);
    writes from other processes go through the strict :func:`coerce_for_write` instead.
    """
    if value is None or dbus_type == "v":
        return value  # type: ignore[no-any-return]
    try:
        if dbus_type == "s" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return _text(str(value), 1 << 20)
        if dbus_type in _NUMERIC and isinstance(value, bool):
            value = int(value)
        return coerce_for_write(dbus_type, value, max_length=1 << 20)
    except WriteError as err:
        raise TypeError(f"{value!r} is not a valid '{dbus_type}' value: {err}") from None


_NUMERIC = frozenset("dix")
_INVALID_OK = frozenset("dixbv")  # an empty array (invalidate) is refused only on strings


def coerce_for_write(dbus_type: str, value: Any, *, max_length: int = 1024) -> Value:
    """Check a value written by another process against the declared type; WriteError if not.

    ``s`` takes strings only (NUL-free, at most ``max_length``); ``d``, ``i`` and ``x`` take
    finite numbers of any integer width or a double (a double for an integer path must be
    integral), never a bool or a string; ``b`` takes a bool or the number 0 or 1; ``v`` takes a
    bool, a finite number or a string. ``None`` (an empty array: invalidate) is accepted except on
    ``s``. Codes: 3 wrong type (also NaN), 4 out of range (also ±inf), 5 too long.
    """
    if value is None:
        if dbus_type in _INVALID_OK:
            return None
        if dbus_type == "s":
            raise WriteError(SetResult.WRONG_TYPE, "expected a string, got invalid")
        raise ValueError(f"unsupported D-Bus type letter {dbus_type!r}")
    if dbus_type == "s":
        if not isinstance(value, str):
            raise WriteError(SetResult.WRONG_TYPE, f"expected a string, got {_kind(value)}")
        return _text(value, max_length)
    if dbus_type == "v":
        if isinstance(value, str):
            return _text(value, max_length)
        if isinstance(value, bool):
            return value
        return _finite(value, _INT64_MIN, _INT64_MAX)
    if dbus_type == "b":
        if isinstance(value, bool):
            return value
        number = _finite(value, _INT64_MIN, _INT64_MAX)
        if number not in (0, 1):
            raise WriteError(SetResult.OUT_OF_RANGE, f"expected 0 or 1, got {number!r}")
        return bool(number)
    if dbus_type == "d":
        return float(_finite(value, -sys.float_info.max, sys.float_info.max))
    if dbus_type in ("i", "x"):
        lo, hi = (_INT32_MIN, _INT32_MAX) if dbus_type == "i" else (_INT64_MIN, _INT64_MAX)
        number = _finite(value, lo, hi)
        if isinstance(number, float):
            if not number.is_integer():
                raise WriteError(SetResult.WRONG_TYPE, f"expected an integer, got {number!r}")
            number = int(number)
        return number
    raise ValueError(f"unsupported D-Bus type letter {dbus_type!r}")


def _finite(value: Any, lo: float, hi: float) -> int | float:
    """An int or finite float within [lo, hi]; WriteError 3 (not a number, NaN) or 4."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise WriteError(SetResult.WRONG_TYPE, f"expected a number, got {_kind(value)}")
    if isinstance(value, float) and math.isnan(value):
        raise WriteError(SetResult.WRONG_TYPE, "NaN is not a number")
    if isinstance(value, float) and math.isinf(value):
        raise WriteError(SetResult.OUT_OF_RANGE, "not a finite number")
    if not lo <= value <= hi:
        raise WriteError(SetResult.OUT_OF_RANGE, f"{value!r} is out of range")
    return value


def _text(value: str, max_length: int) -> str:
    if len(value) > max_length:
        raise WriteError(SetResult.TOO_LARGE, f"string longer than {max_length}")
    if "\x00" in value:
        raise WriteError(SetResult.WRONG_TYPE, "D-Bus strings cannot contain NUL")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise WriteError(SetResult.WRONG_TYPE, "not valid Unicode text") from None
    return value


def _kind(value: Any) -> str:
    if isinstance(value, str):
        return f"string {value[:20]!r}"
    return type(value).__name__
