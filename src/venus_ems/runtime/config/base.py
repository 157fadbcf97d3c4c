"""Shared pieces of the config models: the strict base model and common field types."""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from .secrets import Secret

__all__ = [
    "BrokerHost",
    "DeviceInstance",
    "FeatureName",
    "FeatureTable",
    "Generation",
    "Host",
    "Items",
    "Phase",
    "PublishTopic",
    "StrictModel",
    "SubscribeTopic",
    "check_publish_topic",
    "check_topic_filter",
]


class StrictModel(BaseModel):
    """Frozen, strict model: unknown keys are errors and TOML types are not coerced.

    No text (secrets included) may hold a control character such as NUL, a newline or ESC.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        """Reject control characters in every string (also inside arrays and secrets)."""
        for text in _texts(value):
            for i, char in enumerate(text):
                if unicodedata.category(char) in ("Cc", "Cs"):
                    raise ValueError(
                        f"expected text without control characters (U+{ord(char):04X} "
                        f"at position {i + 1})"
                    )
        return value


def _texts(value: Any) -> list[str]:
    """The strings inside a validated field value (secrets unwrapped, arrays flattened)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Secret):
        return [value.get_secret_value()]
    if isinstance(value, tuple):
        return [text for item in value for text in _texts(item)]
    return []


class FeatureTable(StrictModel):
    """A table that enables one feature; ``feature`` is its ``"module:factory"``.

    The feature registry is derived from these declarations (``Config.feature_tables``), so a
    new feature is one config model with its ``feature`` line and one module in ``features/``.
    """

    feature: ClassVar[str]
    enabled: bool = False


T = TypeVar("T")


def _array_to_tuple(value: Any) -> Any:
    """TOML arrays arrive as lists; the frozen models keep tuples."""
    return tuple(value) if isinstance(value, list) else value


Items = Annotated[tuple[T, ...], BeforeValidator(_array_to_tuple)]
"""A TOML array kept as an immutable tuple."""


def check_publish_topic(topic: str) -> str:
    """Return ``topic`` if we may publish to it (no wildcards, no '/' at ends), else ValueError."""
    if not topic or "+" in topic or "#" in topic or "\0" in topic:
        raise ValueError("expected an MQTT topic without wildcards (+, #)")
    if topic.startswith("/") or topic.endswith("/"):
        raise ValueError("expected an MQTT topic without a leading or trailing '/'")
    if topic.startswith("$"):
        raise ValueError("expected an MQTT topic not starting with '$' (reserved for brokers)")
    return topic


def check_topic_filter(topic: str) -> str:
    """Return ``topic`` if it is a valid filter ('+' whole levels, '#' last); else ValueError."""
    levels = topic.split("/")
    if not topic or "\0" in topic:
        raise ValueError("expected a non-empty MQTT topic")
    for i, level in enumerate(levels):
        if ("+" in level and level != "+") or ("#" in level and level != "#"):
            raise ValueError("expected '+' and '#' to fill a whole topic level")
        if level == "#" and i != len(levels) - 1:
            raise ValueError("expected '#' only as the last topic level")
    return topic


_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")


def _check_name(name: str) -> str:
    """Names become parts of D-Bus service names and MQTT topics."""
    if not _NAME.fullmatch(name):
        raise ValueError("expected a name of 1-32 letters, digits or '_' starting with a letter")
    return name


FeatureName = Annotated[str, AfterValidator(_check_name)]
"""Identifier of one device or sensor: used in D-Bus service names and MQTT topics."""

PublishTopic = Annotated[str, AfterValidator(check_publish_topic)]
"""An MQTT topic without wildcards."""

SubscribeTopic = Annotated[str, AfterValidator(check_topic_filter)]
"""An MQTT topic filter (wildcards allowed in whole levels)."""


_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
_PORT = re.compile(r"[0-9]{1,5}")


