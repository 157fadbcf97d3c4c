"""C5: keep the battery's charge current at or below a SoC formula by exporting DC PV.

Every ``interval_s`` the battery current, voltage and SoC (``system /Dc/Battery/*``) give the
next grid-target shift of :mod:`venus_ems.control.charge_reducer` (<= 0 W: more export). The
only output is a request to ESS control (``ctx.grid_requests``), which writes its volatile hub4
``/Overrides/Setpoint`` (venus-platform.md: the overrides live on the service, not in settings)
and renews it every 5 s: no persisted setting is written, so none is written in a loop. DVCC's
``/Settings/SystemSetup/MaxChargeCurrent`` is persisted *and* would curtail the MPPTs instead
of exporting, so it is not used. The request lasts ``3 x interval_s``: it is renewed every
step, released on unknown or stale readings and when the feature stops, and expires by itself
if the feature stalls. DC PV reaches the grid only with ``/Settings/CGwacs/OvervoltageFeedIn``
= 1 (read, never written: a reason says when it is off).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from anyio.abc import TaskStatus

from ..control.charge_reducer import ReducerInputs, ReducerSettings, SocFormula, next_shift_w
from ..runtime.config import ChargeCurrentReducerConfig
from ..venus import SETTINGS_SERVICE
from ..venus.names import SYSTEM
from .ess_inputs import InputTracker
from .grid_requester import run_requester

if TYPE_CHECKING:
    from ..runtime.feature import FeatureContext

__all__ = ["ChargeCurrentReducer", "build"]

FEED_IN = "/Settings/CGwacs/OvervoltageFeedIn"


class ChargeCurrentReducer:
    """The ``[charge_current_reducer]`` feature."""

    name = "charge_current_reducer"

    def __init__(self, config: ChargeCurrentReducerConfig) -> None:
        """Compile the formula (checked at config time already)."""
        self.config = config
        self.formula = SocFormula(config.limit_a)
        self.settings = ReducerSettings(
            gain=config.gain, max_export_w=config.max_export_w, dead_band_a=config.dead_band_a
        )
        self.shift_w = 0.0

    def step(self, ctx: FeatureContext, tracker: InputTracker) -> None:
        """One step: request the new shift, or release."""
        now = ctx.clock.monotonic()
        mon = ctx.monitor
        at = tracker.seen_at.get(SYSTEM, tracker.started_at)
        fresh = at is not None and now - at <= self.config.stale_input_s
        inputs = ReducerInputs(
            mon.get_float(SYSTEM, "/Dc/Battery/Current") if fresh else None,
            mon.get_float(SYSTEM, "/Dc/Battery/Voltage") if fresh else None,
            mon.get_float(SYSTEM, "/Dc/Battery/Soc") if fresh else None,
        )
        shift = next_shift_w(inputs, self.shift_w, self.formula, self.settings)
        if shift is None:
            self.shift_w = 0.0
            ctx.grid_requests.release(self.name)
            ctx.report("released", ["battery readings unknown or stale"])
            return
        self.shift_w = shift
        assert inputs.soc_pct is not None
        limit = self.formula.limit_a(inputs.soc_pct)
        reasons = [
            f"battery {inputs.current_a:.1f} A, limit {limit:.1f} A at {inputs.soc_pct:.0f} %"
        ]
        if mon.get_int(SETTINGS_SERVICE, FEED_IN) == 0:
            reasons.append("DC PV feed-in is off (OvervoltageFeedIn = 0): export may not rise")
        if shift == 0.0:
            ctx.grid_requests.release(self.name)
            ctx.report("within the limit", reasons)
            return
        ctx.grid_requests.request(
            self.name,
            shift,
            until=now + 3.0 * self.config.interval_s,
            reason=f"battery charge current above {limit:.0f} A",
        )
        ctx.report(f"grid target {shift:+.0f} W", reasons)

    async def run(self, ctx: FeatureContext, *, task_status: TaskStatus[None]) -> None:
        """Step every ``interval_s`` until cancelled; release the request on the way out."""
        self.shift_w = 0.0
        await run_requester(
            ctx,
            self.name,
            lambda tracker: self.step(ctx, tracker),
            self.config.interval_s,
            task_status=task_status,
        )


def build(config: ChargeCurrentReducerConfig) -> ChargeCurrentReducer:
    """Registry factory for ``[charge_current_reducer]``."""
    return ChargeCurrentReducer(config)
