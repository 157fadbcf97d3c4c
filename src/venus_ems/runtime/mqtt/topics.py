"""MQTT topic helpers and the message value our handlers receive (pure, no I/O)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from ...errors import DeviceProtocolError
from ..config.base import check_publish_topic, check_topic_filter

__all__ = [
    "SERVICE_MESSAGES",
    "STATUS",
    "MqttMessage",
    "backoff_delay",
    "check_publish_topic",
    "check_topic_filter",
    "join_topic",
    "topic_matches",
]

STATUS = "$SYS/Status"
"""Relative topic of the retained ``Online``/``Offline`` status (the last will)."""

SERVICE_MESSAGES = "ServiceMessages"
"""Last level of a feature's retained service-message ring."""


def join_topic(*parts: str) -> str:
    """Join levels with '/' (empty parts skipped); ValueError if the result is not publishable."""
    return check_publish_topic("/".join(p.strip("/") for p in parts if p.strip("/")))


def topic_matches(topic_filter: str, topic: str) -> bool:
    """True if ``topic`` matches ``topic_filter`` (MQTT 3.1.1 rules, incl. ``$`` topics)."""
    f_levels = topic_filter.split("/")
    t_levels = topic.split("/")
    if topic.startswith("$") and f_levels[0] in ("+", "#"):
        return False
    for i, level in enumerate(f_levels):
        if level == "#":
            return True
        if i >= len(t_levels):
            return False
        if level not in ("+", t_levels[i]):
            return False
    return len(f_levels) == len(t_levels)


def backoff_delay(
    attempt: int, initial_s: float, max_s: float, *, jitter: float = 0.25, rng: random.Random
) -> float:
    """Seconds before retry ``attempt`` (0-based): capped exponential, minus up to ``jitter``."""
    base = min(max_s, initial_s * 2.0 ** min(attempt, 60))
    return base * (1.0 - jitter * rng.random())


@dataclass(frozen=True, slots=True)
class MqttMessage:
    """A message received on a subscribed topic."""

    topic: str
    payload: bytes
    retain: bool = False
    qos: int = 0

    def text(self) -> str:
        """Payload as UTF-8 text; DeviceProtocolError if it is not valid UTF-8."""
        try:
            return self.payload.decode("utf-8")
        except UnicodeDecodeError as err:
            raise DeviceProtocolError(f"MQTT payload on {self.topic} is not UTF-8") from err
