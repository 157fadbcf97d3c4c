"""Password hashes for the dashboard: scrypt (stdlib), ``scrypt$<log2 n>$<r>$<p>$<salt>$<key>``.

Salt and key are unpadded URL-safe base64. Parameters are bounded so a configured hash can never
make one login check cost more than 64 MiB of memory; the default (n = 2^14, r = 8, p = 1) takes
16 MiB and ~50 ms here, a few hundred ms on a Cerbo GX.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass

__all__ = ["PasswordHash", "hash_password", "parse_hash", "verify_password"]

_SCHEME = "scrypt"
_MAX_MEM = 64 * 1024 * 1024
_MAX_PASSWORD = 1024  # bytes; longer input is refused before any hashing (cheap rejection)


@dataclass(frozen=True, slots=True)
class PasswordHash:
    """A parsed hash: cost parameters, salt and derived key."""

    log2_n: int
    r: int
    p: int
    salt: bytes
    key: bytes

    @property
    def memory_bytes(self) -> int:
        """Memory one check needs (scrypt: 128 * n * r * p bytes)."""
        return 128 * (1 << self.log2_n) * self.r * self.p

    def encode(self) -> str:
        """The text form stored in the config."""
        return "$".join(
            (_SCHEME, str(self.log2_n), str(self.r), str(self.p), _b64(self.salt), _b64(self.key))
        )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    """Strict unpadded URL-safe base64 (binascii.Error on any other character)."""
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


def _derive(password: str, h: PasswordHash, dklen: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=h.salt,
        n=1 << h.log2_n,
        r=h.r,
        p=h.p,
        maxmem=h.memory_bytes + 1024 * 1024,
        dklen=dklen,
    )


def parse_hash(text: str) -> PasswordHash:
    """Parse a stored hash; ValueError saying what is wrong (never echoing the hash)."""
    parts = text.split("$")
    if len(parts) != 6 or parts[0] != _SCHEME:
        raise ValueError(
            "expected 'scrypt$<log2 n>$<r>$<p>$<salt>$<key>' as printed by "
            "`venus-ems hash-password`"
        )
    try:
        log2_n, r, p = (int(x) for x in parts[1:4])
        salt, key = _unb64(parts[4]), _unb64(parts[5])
    except (ValueError, binascii.Error):
        raise ValueError("malformed scrypt parameters, salt or key") from None
    if not (10 <= log2_n <= 20 and 1 <= r <= 32 and 1 <= p <= 16):
        raise ValueError("scrypt parameters out of range (log2 n 10..20, r 1..32, p 1..16)")
    h = PasswordHash(log2_n, r, p, salt, key)
    if h.memory_bytes > _MAX_MEM:
        raise ValueError(f"scrypt parameters need {h.memory_bytes >> 20} MiB, at most 64 allowed")
    if len(salt) < 8 or not 16 <= len(key) <= 64:
        raise ValueError("salt shorter than 8 bytes or key not 16..64 bytes")
    return h


def hash_password(password: str, *, log2_n: int = 14, r: int = 8, p: int = 1) -> str:
    """A new salted hash of ``password`` (ValueError if empty or longer than 1024 bytes)."""
    if not password or len(password.encode("utf-8")) > _MAX_PASSWORD:
        raise ValueError("the password must be 1..1024 bytes")
    h = PasswordHash(log2_n, r, p, secrets.token_bytes(16), b"")
    return PasswordHash(log2_n, r, p, h.salt, _derive(password, h, 32)).encode()


def verify_password(password: str, stored: PasswordHash) -> bool:
    """True if ``password`` matches (constant-time compare; blocking: run it in a thread)."""
    if not password or len(password.encode("utf-8")) > _MAX_PASSWORD:
        return False
    return hmac.compare_digest(_derive(password, stored, len(stored.key)), stored.key)
