"""The daemon: config, clock, supervision, actuators, logging, MQTT."""

from __future__ import annotations

__all__: list[str] = []
