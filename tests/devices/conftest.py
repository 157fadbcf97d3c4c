"""Fixtures for the driver tests: real payloads, a stepped clock, one aiohttp session."""

from __future__ import annotations

import json
import os
from pathlib import Path

import aiohttp
import pytest

from venus_ems.runtime.clock import SteppedClock

VECTORS = Path(
    os.environ.get("VENUS_EMS_VECTORS", Path(__file__).resolve().parents[3] / "shared" / "vectors")
)


@pytest.fixture
def load_vector():
    """Load a payload from the shared vectors; skip the test when they are absent."""

    def load(name: str):
        path = VECTORS / name
        if not path.is_file():
            pytest.skip(f"vector {name} not available at {VECTORS}")
        return json.loads(path.read_text(encoding="utf-8"))

    return load


@pytest.fixture
def clock() -> SteppedClock:
    return SteppedClock()


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as s:
        yield s
