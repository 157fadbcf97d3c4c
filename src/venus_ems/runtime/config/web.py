"""``[web]``: the dashboard (off by default; loopback only unless a password is set)."""

from __future__ import annotations

import ipaddress

from pydantic import Field, field_validator, model_validator

from ..passwords import parse_hash
from .base import StrictModel
from .secrets import Secret

__all__ = ["WebConfig"]


def _loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class WebConfig(StrictModel):
    """Where the dashboard listens, who may open it, and how much history it keeps."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=8088, ge=0, le=65535)
    password_hash: Secret | None = None
    session_ttl_s: float = Field(default=12 * 3600.0, ge=60.0, le=30 * 86400.0)
    history_s: float = Field(default=3600.0, ge=300.0, le=6 * 3600.0)
    sample_interval_s: float = Field(default=10.0, ge=1.0, le=300.0)
    update_interval_s: float = Field(default=0.5, ge=0.1, le=1.0)
    max_clients: int = Field(default=8, ge=1, le=64)

    @field_validator("host")
    @classmethod
    def _address(cls, host: str) -> str:
        """An IP address (``0.0.0.0`` = every interface) or ``localhost``."""
        if host == "localhost":
            return host
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(
                "expected an IP address (127.0.0.1, 0.0.0.0 for every interface, a LAN "
                "address) or localhost"
            ) from None
        return host

    @field_validator("password_hash")
    @classmethod
    def _hash(cls, value: Secret | None) -> Secret | None:
        """The hash must parse (its text is never echoed)."""
        if value is not None:
            parse_hash(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _lan_needs_password(self) -> WebConfig:
        """Anything but loopback is reachable from the LAN: refuse it without a password."""
        if self.enabled and not _loopback(self.host) and self.password_hash is None:
            raise ValueError(
                f"host = {self.host!r} opens the dashboard to the network: set password_hash "
                "(create one with `venus-ems hash-password`) or bind to 127.0.0.1"
            )
        return self
