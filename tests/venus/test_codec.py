"""Codec: velib's wire rules, text formatting and lenient write coercion."""

from __future__ import annotations

import math

import pytest
from dbus_fast import Message, MessageType, Variant
from dbus_fast._private.unmarshaller import Unmarshaller
from hypothesis import given
from hypothesis import strategies as st

from venus_ems.venus.codec import (
    INVALID,
    SetResult,
    WriteError,
    coerce_for_write,
    coerce_value,
    format_text,
    unwrap,
    wrap,
)


@pytest.mark.parametrize(
    ("value", "signature"),
    [
        (None, "ai"),
        (1.5, "d"),
        (True, "b"),
        (False, "b"),
        (0, "i"),
        (2**31 - 1, "i"),
        (-(2**31), "i"),
        (2**31, "x"),
        (-(2**31) - 1, "x"),
        ("text", "s"),
        ("", "s"),
        ([1, "a"], "av"),
        ([], "au"),
        ({"a": 1}, "a{sv}"),
    ],
)
def test_wrap_picks_velib_signatures(value, signature):
    assert wrap(value).signature == signature


def test_invalid_is_an_empty_int32_array():
    assert INVALID.signature == "ai"
    assert INVALID.value == []
    assert wrap(None) is INVALID


def test_wrap_rejects_what_dbus_cannot_carry():
    with pytest.raises(TypeError):
        wrap(object())
    with pytest.raises(TypeError):
        wrap(2**64)
    with pytest.raises(TypeError):
        wrap({1: "int key"})


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        (Variant("ai", []), None),
        (Variant("au", []), None),
        (Variant("as", []), None),
        (Variant("ay", b""), None),
        (Variant("d", 2.5), 2.5),
        (Variant("u", 7), 7),
        (Variant("y", 3), 3),
        (Variant("q", 9), 9),
        (Variant("t", 2**40), 2**40),
        (Variant("b", True), True),
        (Variant("s", "x"), "x"),
        (Variant("av", [Variant("i", 1), Variant("s", "b")]), [1, "b"]),
        (Variant("a{sv}", {"k": Variant("d", 1.0), "n": Variant("ai", [])}), {"k": 1.0, "n": None}),
        (Variant("ai", [1, 2]), [1, 2]),
    ],
)
def test_unwrap_follows_velib(variant, expected):
    assert unwrap(variant) == expected
    assert type(unwrap(variant)) is type(expected)


values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20
    ),
    lambda children: (
        st.lists(children, min_size=1, max_size=4)
        | st.dictionaries(st.text("abcxyz/_", max_size=5), children, min_size=1, max_size=4)
    ),
    max_leaves=10,
)


@given(values)
def test_wire_round_trip(value):
    """What we wrap survives marshalling and unwraps to the same value and type."""
    msg = Message(
        message_type=MessageType.SIGNAL,
        path="/x",
        interface="com.victronenergy.BusItem",
        member="PropertiesChanged",
        signature="v",
        body=[wrap(value)],
        serial=1,
    )
    data = bytes(msg._marshall(False))
    import io  # noqa: PLC0415

    u = Unmarshaller(io.BytesIO(data))
    u.unmarshall()
    assert unwrap(u.message.body[0]) == value


@pytest.mark.parametrize(
    ("path", "value", "fmt", "text"),
    [
        ("/Ac/Power", None, "%.0F W", "---"),
        ("/ProductId", 0xA389, None, "0xA389"),
        ("/ProductId", None, None, "---"),
        ("/Ac/Power", 1234.56, "%.0F W", "1235 W"),
        ("/Soc", 55.0, None, "55.0"),
        ("/State", 3, lambda v: {3: "Bulk"}.get(v, "?"), "Bulk"),
        ("/Ac/Power", "oops", "%.0F W", "oops"),
    ],
)
def test_format_text(path, value, fmt, text):
    assert format_text(path, value, fmt) == text


