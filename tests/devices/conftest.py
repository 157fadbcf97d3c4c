"""Fixtures for the driver tests: real payloads, a stepped clock, one aiohttp session."""

from __future__ import annotations

import aiohttp
import pytest

from venus_ems.clock import SteppedClock


@pytest.fixture
def clock() -> SteppedClock:
    return SteppedClock()


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as s:
        yield s
