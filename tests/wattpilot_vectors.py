"""The known answers of ``wattpilot-handshake.md``, read from the Markdown itself (plain helper)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class KnownAnswers:
    password: str
    serial: str
    token1: str
    token2: str
    token3: str
    secret: dict[str, str]  # scheme -> hashedpassword
    hash1: dict[str, str]
    auth_hash: dict[str, str]
    bcrypt_salt: str
    secured_amp10: dict  # the securedMsg frame for amp=10 (pbkdf2)
    hmac_amp10: dict[str, str]  # scheme -> HMAC of its data


def _cell(row: str, index: int) -> str:
    return re.findall(r"`([^`]*)`", row.split("|")[index])[0]


def known_answers(md: str) -> KnownAnswers:
    inputs = {}
    for name in ("password", "serial", "token1", "token2", "token3"):
        row = next(line for line in md.splitlines() if line.startswith(f"| {name} |"))
        inputs[name] = _cell(row, 2)
    secret, hash1, auth = {}, {}, {}
    for scheme in ("pbkdf2", "bcrypt"):
        row = next(line for line in md.splitlines() if line.startswith(f"| {scheme} |"))
        secret[scheme], hash1[scheme], auth[scheme] = _cell(row, 2), _cell(row, 3), _cell(row, 4)
    salt = re.search(r"\(salt `([^`]+)`\)", md)[1]
    blocks = re.findall(r"```json\n(\{\"type\": \"securedMsg\".*?)\n```", md, re.DOTALL)
    secured = json.loads(blocks[0])
    bcrypt_hmac = re.search(
        r"For the bcrypt secret the HMAC of the same `data` is `([0-9a-f]+)`", md
    )[1]
    return KnownAnswers(
        **inputs,
        secret=secret,
        hash1=hash1,
        auth_hash=auth,
        bcrypt_salt=salt,
        secured_amp10=secured,
        hmac_amp10={"pbkdf2": secured["hmac"], "bcrypt": bcrypt_hmac},
    )
