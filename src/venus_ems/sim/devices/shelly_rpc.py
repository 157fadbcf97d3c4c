"""Shelly gen2+ RPC plumbing shared by the components: errors, parameter parsing and checks.

Error codes and messages follow the captured frames: ``-103`` "Missing required 'id'" (or
"Invalid argument 'on'"), ``-105`` "Bad id=7", ``404`` "No handler for <Method>".
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "RpcError",
    "bad_id",
    "no_handler",
    "param_bool",
    "param_int",
    "param_number",
    "parse_query",
]


class RpcError(Exception):
    """An RPC call failed with a Shelly error ``code`` and ``message``."""

    def __init__(self, code: int, message: str) -> None:
        """Store the code and message exactly as the device would send them."""
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def as_dict(self) -> dict[str, Any]:
        """``{"code": ..., "message": ...}``."""
        return {"code": self.code, "message": self.message}


def no_handler(method: str) -> RpcError:
    """Unknown method (404)."""
    return RpcError(404, f"No handler for {method}")


def bad_id(value: object) -> RpcError:
    """No component with that id (-105)."""
    return RpcError(-105, f"Bad id={value}")


def parse_query(items: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """GET parameters → params: JSON literals (numbers, booleans, "strings", objects) or text."""
    return {key: _literal(raw) for key, raw in items}


def _literal(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _present(params: Mapping[str, Any], name: str, required: bool) -> bool:
    if name in params and params[name] is not None:
        return True
    if required:
        raise RpcError(-103, f"Missing required '{name}'")
    return False


def param_int(params: Mapping[str, Any], name: str, *, required: bool = True) -> int | None:
    """An integer parameter; RpcError -103 if missing (when required) or not an integer."""
    if not _present(params, name, required):
        return None
    value = params[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise RpcError(-103, f"Invalid argument '{name}'")
    return value


def param_bool(params: Mapping[str, Any], name: str, *, required: bool = True) -> bool | None:
    """A boolean parameter; RpcError -103 if missing (when required) or not a boolean."""
    if not _present(params, name, required):
        return None
    value = params[name]
    if not isinstance(value, bool):
        raise RpcError(-103, f"Invalid argument '{name}'")
    return value


def param_number(
    params: Mapping[str, Any], name: str, *, required: bool = True, minimum: float | None = None
) -> float | None:
    """A finite number >= ``minimum``; RpcError -103 if missing (when required) or invalid."""
    if not _present(params, name, required):
        return None
    value = params[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RpcError(-103, f"Invalid argument '{name}'")
    if minimum is not None and value < minimum:
        raise RpcError(-103, f"Invalid argument '{name}'")
    return float(value)
