"""Secret config values: a literal or ``{ env = "NAME" }``, never shown by ``repr``/``str``.

Every secret created here is remembered (process-wide) so the log redaction filter can replace it
with ``***`` wherever it would otherwise appear: in messages, format arguments, tracebacks.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

from pydantic import GetCoreSchemaHandler, ValidationInfo
from pydantic_core import PydanticCustomError, core_schema

__all__ = ["MASK", "Secret", "forget_secrets", "known_secrets", "register_secret"]

MASK = "***"

# Secrets are few and live for the whole process; a plain set guarded by a lock suffices
# (logging handlers may run in anyio worker threads).
_KNOWN: set[str] = set()
_LOCK = threading.Lock()


def known_secrets() -> frozenset[str]:
    """Every non-empty secret value created so far in this process."""
    with _LOCK:
        return frozenset(_KNOWN)


def register_secret(value: str) -> None:
    """Remember ``value`` so logs and service messages show ``***`` instead (empty: ignored)."""
    if value:
        with _LOCK:
            _KNOWN.add(value)


def forget_secrets() -> None:
    """Forget every registered secret (tests only; nothing in the daemon calls this)."""
    with _LOCK:
        _KNOWN.clear()


class Secret:
    """A secret string: ``get_secret_value()`` returns it; ``repr``/``str`` show ``***``."""

    __slots__ = ("_env", "_value")

    def __init__(self, value: str, *, env: str | None = None) -> None:
        """Wrap ``value`` (from environment variable ``env`` if given) and register it."""
        self._value = value
        self._env = env
        register_secret(value)

    def get_secret_value(self) -> str:
        """The secret itself; pass it only to the component that needs it."""
        return self._value

    @property
    def env(self) -> str | None:
        """Name of the environment variable the value came from, or None for a literal."""
        return self._env

    def __repr__(self) -> str:
        """Masked; names the environment variable when there is one."""
        return f"Secret(env={self._env!r})" if self._env else f"Secret({MASK!r})"

    def __str__(self) -> str:
        """Always the mask."""
        return MASK

    def __eq__(self, other: object) -> bool:
        """Equal to another Secret with the same value."""
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        """Hash of the value (never printed)."""
        return hash(self._value)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[Any], handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        """Validate a string or ``{env = NAME}``; serialise to the mask."""
        return core_schema.with_info_plain_validator_function(
            _validate,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda _value: MASK, when_used="always"
            ),
        )


def _validate(value: Any, info: ValidationInfo) -> Secret:
    """Build a Secret; the environment comes from the validation context (default os.environ)."""
    if isinstance(value, Secret):
        return value
    if isinstance(value, str):
        return Secret(value)
    if isinstance(value, Mapping) and set(value) == {"env"} and isinstance(value["env"], str):
        name = value["env"]
        env: Mapping[str, str] = os.environ
        if isinstance(info.context, Mapping) and "env" in info.context:
            env = info.context["env"]
        if not name:
            raise PydanticCustomError("secret_env", "expected a variable name in { env = NAME }")
        if name not in env:
            raise PydanticCustomError(
                "secret_env", "environment variable {name} is not set", {"name": name}
            )
        return Secret(env[name], env=name)
    raise PydanticCustomError("secret_type", 'expected a string or { env = "NAME" }')