def _host_error(message: str) -> PydanticCustomError:
    return PydanticCustomError("host", message)


def _check_port(text: str) -> None:
    """``text`` is a decimal TCP port 1..65535 (ASCII digits only)."""
    if not _PORT.fullmatch(text) or not 1 <= int(text) <= 65535:
        raise _host_error("expected a port number 1..65535 after ':'")


def _check_dns_name(host: str) -> None:
    """A DNS name (labels of letters, digits, '-', '_') or a dotted IPv4 address."""
    labels = host.removesuffix(".").split(".")
    if not all(_LABEL.fullmatch(label) for label in labels):
        raise _host_error("expected a host name (letters, digits, '-', '.') or an IP address")
    if all(label.isdigit() for label in labels):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise _host_error("expected an IPv4 address such as 192.168.1.50") from None


def _check_ipv6(address: str) -> None:
    try:
        ipaddress.IPv6Address(address)
    except ValueError:
        raise _host_error("expected an IPv6 address inside [ ]") from None


def _common_host_checks(host: str) -> None:
    """What no host field may contain: credentials, control characters, schemes, paths."""
    if "@" in host:
        raise PydanticCustomError(
            "host_credentials",
            "credentials do not belong in host: use the username and password keys",
        )
    if not host or len(host) > 253:
        raise _host_error("expected a host name or IP address (1 to 253 characters)")
    if any(c.isspace() or not c.isprintable() for c in host):
        raise _host_error("expected a host name or IP address without spaces or control characters")
    if not host.isascii():
        raise _host_error("expected an ASCII host name (write an international name as xn--...)")
    if "://" in host:
        raise _host_error("expected a bare host name, without a scheme such as http://")
    if any(c in host for c in "/?#\\"):
        raise _host_error("expected a bare host name, without a path")


def _check_host(host: str) -> str:
    """A host for HTTP devices: name, IPv4 or [IPv6], each optionally followed by ``:port``."""
    _common_host_checks(host)
    if host.startswith("["):
        address, bracket, rest = host[1:].partition("]")
        if not bracket:
            raise _host_error("expected ']' after an IPv6 address")
        _check_ipv6(address)
        if rest:
            if not rest.startswith(":"):
                raise _host_error("expected ':port' after ']'")
            _check_port(rest[1:])
        return host
    if host.count(":") > 1:
        raise _host_error("write an IPv6 address in brackets: [fe80::1]")
    name, colon, port = host.partition(":")
    if colon:
        _check_port(port)
    _check_dns_name(name)
    return host


def _check_broker_host(host: str) -> str:
    """A broker host: name, IPv4 or IPv6 (``[ ]`` removed); the port is a key of its own."""
    _common_host_checks(host)
    if host.startswith("["):
        host, bracket, rest = host[1:].partition("]")
        if not bracket:
            raise _host_error("expected ']' after an IPv6 address")
        if rest:
            raise _host_error("expected a host without ':port' (set port = ... instead)")
        _check_ipv6(host)
        return host
    if ":" in host:
        if host.count(":") == 1:
            raise _host_error("expected a host without ':port' (set port = ... instead)")
        _check_ipv6(host)
        return host
    _check_dns_name(host)
    return host


Host = Annotated[str, AfterValidator(_check_host)]
"""Host name, IPv4 or ``[IPv6]`` address of a device, optionally ``:port``; no credentials."""

BrokerHost = Annotated[str, AfterValidator(_check_broker_host)]
"""Host name, IPv4 or IPv6 address of a server whose port is configured separately."""

Phase = Literal["L1", "L2", "L3"]
"""An AC phase."""

Generation = Literal["auto", 1, 2]
"""Shelly API generation: 1 = HTTP /status, 2 = RPC (Gen2, Gen3, Gen4), auto = ask /shelly."""

DeviceInstance = Annotated[int, Field(ge=0, le=999)]
"""Preferred VRM device instance (localsettings may assign another if it is taken)."""