@pytest.mark.parametrize(
    ("dbus_type", "written", "stored"),
    [
        ("d", 5, 5.0),
        ("d", 2**40, float(2**40)),
        ("d", 2**64 - 1, float(2**64 - 1)),  # a uint64 from a client that picked 't'
        ("i", 7.0, 7),
        ("i", -(2**31), -(2**31)),
        ("x", 2**40, 2**40),
        ("x", 2.0**40, 2**40),
        ("s", "name", "name"),
        ("s", "", ""),
        ("b", 1, True),
        ("b", 0.0, False),
        ("b", True, True),
        ("v", 3, 3),
        ("v", False, False),
        ("v", "text", "text"),
        ("d", None, None),
        ("i", None, None),
    ],
)
def test_write_coercion_keeps_number_widths_lenient(dbus_type, written, stored):
    result = coerce_for_write(dbus_type, written)
    assert result == stored
    assert type(result) is type(stored)


@pytest.mark.parametrize(
    ("dbus_type", "written", "code"),
    [
        ("i", 7.5, SetResult.WRONG_TYPE),
        ("i", 2**31, SetResult.OUT_OF_RANGE),
        ("i", "seven", SetResult.WRONG_TYPE),
        ("i", "42", SetResult.WRONG_TYPE),
        ("i", False, SetResult.WRONG_TYPE),
        ("i", math.inf, SetResult.OUT_OF_RANGE),
        ("i", math.nan, SetResult.WRONG_TYPE),
        ("x", 2**63, SetResult.OUT_OF_RANGE),
        ("d", math.inf, SetResult.OUT_OF_RANGE),
        ("d", -math.inf, SetResult.OUT_OF_RANGE),
        ("d", math.nan, SetResult.WRONG_TYPE),
        ("d", True, SetResult.WRONG_TYPE),
        ("d", "12.5", SetResult.WRONG_TYPE),
        ("d", 10**400, SetResult.OUT_OF_RANGE),
        ("s", 5, SetResult.WRONG_TYPE),
        ("s", 2**64 - 1, SetResult.WRONG_TYPE),
        ("s", True, SetResult.WRONG_TYPE),
        ("s", math.nan, SetResult.WRONG_TYPE),
        ("s", math.inf, SetResult.WRONG_TYPE),
        ("s", None, SetResult.WRONG_TYPE),
        ("s", {"a": "b"}, SetResult.WRONG_TYPE),
        ("b", "true", SetResult.WRONG_TYPE),
        ("b", 0.5, SetResult.OUT_OF_RANGE),
        ("v", [1, 2], SetResult.WRONG_TYPE),
        ("v", math.nan, SetResult.WRONG_TYPE),
        ("v", math.inf, SetResult.OUT_OF_RANGE),
        ("d", [1.0], SetResult.WRONG_TYPE),
        ("d", {"a": 1}, SetResult.WRONG_TYPE),
        ("s", [1], SetResult.WRONG_TYPE),
        ("s", "x" * 2000, SetResult.TOO_LARGE),
        ("v", "x" * 2000, SetResult.TOO_LARGE),
        ("b", 2, SetResult.OUT_OF_RANGE),
        ("d", "1" * 100, SetResult.WRONG_TYPE),
        ("s", "a\x00b", SetResult.WRONG_TYPE),
        ("s", "\ud800", SetResult.WRONG_TYPE),
    ],
)
def test_write_coercion_rejects_with_a_code(dbus_type, written, code):
    with pytest.raises(WriteError) as err:
        coerce_for_write(dbus_type, written)
    assert err.value.code == code


def test_own_values_are_converted_and_programming_errors_raise_type_error():
    assert coerce_value("d", 3) == 3.0
    assert coerce_value("s", 12) == "12"  # our own code may publish a number as text
    assert coerce_value("i", True) == 1
    with pytest.raises(TypeError):
        coerce_value("d", math.nan)
    with pytest.raises(TypeError):
        coerce_value("d", "not a number")
    with pytest.raises(TypeError):
        coerce_value("s", "nul\x00inside")
    with pytest.raises(ValueError, match="unsupported"):
        coerce_for_write("q", 1)
