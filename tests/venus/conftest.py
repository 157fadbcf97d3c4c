"""Fixtures for the D-Bus layer tests."""

from __future__ import annotations

import pytest
from venus_helpers import Recorder


@pytest.fixture
async def recorder(bus_address):
    rec = await Recorder().start(bus_address)
    yield rec
    rec.close()
