"""Shelly gen2+ JSON-RPC over HTTP: ``POST /rpc`` with a whole frame, digest auth, errors mapped.

Request ``{"id", "src", "method", "params"}``; the answer is ``{"id", "src", "dst", "result"}``
or ``{..., "error": {"code", "message"}}`` (``result`` may be ``null``). Auth is HTTP Digest
(RFC 7616, SHA-256, user ``admin``): the device answers 401 with ``WWW-Authenticate``; some
send the challenge only inside the JSON-RPC error frame (code 401, the challenge JSON-encoded
in ``message``), which we then answer with an ``auth`` object in the frame. Device error codes:
401 → DeviceAuthError, anything else → :class:`ShellyRpcError` (a DeviceProtocolError).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import secrets
from collections.abc import Mapping
from typing import Any

import aiohttp

from ...errors import DeviceAuthError, DeviceError, DeviceProtocolError
from ..http import DigestAuth, HttpAnswer, decode_json, http_request, parse_json

__all__ = [
    "RpcClient",
    "ShellyRpcError",
    "frame_auth",
    "parse_bare_error",
    "parse_challenge",
    "parse_reply",
]

_USER = "admin"


class ShellyRpcError(DeviceProtocolError):
    """The device answered an RPC error: ``code`` (e.g. -103, -105, 404) and ``message``."""

    def __init__(self, method: str, code: int, message: str) -> None:
        """Keep the device's code and message."""
        super().__init__(f"{method}: device error {code}: {message}")
        self.code = code
        self.message = message


def _error(method: str, err: Any) -> DeviceError:
    if not isinstance(err, Mapping):
        return DeviceProtocolError(f"{method}: malformed error {err!r}")
    code, message = err.get("code"), err.get("message")
    if isinstance(code, bool) or not isinstance(code, int):
        return DeviceProtocolError(f"{method}: error without a numeric code: {err!r}")
    text = message if isinstance(message, str) else ""
    if code == 401:
        return DeviceAuthError(f"{method}: device refused the credentials (401)")
    return ShellyRpcError(method, code, text)


def parse_reply(doc: Any, *, method: str, request_id: int | None = None) -> Any:
    """The ``result`` of a reply frame; raises the mapped error of an error frame."""
    if not isinstance(doc, Mapping):
        raise DeviceProtocolError(f"{method}: reply is not a JSON object")
    if "error" in doc:
        raise _error(method, doc["error"])
    if request_id is not None and doc.get("id") != request_id:
        raise DeviceProtocolError(f"{method}: reply id {doc.get('id')!r}, sent {request_id}")
    if "result" not in doc:
        raise DeviceProtocolError(f"{method}: reply has neither result nor error")
    return doc["result"]


def parse_bare_error(doc: Any, method: str) -> DeviceError | None:
    """The error of a bare ``{"code", "message"}`` body (``/rpc/<Method>`` form), else None."""
    if isinstance(doc, Mapping) and set(doc) == {"code", "message"}:
        return _error(method, doc)
    return None


def parse_challenge(doc: Any) -> dict[str, Any] | None:
    """The digest challenge inside a 401 error frame (``message`` is JSON text), else None."""
    if not isinstance(doc, Mapping):
        return None
    err = doc.get("error")
    if not isinstance(err, Mapping) or err.get("code") != 401:
        return None
    message = err.get("message")
    if not isinstance(message, str):
        return None
    try:
        challenge = parse_json(message, "401 challenge")
    except DeviceProtocolError:
        return None
    if not isinstance(challenge, dict) or "nonce" not in challenge or "realm" not in challenge:
        return None
    return challenge


def frame_auth(
    challenge: Mapping[str, Any], password: str, cnonce: int | None = None
) -> dict[str, Any]:
    """The ``auth`` object answering a frame challenge (HA2 of ``dummy_method:dummy_uri``)."""

    def sha(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()

    cn = secrets.randbelow(1 << 30) if cnonce is None else cnonce
    nc = challenge.get("nc", 1)
    ha1 = sha(f"{_USER}:{challenge['realm']}:{password}")
    ha2 = sha("dummy_method:dummy_uri")
    response = sha(f"{ha1}:{challenge['nonce']}:{nc}:{cn}:auth:{ha2}")
    return {
        "realm": challenge["realm"],
        "username": _USER,
        "nonce": challenge["nonce"],
        "cnonce": cn,
        "response": response,
        "algorithm": "SHA-256",
        "nc": nc,
    }


class RpcClient:
    """Calls RPC methods of one device through the caller's session, each within ``timeout_s``."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        timeout_s: float,
        password: str | None = None,
        source: str = "venus_ems",
    ) -> None:
        """``password`` enables digest auth (user ``admin``)."""
        self.session = session
        self.url = f"{base_url.rstrip('/')}/rpc"
        self.timeout_s = timeout_s
        self._password = password
        self._digest = None if password is None else DigestAuth(_USER, password)
        self._frame_challenge: Mapping[str, Any] | None = None
        self._source = source
        self._ids = itertools.count(1)

    async def _post(self, frame: dict[str, Any]) -> HttpAnswer:
        headers = {"Content-Type": "application/json"}
        if self._digest is not None and self._digest.ready:
            headers["Authorization"] = self._digest.header("POST", "/rpc")
        elif self._frame_challenge is not None and self._password is not None:
            frame = {**frame, "auth": frame_auth(self._frame_challenge, self._password)}
        body = json.dumps(frame, separators=(",", ":")).encode()
        return await http_request(
            self.session, "POST", self.url, timeout_s=self.timeout_s, headers=headers, body=body
        )

    def _learn(self, answer: HttpAnswer, method: str) -> None:
        """Take the challenge of a 401; DeviceAuthError if we cannot answer it."""
        if self._digest is None or self._password is None:
            raise DeviceAuthError(
                f"{method}: authentication is enabled on the device: set password"
            )
        header = answer.headers.get("WWW-Authenticate")
        if header:
            self._digest.learn(header)
            self._frame_challenge = None
            return
        try:
            doc = parse_json(answer.body or b"null", f"{method} 401")
        except DeviceProtocolError:
            doc = None
        challenge = parse_challenge(doc)
        if challenge is None:
            raise DeviceAuthError(f"{method}: 401 without a challenge")
        self._digest.forget()
        self._frame_challenge = challenge

    async def call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """Run ``method`` → its result; DeviceError subclasses on failure (see module doc)."""
        for attempt in range(2):
            request_id = next(self._ids)
            frame: dict[str, Any] = {"id": request_id, "src": self._source, "method": method}
            if params:
                frame["params"] = dict(params)
            answer = await self._post(frame)
            if answer.status == 401:
                if attempt == 1:
                    raise DeviceAuthError(f"{method}: device refused the password (401)")
                self._learn(answer, method)
                continue
            what = f"{method} at {self.url}"
            if answer.status != 200:
                text = answer.body[:80].decode("utf-8", "replace")
                raise DeviceProtocolError(f"{what}: HTTP {answer.status} {text!r}")
            return parse_reply(decode_json(answer, what), method=method, request_id=request_id)
        raise AssertionError("unreachable")  # pragma: no cover
