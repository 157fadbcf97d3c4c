"""Waiting in tests for something that happens on the bus or the broker (plain helper module)."""

from __future__ import annotations

from collections.abc import Callable

import anyio

__all__ = ["until"]


async def until(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    """Poll ``predicate`` every 5 ms; TimeoutError when it is still false after ``timeout`` s."""
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.005)
