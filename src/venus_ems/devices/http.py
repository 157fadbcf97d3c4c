"""HTTP plumbing shared by the drivers: one request with a timeout, errors mapped, auth headers.

The caller owns the ``aiohttp.ClientSession``; nothing here creates one. Every request carries
its own ``aiohttp.ClientTimeout``. Third-party errors become the ``DeviceError`` tree:
timeouts → ``DeviceTimeoutError``, refused/reset/unreachable → ``DeviceConnectionError``,
bodies that are not JSON → ``DeviceProtocolError``. Auth headers are built here (Basic, and
Digest per RFC 7616 with SHA-256 or MD5, ``qop=auth``) because aiohttp's ``auth=`` is
deprecated; credentials never appear in URLs or error messages.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from ..errors import (
    DeviceAuthError,
    DeviceConnectionError,
    DeviceProtocolError,
    DeviceTimeoutError,
)

__all__ = [
    "MAX_BODY_BYTES",
    "DigestAuth",
    "HttpAnswer",
    "basic_auth_header",
    "decode_json",
    "http_request",
]

MAX_BODY_BYTES = 1 << 20
"""Largest answer accepted from a device (a Shelly status is a few KB)."""

_PAIR = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))')
_HASHES = {"SHA-256": hashlib.sha256, "MD5": hashlib.md5}


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """Status, headers and body of one HTTP answer."""

    status: int
    headers: Mapping[str, str]
    body: bytes


async def http_request(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    timeout_s: float,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
) -> HttpAnswer:
    """One request within ``timeout_s`` s; any HTTP status is returned.

    Raises DeviceTimeoutError, DeviceConnectionError, or DeviceProtocolError (body too large or
    cut off).
    """
    what = f"{method} {url}"
    try:
        async with session.request(
            method,
            url,
            headers=dict(headers or {}),
            data=body,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            allow_redirects=False,
        ) as resp:
            length = resp.content_length
            if length is not None and length > MAX_BODY_BYTES:
                raise DeviceProtocolError(f"{what}: answer of {length} bytes is too large")
            data = await resp.read()
            return HttpAnswer(resp.status, dict(resp.headers), data)
    except (TimeoutError, asyncio.TimeoutError) as err:
        raise DeviceTimeoutError(f"{what}: no answer within {timeout_s:g} s") from err
    except aiohttp.ClientPayloadError as err:
        raise DeviceProtocolError(f"{what}: answer cut off ({err})") from err
    except aiohttp.ClientResponseError as err:
        raise DeviceProtocolError(f"{what}: malformed answer ({err.message})") from err
    except (aiohttp.ClientError, OSError) as err:
        raise DeviceConnectionError(f"{what}: {type(err).__name__}: {err}") from err


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def decode_json(answer: HttpAnswer, what: str) -> Any:
    """The answer's body as JSON (NaN/Infinity refused); DeviceProtocolError if it is not."""
    try:
        return json.loads(answer.body.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as err:
        head = answer.body[:60].decode("utf-8", "replace")
        raise DeviceProtocolError(f"{what}: answer is not JSON ({err}): {head!r}") from err


def basic_auth_header(username: str, password: str) -> str:
    """``Authorization`` value for HTTP Basic (RFC 7617, UTF-8)."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def _parse_challenge(header: str) -> dict[str, str] | None:
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "digest":
        return None
    return {
        m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3))
        for m in _PAIR.finditer(rest)
    }


class DigestAuth:
    """Client side of HTTP Digest (RFC 7616): learns a challenge, then signs every request.

    A nonce is reused with an increasing ``nc`` (Shelly fw >= 2 accepts that for an hour),
    which saves the 401 round trip on every poll; a refused nonce is replaced by the new
    challenge the device sends with its 401.
    """

    def __init__(self, username: str, password: str) -> None:
        """Credentials; nothing is sent until :meth:`learn` has seen a challenge."""
        self._username = username
        self._password = password
        self._challenge: dict[str, str] | None = None
        self._nc = 0

    @property
    def ready(self) -> bool:
        """True once a challenge is known."""
        return self._challenge is not None

    def learn(self, www_authenticate: str | None) -> None:
        """Take the challenge of a 401; DeviceAuthError if it is not a Digest we can answer."""
        challenge = _parse_challenge(www_authenticate or "")
        if challenge is None or "nonce" not in challenge or "realm" not in challenge:
            raise DeviceAuthError(f"device asked for unsupported auth: {www_authenticate!r}")
        algorithm = challenge.get("algorithm", "MD5").upper()
        if algorithm not in _HASHES:
            raise DeviceAuthError(f"device asked for digest algorithm {algorithm}, unsupported")
        qops = [q.strip() for q in challenge.get("qop", "auth").split(",")]
        if "auth" not in qops:
            raise DeviceAuthError(f"device asked for digest qop {challenge.get('qop')!r}")
        challenge["algorithm"] = algorithm
        self._challenge = challenge
        self._nc = 0

    def forget(self) -> None:
        """Drop the known challenge (the next request goes without a header)."""
        self._challenge = None

    def header(self, method: str, uri: str) -> str:
        """``Authorization`` value for ``method uri``; RuntimeError before :meth:`learn`."""
        ch = self._challenge
        if ch is None:
            raise RuntimeError("no digest challenge learnt yet")
        h = _HASHES[ch["algorithm"]]

        def digest(text: str) -> str:
            return h(text.encode()).hexdigest()

        self._nc += 1
        nc = f"{self._nc:08x}"
        cnonce = secrets.token_hex(8)
        ha1 = digest(f"{self._username}:{ch['realm']}:{self._password}")
        ha2 = digest(f"{method}:{uri}")
        response = digest(f"{ha1}:{ch['nonce']}:{nc}:{cnonce}:auth:{ha2}")
        parts = [
            f'username="{self._username}"',
            f'realm="{ch["realm"]}"',
            f'nonce="{ch["nonce"]}"',
            f'uri="{uri}"',
            f"algorithm={ch['algorithm']}",
            f'response="{response}"',
            "qop=auth",
            f"nc={nc}",
            f'cnonce="{cnonce}"',
        ]
        if "opaque" in ch:
            parts.append(f'opaque="{ch["opaque"]}"')
        return "Digest " + ", ".join(parts)
