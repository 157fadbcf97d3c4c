"""Wattpilot websocket frames: bounded decoding of what the charger sends, building what we send.

Every frame is one JSON text message with a ``type`` (shared vectors ``wattpilot-handshake.md``):
the charger sends ``hello`` {serial, devicetype, version, secured, ...}, ``authRequired``
{token1, token2[, hash]}, ``authSuccess`` / ``authError`` {message}, ``fullStatus`` {partial,
status}, ``deltaStatus`` {status}, ``response`` {requestId, success, status | message} and
inverter-pairing frames we ignore. We send ``auth`` {token3, hash}, ``requestFullStatus`` and
``setValue`` {requestId, key, value}, wrapped in ``securedMsg`` {data, requestId "<n>sm", hmac}
when ``hello.secured`` is truthy. Decoding reuses ``devices.http.parse_json`` (depth, container
count and number size bounded before Python's parser runs).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...errors import DeviceProtocolError
from ..http import parse_json
from ..parsing import text
from .auth import AuthScheme, message_hmac

__all__ = [
    "MAX_FRAME_BYTES",
    "AuthRequired",
    "Hello",
    "Response",
    "choose_scheme",
    "decode_frame",
    "encode_set_value",
    "parse_auth_required",
    "parse_hello",
    "parse_response",
]

MAX_FRAME_BYTES = 1 << 20
"""Largest frame accepted (a partial fullStatus is a few KB)."""

FLEX_DEVICE_TYPE = "wattpilot_flex"


@dataclass(frozen=True, slots=True)
class Hello:
    """What the charger says first: serial, device type, firmware version, whether secured."""

    serial: str
    devicetype: str
    version: str
    secured: bool
    friendly_name: str = ""


@dataclass(frozen=True, slots=True)
class AuthRequired:
    """The login challenge: two tokens and, on newer firmware, the hash scheme to use."""

    token1: str
    token2: str
    scheme: AuthScheme | None


@dataclass(frozen=True, slots=True)
class Response:
    """The answer to one of our requests: its id (``sm`` stripped), success, status or message."""

    request_id: str
    success: bool
    status: Mapping[str, Any] | None
    message: str


def decode_frame(data: str | bytes, where: str) -> Mapping[str, Any]:
    """One frame as a JSON object with a string ``type``; DeviceProtocolError otherwise."""
    if len(data) > MAX_FRAME_BYTES:
        raise DeviceProtocolError(f"{where}: frame of {len(data)} bytes is too large")
    doc = parse_json(data, where)
    if not isinstance(doc, Mapping):
        raise DeviceProtocolError(f"{where}: frame is not a JSON object")
    kind = doc.get("type")
    if not isinstance(kind, str) or not 0 < len(kind) <= 40:
        raise DeviceProtocolError(f"{where}: frame without a 'type' string")
    return doc


def _optional_text(doc: Mapping[str, Any], key: str, where: str, max_length: int = 64) -> str:
    if doc.get(key) is None:
        return ""
    if isinstance(doc[key], (int, float)) and not isinstance(doc[key], bool):
        return f"{doc[key]:g}"  # e.g. a version sent as a number
    return text(doc, key, where, max_length=max_length)


def parse_hello(doc: Mapping[str, Any]) -> Hello:
    """``hello`` -> :class:`Hello`; DeviceProtocolError if the serial is missing."""
    where = "Wattpilot hello"
    secured = doc.get("secured", False)
    if not isinstance(secured, (bool, int)):
        raise DeviceProtocolError(f"{where}: 'secured' is neither a bool nor a number")
    return Hello(
        serial=text(doc, "serial", where, max_length=32),
        devicetype=_optional_text(doc, "devicetype", where) or "wattpilot",
        version=_optional_text(doc, "version", where),
        secured=bool(secured),
        friendly_name=_optional_text(doc, "friendly_name", where),
    )


def parse_auth_required(doc: Mapping[str, Any]) -> AuthRequired:
    """``authRequired`` -> :class:`AuthRequired`; DeviceProtocolError for an unknown scheme."""
    where = "Wattpilot authRequired"
    scheme = doc.get("hash")
    if scheme is not None and scheme not in ("pbkdf2", "bcrypt"):
        raise DeviceProtocolError(f"{where}: unsupported hash scheme {str(scheme)[:20]!r}")
    return AuthRequired(
        token1=text(doc, "token1", where, max_length=128),
        token2=text(doc, "token2", where, max_length=128),
        scheme=scheme,
    )


def choose_scheme(hello: Hello, challenge: AuthRequired, forced: str) -> AuthScheme:
    """The configured scheme, else the one the charger names, else bcrypt for a Flex."""
    if forced in ("pbkdf2", "bcrypt"):
        return "pbkdf2" if forced == "pbkdf2" else "bcrypt"
    if challenge.scheme is not None:
        return challenge.scheme
    return "bcrypt" if hello.devicetype == FLEX_DEVICE_TYPE else "pbkdf2"


def parse_response(doc: Mapping[str, Any]) -> Response:
    """``response`` -> :class:`Response` (the id as a string without ``sm``)."""
    where = "Wattpilot response"
    raw = doc.get("requestId")
    if isinstance(raw, bool) or not isinstance(raw, (int, str)) or len(str(raw)) > 24:
        raise DeviceProtocolError(f"{where}: 'requestId' missing or not an id")
    success = doc.get("success")
    if not isinstance(success, bool):
        raise DeviceProtocolError(f"{where}: 'success' missing or not true/false")
    status = doc.get("status")
    if status is not None and not isinstance(status, Mapping):
        raise DeviceProtocolError(f"{where}: 'status' is not an object")
    message = doc.get("message")
    return Response(
        request_id=str(raw).removesuffix("sm"),
        success=success,
        status=status,
        message=message[:200] if isinstance(message, str) else "",
    )


def encode_set_value(request_id: int, key: str, value: Any, secret: bytes | None) -> str:
    """A ``setValue`` frame; wrapped in a signed ``securedMsg`` when ``secret`` is given."""
    data = json.dumps({"type": "setValue", "requestId": request_id, "key": key, "value": value})
    if secret is None:
        return data
    return json.dumps(
        {
            "type": "securedMsg",
            "data": data,
            "requestId": f"{request_id}sm",
            "hmac": message_hmac(secret, data),
        }
    )
