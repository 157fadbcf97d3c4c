"""The MQTT link (aiomqtt) and its topic helpers.

It reconnects, sets the last will ``Offline``, publishes ``Online`` after each connect, keeps
every retained message as state and publishes it again after each reconnect (service-message
rings included), and keeps handlers across reconnects. ``payload`` parses what other clients
send, strictly and within bounds.
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
