"""Fixtures for the emulator tests: stepped clock, HTTP client, vectors and JSON shapes."""

from __future__ import annotations

import aiohttp
import pytest

from venus_ems.clock import SteppedClock


def _shape(value):
    """JSON type tree: objects keep their keys, arrays their length, leaves become type names."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if value is None:
        return "null"
    assert isinstance(value, str), value
    return "string"


@pytest.fixture
def json_shape():
    """The function mapping a decoded JSON document to its shape (keys and JSON types)."""
    return _shape


@pytest.fixture
def emu_clock() -> SteppedClock:
    """A stepped clock starting 2026-06-21 00:00 UTC."""
    return SteppedClock()


@pytest.fixture
async def http():
    """A real aiohttp client with a 5 s total timeout."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        yield session
