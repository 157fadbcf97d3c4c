"""P5 settings guard: find dangerous Venus settings, report them, fix only what is opted in.

Checks run at start and whenever one of the watched values changes:

* ``overvoltage_feed_in`` — ``/Settings/CGwacs/OvervoltageFeedIn`` = 1 while feed-in is blocked
  (MaxFeedInPower 0 W, hub4 FeedInExcess = restrict, or vebus DisableFeedIn): excess DC PV has
  nowhere to go and DVCC keeps the solar chargers at maximum even with a full battery.
  Fix: OvervoltageFeedIn = 0.
* ``mode3_without_controller`` — Hub4Mode 3 (external control) while venus-ems drives no mode-3
  setpoints (checked after a start-up grace time): the Multi falls back to passthrough.
  Fix: Hub4Mode = 1.
* ``dvcc_off_with_bms`` — DVCC off (``/Settings/Services/Bol`` = 0) with a managed battery (its
  BMS publishes a charge current limit). Fix: Bol = 1.
* ``feed_in_limit_missing`` — a legal feed-in cap is configured but MaxFeedInPower is unlimited
  (-1) or higher. Fix: MaxFeedInPower = the cap.

A missing value never raises a warning (no guessing). A fix writes a persisted setting once per
run; if the setting is changed back, the guard reports it and does not fight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio
from anyio.abc import TaskStatus

from ..runtime.config import SettingsGuardConfig
from ..runtime.feature import FeatureContext
from ..venus.active import active_service
from ..venus.names import BATTERY, HUB4, SETTINGS, SYSTEM, VEBUS
from ..venus.names import VENUSEMS as STATUS

__all__ = ["Finding", "SettingsGuard", "Values", "build", "check"]

CGWACS = "/Settings/CGwacs"
GRACE_S = 60.0


@dataclass(frozen=True)
class Values:
    """What the checks look at (None = unknown)."""

    overvoltage_feed_in: int | None = None
    max_feed_in_power_w: float | None = None
    hub4_mode: int | None = None
    dvcc: int | None = None
    feed_in_excess: int | None = None
    disable_feed_in: int | None = None
    bms_charge_limit_a: float | None = None
    we_drive_mode3: bool = False
    uptime_s: float = 0.0


@dataclass(frozen=True)
class Finding:
    """One problem: check id, message, and the fix (service, path, value)."""

    check: str
    text: str
    fix: tuple[str, str, Any]


def check(v: Values, legal_cap_w: float | None = None) -> list[Finding]:
    """Every problem the values show, in a stable order (pure)."""
    found: list[Finding] = []
    blocked = [
        why
        for why, on in (
            ("MaxFeedInPower is 0 W", v.max_feed_in_power_w == 0),
            ("hub4 FeedInExcess restricts feed-in", v.feed_in_excess == 1),
            ("the Multi's DisableFeedIn is set", v.disable_feed_in == 1),
        )
        if on
    ]
    if v.overvoltage_feed_in == 1 and blocked:
        found.append(
            Finding(
                "overvoltage_feed_in",
                f"OvervoltageFeedIn = 1 but {blocked[0]}: excess DC PV has nowhere to go and "
                "DVCC keeps the solar chargers at maximum even with a full battery",
                (SETTINGS, f"{CGWACS}/OvervoltageFeedIn", 0),
            )
        )
    if v.hub4_mode == 3 and not v.we_drive_mode3 and v.uptime_s >= GRACE_S:
        found.append(
            Finding(
                "mode3_without_controller",
                "Hub4Mode is 3 (external control) but venus-ems drives no mode-3 setpoints: "
                "the Multi falls back to passthrough and the battery is idle",
                (SETTINGS, f"{CGWACS}/Hub4Mode", 1),
            )
        )
    if v.dvcc == 0 and v.bms_charge_limit_a is not None:
        found.append(
            Finding(
                "dvcc_off_with_bms",
                f"DVCC is off although the battery's BMS limits charging to "
                f"{v.bms_charge_limit_a:.0f} A: the chargers ignore that limit",
                (SETTINGS, "/Settings/Services/Bol", 1),
            )
        )
    cap = legal_cap_w
    limit = v.max_feed_in_power_w
    if cap is not None and limit is not None and (limit < 0 or limit > cap):
        shown = "unlimited" if limit < 0 else f"{limit:.0f} W"
        found.append(
            Finding(
                "feed_in_limit_missing",
                f"MaxFeedInPower is {shown} but the legal feed-in cap is {cap:.0f} W",
                (SETTINGS, f"{CGWACS}/MaxFeedInPower", float(cap)),
            )
        )
    return found


class SettingsGuard:
    """The feature: watch, check, report, and apply opted-in fixes once."""

    name = "settings_guard"

    def __init__(self, config: SettingsGuardConfig) -> None:
        """Keep the config; nothing happens before ``run``."""
        self.config = config
        self._active: dict[str, Finding] = {}
        self._fixed: set[str] = set()
        self._warned_back: set[str] = set()

    async def run(self, ctx: FeatureContext, *, task_status: TaskStatus[None]) -> None:
        """Check now and on every change of a watched value, until cancelled."""
        start = ctx.clock.monotonic()
        sub = ctx.monitor.subscribe(
            services=[
                SETTINGS,
                SYSTEM,
                HUB4,
                STATUS,
                VEBUS,
                BATTERY,
            ]
        )
        task_status.started()
        try:
            while True:
                await self._evaluate(ctx, ctx.clock.monotonic() - start)
                with anyio.move_on_after(GRACE_S / 2):  # also re-check as uptime passes the grace
                    await sub.__anext__()
        finally:
            ctx.monitor.unsubscribe(sub)

    def values(self, ctx: FeatureContext, uptime_s: float) -> Values:
        """Read the watched values from the monitor."""
        m = ctx.monitor
        vebus = active_service(m, VEBUS)
        battery = active_service(m, BATTERY)
        return Values(
            overvoltage_feed_in=m.get_int(SETTINGS, f"{CGWACS}/OvervoltageFeedIn"),
            max_feed_in_power_w=m.get_float(SETTINGS, f"{CGWACS}/MaxFeedInPower"),
            hub4_mode=m.get_int(SETTINGS, f"{CGWACS}/Hub4Mode"),
            dvcc=m.get_int(SETTINGS, "/Settings/Services/Bol"),
            feed_in_excess=m.get_int(HUB4, "/Overrides/FeedInExcess"),
            disable_feed_in=m.get_int(vebus, "/Hub4/DisableFeedIn") if vebus else None,
            bms_charge_limit_a=m.get_float(battery, "/Info/MaxChargeCurrent") if battery else None,
            we_drive_mode3=bool(m.get_str(STATUS, "/Outputs/ess_phase_setpoints/Owner")),
            uptime_s=uptime_s,
        )

    async def _evaluate(self, ctx: FeatureContext, uptime_s: float) -> None:
        findings = {
            f.check: f for f in check(self.values(ctx, uptime_s), self.config.legal_feed_in_cap_w)
        }
        for key, finding in findings.items():
            if key not in self._active:
                ctx.message("warning", finding.text)
        for key in set(self._active) - set(findings):
            ctx.message("info", f"resolved: {key}")
        self._active = findings
        if findings:
            ctx.report(
                f"{len(findings)} warning(s): " + ", ".join(findings),
                [f.text for f in findings.values()],
            )
        else:
            ctx.report("settings ok")
        for key, finding in findings.items():
            if key in self.config.fix:
                await self._fix(ctx, finding)

    async def _fix(self, ctx: FeatureContext, finding: Finding) -> None:
        service, path, value = finding.fix
        if finding.check in self._fixed:
            if finding.check not in self._warned_back:
                self._warned_back.add(finding.check)
                ctx.message("warning", f"{path} was changed back; not fixing it again this run")
            return
        self._fixed.add(finding.check)
        if ctx.dry_run:
            ctx.message("info", f"dry run: would set {path} = {value!r}")
            return
        code = await ctx.monitor.set_value(service, path, value)
        if code == 0:
            ctx.message("info", f"fixed: set {path} = {value!r}")
        else:
            ctx.message("error", f"could not set {path} = {value!r} (code {code})")


def build(config: SettingsGuardConfig) -> SettingsGuard:
    """Registry factory."""
    return SettingsGuard(config)
