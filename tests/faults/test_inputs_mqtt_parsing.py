"""Strict MQTT payload parsing: ASCII numbers only, bounded JSON, one error type, no crash."""

from __future__ import annotations

import json
import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from venus_ems.errors import DeviceProtocolError
from venus_ems.features.ess_tunables import Tunable
from venus_ems.features.temperature import TEMPERATURE, parse_reading
from venus_ems.runtime.mqtt.payload import (
    MAX_DEPTH,
    MAX_JSON_BYTES,
    MAX_NUMBER_CHARS,
    parse_json,
    parse_number,
    payload_text,
)

ASCII_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")

NOT_NUMBERS = [
    "1_0",  # float() takes digit separators
    "\uff12\uff11",  # full-width digits, float() takes them
    "٢١",  # Arabic-Indic digits
    "21\u00a0",  # a no-break space around it (str.strip() would remove it)
    "0x10",
    "1e",
    "--1",
    "1.2.3",
    "nan",
    "NaN",
    "inf",
    "-Infinity",
    "1e400",  # overflows to inf
    "",
    " ",
    "1" * (MAX_NUMBER_CHARS + 1),
]


@pytest.mark.parametrize("text", NOT_NUMBERS)
def test_numbers_python_would_accept_are_refused(text):
    with pytest.raises(DeviceProtocolError):
        parse_number(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [("21.5", 21.5), (" -3 \n", -3.0), ("+1e3", 1000.0), (".5", 0.5), ("5.", 5.0), ("0", 0.0)],
)
def test_plain_decimal_numbers_are_accepted(text, value):
    assert parse_number(text) == value


@given(st.text(max_size=60))
def test_a_number_is_exactly_the_ascii_grammar(text):
    try:
        value = parse_number(text)
    except DeviceProtocolError:
        core = text.strip(" \t\r\n")
        assert (
            not ASCII_NUMBER.fullmatch(core)
            or len(core) > MAX_NUMBER_CHARS
            or not math.isfinite(float(core))
        )
    else:
        core = text.strip(" \t\r\n")
        assert ASCII_NUMBER.fullmatch(core)
        assert math.isfinite(value)
        assert value == float(core)


@pytest.mark.parametrize(
    "text",
    [
        "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1),
        '{"a":' * 100_000 + "1" + "}" * 100_000,  # would be a RecursionError in json.loads
        "[" * 200_000,
        "1" * 400,  # an integer of 400 digits
        '{"t": 1' + "0" * 400 + "}",
        '{"t": NaN}',
        '{"t": -Infinity}',
        '{"t": 1e999}',
        "{bad",
    ],
)
def test_hostile_json_is_one_error(text):
    with pytest.raises(DeviceProtocolError):
        parse_json(text, limit=len(text) + 1)


def test_json_strings_may_hold_brackets_and_quotes():
    text = '{"a": "[[[[[[[[[[[[[[[\\"{{{{{{{{{{{{", "b": [[1]]}'
    assert parse_json(text) == {"a": '[[[[[[[[[[[[[[["{{{{{{{{{{{{', "b": [[1]]}


def test_payload_size_is_checked_before_decoding():
    with pytest.raises(DeviceProtocolError, match="bytes"):
        payload_text(b"1" * (MAX_JSON_BYTES + 1))
    with pytest.raises(DeviceProtocolError, match="UTF-8"):
        payload_text(b"\xff")
    assert payload_text(b"21.5") == "21.5"


@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_payload_gives_a_reading_or_a_protocol_error(payload):
    for field in (None, "t"):
        try:
            value = parse_reading(payload, TEMPERATURE, field)
        except DeviceProtocolError:
            continue
        assert math.isfinite(value)
        assert TEMPERATURE.low <= value <= TEMPERATURE.high


@pytest.mark.parametrize("text", ["1_0", "\uff12\uff11", "\uff11", "21\u2009"])
def test_temperature_refuses_numbers_only_python_reads(text):
    with pytest.raises(DeviceProtocolError, match="not a number"):
        parse_reading(text.encode(), TEMPERATURE, None)
    with pytest.raises(DeviceProtocolError, match="not a number"):
        parse_reading(json.dumps({"t": text}).encode(), TEMPERATURE, "t")


@pytest.mark.parametrize(
    "payload", [b"[" * 50_000, b'{"t": ' * 50_000, b'{"t": 1' + b"0" * 5000 + b"}"]
)
def test_temperature_json_bombs_are_protocol_errors(payload):
    with pytest.raises(DeviceProtocolError):
        parse_reading(payload, TEMPERATURE, "t")


TARGET = Tunable("target_w", "TargetW", 0.0, -1000.0, 1000.0)
CHOICE = Tunable("grid_target", "GridTarget", "fixed", choices=("fixed", "zero_export"))


@pytest.mark.parametrize(
    "text",
    ["1_0", "\uff11\uff12", "nan", "1e999", "[1]", '{"value": [1]}', '{"value": {"value": 1}}'],
)
def test_tunables_refuse_what_is_not_a_plain_number(text):
    with pytest.raises(ValueError, match="target_w"):
        TARGET.parse_text(text)


@pytest.mark.parametrize(
    ("text", "value"), [("12.5", 12.5), (" +12 ", 12.0), ('{"value": -3}', -3.0), (".5", 0.5)]
)
def test_tunables_accept_plain_numbers(text, value):
    assert TARGET.parse_text(text) == value


@given(st.text(max_size=80))
def test_tunable_text_gives_a_value_or_a_value_error(text):
    for tunable in (TARGET, CHOICE):
        try:
            value = tunable.parse_text(text)
        except ValueError as err:
            why = str(err)
        else:
            why = ""
        if why:
            assert tunable.name in why
            assert len(why) < 200  # the rejected text is cut short in the message
            continue
        if tunable is CHOICE:
            assert value in CHOICE.choices
        else:
            assert isinstance(value, float)
            assert -1000.0 <= value <= 1000.0
