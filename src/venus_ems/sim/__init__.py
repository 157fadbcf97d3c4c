"""The simulated GX site: physics, scenarios, Victron services and device emulators."""

from __future__ import annotations

__all__: list[str] = []
