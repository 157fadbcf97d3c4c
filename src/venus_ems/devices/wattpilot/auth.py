"""The Wattpilot's secrets: the hashed password (PBKDF2 or bcrypt), the auth hash, write HMACs.

Facts (shared vectors ``wattpilot-handshake.md`` §3-5, from joscha82/wattpilot, wattpilot-api and
mabunixda/wattpilot; the known answers there are reproduced by ``tests/devices``):

* **PBKDF2** (classic Wattpilot): ``base64(PBKDF2-HMAC-SHA512(password, salt=serial, 100 000
  iterations, 256 bytes))[:32]``.
* **bcrypt** (Wattpilot Flex, firmware 42 and later): the bcrypt "password" is the hex SHA-256 of
  the password; the salt is cost 8 with 16 bytes made of the serial's digits (one byte per digit,
  value 0..9, zero-padded on the left) in bcrypt's base64; the secret is the 31-character hash
  that follows the salt.
* **auth**: ``hash = sha256hex(token3 + token2 + sha256hex(token1 + secret))``.
* **securedMsg**: ``hmac = HMAC-SHA256(key=secret, msg=data)`` in hex.

Deriving a secret is slow on purpose (PBKDF2 takes 0.7 s here, several seconds on a GX), so it
runs in a worker thread and the result is kept per (scheme, serial, password) for reconnects.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from functools import lru_cache
from typing import Literal

import anyio
import bcrypt

from ...errors import DeviceProtocolError

__all__ = [
    "AuthScheme",
    "auth_hash",
    "bcrypt_salt",
    "derive_secret",
    "hashed_password",
    "message_hmac",
    "new_token3",
]

AuthScheme = Literal["pbkdf2", "bcrypt"]

_PBKDF2_ITERATIONS = 100_000
_PBKDF2_BYTES = 256
_BCRYPT_PREFIX = b"$2a$08$"
_STANDARD = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_BCRYPT_ALPHABET = b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_TO_BCRYPT = bytes.maketrans(_STANDARD, _BCRYPT_ALPHABET)


def bcrypt_salt(serial: str) -> bytes:
    """``$2a$08$`` + bcrypt-base64 of the serial's digits; DeviceProtocolError if not digits."""
    if not serial.isascii() or not serial.isdigit() or len(serial) > 16:
        raise DeviceProtocolError(
            f"Wattpilot serial {serial[:20]!r} is not 1..16 digits: no bcrypt salt from it"
        )
    digits = bytes(int(c) for c in serial).rjust(16, b"\0")
    return _BCRYPT_PREFIX + base64.b64encode(digits).translate(_TO_BCRYPT)[:22]


@lru_cache(maxsize=8)
def hashed_password(scheme: AuthScheme, serial: str, password: str) -> bytes:
    """The shared secret (ASCII bytes) the auth hash and HMACs use; blocking, cached."""
    if scheme == "pbkdf2":
        raw = hashlib.pbkdf2_hmac(
            "sha512", password.encode(), serial.encode(), _PBKDF2_ITERATIONS, _PBKDF2_BYTES
        )
        return base64.b64encode(raw)[:32]
    salt = bcrypt_salt(serial)
    secret_input = hashlib.sha256(password.encode()).hexdigest().encode()
    return bcrypt.hashpw(secret_input, salt)[len(salt) :]


async def derive_secret(scheme: AuthScheme, serial: str, password: str) -> bytes:
    """:func:`hashed_password` in a worker thread (it takes a second on a GX)."""
    return await anyio.to_thread.run_sync(hashed_password, scheme, serial, password)


def auth_hash(token1: str, token2: str, token3: str, secret: bytes) -> str:
    """The ``hash`` of the ``auth`` frame (hex SHA-256)."""
    hash1 = hashlib.sha256(token1.encode() + secret).hexdigest()
    return hashlib.sha256((token3 + token2 + hash1).encode()).hexdigest()


def message_hmac(secret: bytes, data: str) -> str:
    """The ``hmac`` of a ``securedMsg`` over its exact ``data`` string (hex HMAC-SHA256)."""
    return hmac.new(secret, data.encode(), hashlib.sha256).hexdigest()


def new_token3() -> str:
    """32 random hex characters: the client's token."""
    return secrets.token_hex(16)
