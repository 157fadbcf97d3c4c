"""HTTP plumbing shared by the drivers: one request with a timeout, errors mapped, auth headers.

The caller owns the ``aiohttp.ClientSession``; nothing here creates one. Every request carries
its own ``aiohttp.ClientTimeout`` (it covers the body too, so a reply that trickles in ends at the
timeout). Third-party errors become the ``DeviceError`` tree: timeouts → ``DeviceTimeoutError``,
refused/reset/unreachable → ``DeviceConnectionError``, anything we cannot decode →
``DeviceProtocolError``. Every answer is hostile until decoded: its body is counted while it
streams in (chunked or not, after decompression) and the connection is dropped at
``MAX_BODY_BYTES``; JSON is checked for depth, container count and number size *before* Python's
parser sees it, so no reply can exhaust memory, recurse the parser or overflow a float. Auth
headers are built here (Basic, and Digest per RFC 7616 with SHA-256 or MD5, ``qop=auth``)
because aiohttp's ``auth=`` is deprecated; credentials never appear in URLs or error messages.
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
from itertools import accumulate
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
    "MAX_JSON_CONTAINERS",
    "MAX_JSON_DEPTH",
    "MAX_JSON_MAGNITUDE",
    "MAX_JSON_NUMBER_CHARS",
    "DigestAuth",
    "HttpAnswer",
    "basic_auth_header",
    "decode_json",
    "http_request",
    "parse_json",
]

MAX_BODY_BYTES = 1 << 20
"""Largest answer accepted from a device, counted after decompression (a Shelly status is a few
KB, an OpenDTU with ten inverters about 50 KB)."""

MAX_JSON_DEPTH = 32
"""Deepest nesting of arrays and objects accepted (device documents nest 3 to 5 levels)."""

MAX_JSON_CONTAINERS = 20_000
"""Most arrays plus objects in one document (keeps the decoded size near the body's size)."""

MAX_JSON_NUMBER_CHARS = 32
"""Longest number literal accepted; with the magnitude bound no number overflows a float."""

MAX_JSON_MAGNITUDE = 1e20
"""Numbers must be smaller than this in magnitude (sums and scalings of them stay finite)."""

_PAIR = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))')
_HASHES = {"SHA-256": hashlib.sha256, "MD5": hashlib.md5}
# A JSON string literal (escapes included) and everything that is not a bracket.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


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
    max_bytes: int = MAX_BODY_BYTES,
) -> HttpAnswer:
    """One request within ``timeout_s`` s (body included); any HTTP status is returned.

    The body is counted as it arrives (after decompression) and the connection is dropped once
    it passes ``max_bytes``. Raises DeviceTimeoutError, DeviceConnectionError, or
    DeviceProtocolError (body too large, cut off or malformed).
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
            if length is not None and length > max_bytes:
                resp.close()
                raise DeviceProtocolError(f"{what}: answer of {length} bytes is too large")
            data = await _read_bounded(resp, max_bytes, what)
            return HttpAnswer(resp.status, dict(resp.headers), data)
    except (TimeoutError, asyncio.TimeoutError) as err:
        raise DeviceTimeoutError(f"{what}: no answer within {timeout_s:g} s") from err
    except aiohttp.ClientPayloadError as err:
        raise DeviceProtocolError(f"{what}: answer cut off or undecodable ({err})") from err
    except aiohttp.ClientResponseError as err:
        raise DeviceProtocolError(f"{what}: malformed answer ({err.message})") from err
    except (aiohttp.ClientError, OSError) as err:
        raise DeviceConnectionError(f"{what}: {type(err).__name__}: {err}") from err


async def _read_bounded(resp: aiohttp.ClientResponse, max_bytes: int, what: str) -> bytes:
    """The whole body, or DeviceProtocolError (connection closed) once it passes ``max_bytes``."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_any():
        size += len(chunk)
        if size > max_bytes:
            resp.close()  # never reuse a connection with a body still streaming in
            raise DeviceProtocolError(f"{what}: answer larger than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _parse_int(text: str) -> int:
    if len(text) > MAX_JSON_NUMBER_CHARS:
        raise ValueError(f"number of {len(text)} characters")
    value = int(text)
    if abs(value) >= MAX_JSON_MAGNITUDE:
        raise ValueError(f"number {text} is too large")
    return value


def _parse_float(text: str) -> float:
    if len(text) > MAX_JSON_NUMBER_CHARS:
        raise ValueError(f"number of {len(text)} characters")
    value = float(text)
    if not abs(value) < MAX_JSON_MAGNITUDE:  # also refuses inf and nan
        raise ValueError(f"number {text} is too large")
    return value


def _check_shape(text: str) -> None:
    """ValueError if ``text`` nests deeper than MAX_JSON_DEPTH or has too many containers."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    opened = brackets.count("[") + brackets.count("{")
    if opened > MAX_JSON_CONTAINERS:
        raise ValueError(f"more than {MAX_JSON_CONTAINERS} arrays and objects")
    if opened > MAX_JSON_DEPTH:  # cheap for every real document: it has few containers
        depth = max(accumulate(map(_STEP.__getitem__, brackets)))
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"nested {depth} deep, more than {MAX_JSON_DEPTH}")


def parse_json(data: bytes | str, what: str) -> Any:
    """Bounded JSON (depth, containers, numbers; NaN/Infinity refused); DeviceProtocolError."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        _check_shape(text)
        return json.loads(
            text,
            parse_constant=_reject_constant,
            parse_int=_parse_int,
            parse_float=_parse_float,
        )
    except (UnicodeDecodeError, ValueError, RecursionError, OverflowError) as err:
        raw = data[:60] if isinstance(data, bytes) else data[:60].encode("utf-8", "replace")
        head = raw.decode("utf-8", "replace")
        raise DeviceProtocolError(f"{what}: not JSON we accept ({err}): {head!r}") from err


def decode_json(answer: HttpAnswer, what: str) -> Any:
    """The answer's body as bounded JSON (see :func:`parse_json`); DeviceProtocolError if not."""
    return parse_json(answer.body, what)


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
