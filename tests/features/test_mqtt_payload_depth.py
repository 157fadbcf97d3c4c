"""MQTT payloads nested too deep are bad input, never a bug.

Since D26 an exception in an MQTT handler fails the feature that subscribed it (and a bug that
repeats ends the process), so a hostile payload must become the handler's own input error.
"""

from __future__ import annotations

import pytest

from venus_ems.errors import DeviceProtocolError
from venus_ems.features.ess_tunables import Tunable
from venus_ems.features.temperature import TEMPERATURE, parse_reading

DEEP = "[" * 100_000 + "]" * 100_000


def test_a_deep_json_tunable_is_refused_as_bad_input():
    tunable = Tunable("grid_target_w", "GridTarget", 0.0, -5000.0, 5000.0)
    with pytest.raises(ValueError, match="expected a number"):
        tunable.parse_text(DEEP)
    with pytest.raises(ValueError, match="expected a number"):
        tunable.parse_text('{"value": ' + DEEP + "}")
    assert tunable.parse_text('{"value": 12}') == 12.0


def test_a_deep_json_temperature_is_a_protocol_error():
    with pytest.raises(DeviceProtocolError, match="at most"):  # refused by its size first
        parse_reading(DEEP.encode(), TEMPERATURE, "t")
    small_but_deep = "[" * 2000 + "]" * 2000  # within the size bound, beyond the depth bound
    with pytest.raises(DeviceProtocolError, match="nested deeper"):
        parse_reading(small_but_deep.encode(), TEMPERATURE, "t")
