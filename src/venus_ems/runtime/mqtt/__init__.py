"""The MQTT link (aiomqtt) and its topic helpers.

It reconnects, sets the last will ``Offline``, publishes ``Online`` after each connect, keeps
retained service-message rings and keeps handlers across reconnects.
"""

from __future__ import annotations

from .link import Handler, MqttLink, Payload, ServiceLevel, tls_context
from .topics import (
    SERVICE_MESSAGES,
    STATUS,
    MqttMessage,
    backoff_delay,
    check_publish_topic,
    check_topic_filter,
    join_topic,
    topic_matches,
)

__all__ = [
    "SERVICE_MESSAGES",
    "STATUS",
    "Handler",
    "MqttLink",
    "MqttMessage",
    "Payload",
    "ServiceLevel",
    "backoff_delay",
    "check_publish_topic",
    "check_topic_filter",
    "join_topic",
    "tls_context",
    "topic_matches",
]
