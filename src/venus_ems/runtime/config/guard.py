"""``[settings_guard]`` (P5): warn about dangerous Venus settings, fix only what is opted in."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import FeatureTable, Items

__all__ = ["GUARD_CHECKS", "GuardCheck", "SettingsGuardConfig"]

GuardCheck = Literal[
    "overvoltage_feed_in", "mode3_without_controller", "dvcc_off_with_bms", "feed_in_limit_missing"
]
GUARD_CHECKS: tuple[GuardCheck, ...] = (
    "overvoltage_feed_in",
    "mode3_without_controller",
    "dvcc_off_with_bms",
    "feed_in_limit_missing",
)


class SettingsGuardConfig(FeatureTable):
    """Checks at start and on every change; reads only, unless a check is listed in ``fix``."""

    feature = "venus_ems.features.settings_guard:build"

    fix: Items[GuardCheck] = ()
    legal_feed_in_cap_w: float | None = Field(default=None, ge=0.0, le=100_000.0)
