"""Pure MQTT helpers: topic joining/validation, filter matching, backoff."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from venus_ems.errors import DeviceProtocolError
from venus_ems.runtime.mqtt import (
    MqttMessage,
    backoff_delay,
    check_topic_filter,
    join_topic,
    topic_matches,
)

LEVEL = st.text(alphabet="abcXYZ019_-$ ", min_size=1, max_size=6)


def test_join_topic():
    assert join_topic("venus-ems", "$SYS/Status") == "venus-ems/$SYS/Status"
    assert join_topic("a/", "/b/", "", "c") == "a/b/c"
    for bad in (("a", "+"), ("a", "#"), ("", ""), ("$SYS", "x")):
        with pytest.raises(ValueError, match="topic"):
            join_topic(*bad)


@pytest.mark.parametrize(
    ("topic_filter", "topic", "expected"),
    [
        ("a/b", "a/b", True),
        ("a/+", "a/b", True),
        ("a/+", "a/b/c", False),
        ("a/#", "a", True),  # '#' also matches the parent level
        ("a/#", "a/b/c", True),
        ("#", "a/b", True),
        ("#", "$SYS/x", False),
        ("+/x", "$SYS/x", False),
        ("$SYS/#", "$SYS/x", True),
        ("a/+/c", "a//c", True),
        ("a/b", "a/b/c", False),
        ("a/b/c", "a/b", False),
    ],
)
def test_topic_matches(topic_filter, topic, expected):
    assert topic_matches(topic_filter, topic) is expected


@given(st.lists(LEVEL, min_size=1, max_size=5))
def test_a_topic_matches_itself_and_its_wildcards(levels):
    topic = "/".join(levels)
    assert topic_matches(topic, topic)
    plus = "/".join(["+"] * len(levels))
    assert topic_matches(plus, topic) is not topic.startswith("$")
    assert topic_matches(levels[0] + "/#", topic)


@pytest.mark.parametrize("bad", ["a/b+", "a/#/b", "a#", ""])
def test_bad_filters(bad):
    with pytest.raises(ValueError, match="topic"):
        check_topic_filter(bad)


@given(
    attempt=st.integers(0, 10_000),
    initial=st.floats(0.01, 10),
    cap=st.floats(0.01, 600),
    seed=st.integers(0, 2**32),
)
def test_backoff_is_capped_and_jittered_down(attempt, initial, cap, seed):
    delay = backoff_delay(attempt, initial, cap, rng=random.Random(seed))
    base = min(cap, initial * 2.0 ** min(attempt, 60))
    assert 0.75 * base - 1e-9 <= delay <= base + 1e-9
    assert delay <= cap + 1e-9


def test_backoff_grows_until_the_cap():
    rng = random.Random(1)
    bases = [backoff_delay(n, 1.0, 60.0, jitter=0.0, rng=rng) for n in range(8)]
    assert bases == [1, 2, 4, 8, 16, 32, 60, 60]


def test_message_text():
    assert MqttMessage("t", "21.5 °C".encode()).text() == "21.5 °C"
    with pytest.raises(DeviceProtocolError, match="not UTF-8"):
        MqttMessage("t", b"\xff\xfe").text()
