"""Server side of the devices' HTTP authentication: Basic (Shelly gen1, OpenDTU) and Digest SHA-256.

Digest follows RFC 7616 with ``algorithm=SHA-256`` and ``qop="auth"`` as Shelly gen2+ devices use
it: user ``admin``, realm = device id, nonce = the device's unix time (hex in the HTTP header, a
number in the JSON-RPC challenge), valid for ``nonce_lifetime_s``. Two forms are accepted:

* the ``Authorization: Digest ...`` header, with HA2 = SHA256(method:uri) (RFC 7616), or HA2 =
  SHA256("dummy_method:dummy_uri") as several Shelly clients send it;
* an ``auth`` object inside a JSON-RPC frame (``realm, username, nonce, cnonce, response,
  algorithm`` and optional ``nc``), with HA2 = SHA256("dummy_method:dummy_uri").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any

from ...clock import Clock

__all__ = ["DigestSha256", "basic_credentials_ok", "parse_digest_header"]

_PAIR = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))')


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def basic_credentials_ok(header: str | None, username: str, password: str) -> bool:
    """True if ``header`` (an Authorization value) is Basic with exactly these credentials."""
    if header is None or not header.lower().startswith("basic "):
        return False
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return False
    user, sep, pw = decoded.partition(":")
    return bool(sep) and _same(user, username) & _same(pw, password)


def parse_digest_header(header: str) -> dict[str, str]:
    """``Digest k=v, k="v"`` → dict (quotes removed); {} if it is not a Digest header."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "digest":
        return {}
    return {
        m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3))
        for m in _PAIR.finditer(rest)
    }


class DigestSha256:
    """Issues challenges and checks answers for one realm and password (user ``admin``)."""

    algorithm = "SHA-256"

    def __init__(
        self,
        realm: str,
        password: str,
        *,
        clock: Clock,
        username: str = "admin",
        nonce_lifetime_s: float = 3600.0,
    ) -> None:
        """Credentials of the device; the nonce is derived from ``clock.now()``."""
        self.realm = realm
        self.username = username
        self._clock = clock
        self._ha1 = _sha256(f"{username}:{realm}:{password}")
        self._dummy_ha2 = _sha256("dummy_method:dummy_uri")
        self.nonce_lifetime_s = nonce_lifetime_s

    def nonce(self) -> int:
        """A fresh nonce: the current unix time in seconds."""
        return int(self._clock.now().timestamp())

    def www_authenticate(self) -> str:
        """Value of the ``WWW-Authenticate`` header of a 401."""
        return (
            f'Digest qop="auth", realm="{self.realm}", nonce="{self.nonce():x}", '
            f"algorithm={self.algorithm}"
        )

    def challenge(self) -> dict[str, Any]:
        """The JSON-RPC challenge object (sent JSON-encoded as the 401 error's message)."""
        return {
            "auth_type": "digest",
            "nonce": self.nonce(),
            "nc": 1,
            "realm": self.realm,
            "algorithm": self.algorithm,
        }

    def _fresh(self, nonce: int) -> bool:
        age = self.nonce() - nonce
        return 0 <= age <= self.nonce_lifetime_s

    def check_header(self, header: str | None, method: str, path_qs: str, path: str) -> bool:
        """True if the Authorization header answers a fresh challenge with the right password."""
        if header is None:
            return False
        fields = parse_digest_header(header)
        need = ("username", "realm", "nonce", "uri", "response", "nc", "cnonce")
        if any(k not in fields for k in need):
            return False
        if fields.get("qop", "auth") != "auth":
            return False
        if fields.get("algorithm", self.algorithm).upper() != self.algorithm:
            return False
        if fields["username"] != self.username or fields["realm"] != self.realm:
            return False
        if fields["uri"] not in (path_qs, path):
            return False
        try:
            fresh = self._fresh(int(fields["nonce"], 16))
        except ValueError:
            return False
        if not fresh:
            return False
        tail = f"{fields['nonce']}:{fields['nc']}:{fields['cnonce']}:auth"
        for ha2 in (_sha256(f"{method}:{fields['uri']}"), self._dummy_ha2):
            if _same(_sha256(f"{self._ha1}:{tail}:{ha2}"), fields["response"]):
                return True
        return False

    def check_frame(self, auth: object) -> bool:
        """True if a JSON-RPC ``auth`` object answers a fresh challenge with the right password."""
        if not isinstance(auth, Mapping):
            return False
        try:
            nonce = int(auth["nonce"])
            cnonce = auth["cnonce"]
            response = str(auth["response"])
            ok_user = auth.get("username", self.username) == self.username
            ok_realm = auth["realm"] == self.realm
        except (KeyError, TypeError, ValueError):
            return False
        if not (ok_user and ok_realm and self._fresh(nonce)):
            return False
        nc = auth.get("nc", 1)
        expected = _sha256(f"{self._ha1}:{nonce}:{nc}:{cnonce}:auth:{self._dummy_ha2}")
        return _same(expected, response)
