"""The Victron services of a simulated GX, published through our own Venus layer."""

from __future__ import annotations

from .settings import LocalSettings, SettingRecord

__all__ = ["LocalSettings", "SettingRecord"]
