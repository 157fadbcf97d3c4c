"""The emulated Wattpilot's side of the login, written from the published algorithm on its own.

Nothing here comes from the driver (``tests/sim/test_emulator_identities.py`` checks that no
emulator module imports it): the bcrypt salt is encoded bit by bit with bcrypt's alphabet, the
PBKDF2 secret is cut from its base64 by hand, and the tests hold both sides to the known
answers of the shared vectors ``wattpilot-handshake.md``. The charger checks a client's
``auth`` hash and the HMAC of every ``securedMsg`` against the secret it derives from its own
password and serial.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
from functools import lru_cache

import bcrypt

__all__ = ["device_secret", "expected_auth_hash", "hmac_ok"]

_ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _bcrypt_b64(data: bytes) -> str:
    """Bcrypt's base64: 6 bits per character, most significant first, no padding."""
    bits = "".join(f"{byte:08b}" for byte in data)
    bits += "0" * (-len(bits) % 6)
    return "".join(_ALPHABET[int(bits[i : i + 6], 2)] for i in range(0, len(bits), 6))


@lru_cache(maxsize=8)
def device_secret(scheme: str, serial: str, password: str) -> bytes:
    """The secret the charger derives (``pbkdf2`` or ``bcrypt``); ValueError for a bad serial."""
    if scheme == "pbkdf2":
        derived = hashlib.pbkdf2_hmac("sha512", password.encode(), serial.encode(), 100_000, 256)
        return binascii.b2a_base64(derived, newline=False)[:32]
    if scheme != "bcrypt":
        raise ValueError(f"unknown scheme {scheme!r}")
    if not serial.isdigit() or len(serial) > 16:
        raise ValueError("a bcrypt Wattpilot needs a serial of up to 16 digits")
    salt_bytes = bytes(16 - len(serial)) + bytes(ord(c) - ord("0") for c in serial)
    salt = "$2a$08$" + _bcrypt_b64(salt_bytes)[:22]
    hashed = bcrypt.hashpw(hashlib.sha256(password.encode()).hexdigest().encode(), salt.encode())
    return hashed.decode()[len(salt) :].encode()


def expected_auth_hash(token1: str, token2: str, token3: str, secret: bytes) -> str:
    """What the client's ``auth.hash`` must be."""
    inner = hashlib.sha256(token1.encode() + secret).hexdigest()
    return hashlib.sha256(f"{token3}{token2}{inner}".encode()).hexdigest()


def hmac_ok(secret: bytes, data: str, mac: object) -> bool:
    """Whether ``mac`` is the HMAC-SHA256 hex of ``data`` under ``secret``."""
    if not isinstance(mac, str):
        return False
    good = hmac.new(secret, data.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(good, mac.lower())
