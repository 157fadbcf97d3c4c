"""Warnings about a valid configuration that is still unsafe (shown by check-config and at start).

* a config file others may read while it holds a password as a literal;
* an MQTT password sent without TLS to a broker on another machine.
"""

from __future__ import annotations

import ipaddress
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel

from .model import Config
from .report import Loc, format_loc
from .secrets import Secret

__all__ = ["config_warnings", "is_local_host", "literal_secrets"]


def literal_secrets(config: Config) -> list[str]:
    """Keys (``mqtt.password``) whose secret is written in the file, not taken from the env."""
    return [format_loc(loc) for loc, secret in _secrets(config, ()) if secret.env is None]


def _secrets(value: object, loc: Loc) -> Iterator[tuple[Loc, Secret]]:
    if isinstance(value, Secret):
        yield loc, value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _secrets(getattr(value, name), (*loc, name))
    elif isinstance(value, tuple):
        for i, item in enumerate(value):
            yield from _secrets(item, (*loc, i))


def is_local_host(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (traffic that never leaves the machine)."""
    name = host.lower().removesuffix(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def config_warnings(config: Config, path: str | os.PathLike[str] | None = None) -> list[str]:
    """Every warning for ``config`` (read from ``path``, if given), as sentences."""
    out = []
    literal = literal_secrets(config)
    if path is not None and literal:
        try:
            mode = stat.S_IMODE(Path(path).stat().st_mode)
        except OSError:
            mode = 0
        if mode & 0o044:
            who = "all users" if mode & 0o004 else "its group"
            out.append(
                f"{os.fspath(path)} holds {', '.join(literal)} and is readable by {who} "
                f'(mode {mode:04o}): run chmod 600 on it, or use {{ env = "NAME" }} secrets'
            )
    mqtt = config.mqtt
    if mqtt.enabled and mqtt.password is not None and not mqtt.tls and not is_local_host(mqtt.host):
        out.append(
            f"mqtt.password is sent in clear text to {mqtt.host}:{mqtt.effective_port} "
            "(tls = false): anyone on the network can read it; set tls = true"
        )
    return out
