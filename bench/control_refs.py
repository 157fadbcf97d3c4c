"""The benchmark's references for ESS control: the naive baseline and the oracle bound.

They act through the same delay line as our controllers (``venus_ems.sim.stepped``). The
baseline sees what a GX shows, like our core; the oracle sees the true load every step.
"""

from __future__ import annotations

from venus_ems.control import EssMethod, SetPhaseSetpoints, baseline
from venus_ems.sim.physics import Site
from venus_ems.sim.stepped import Delayed
from venus_ems.sim.stepped.controllers import (
    HUB4_MODE,
    FloorLatch,
    _Sender,
    conversion_window,
    site_inputs,
)


class BaselineController:
    """The naive baseline: a fixed-period P step on the latest reading, whatever its age."""

    every_step = False

    def __init__(self, name: str, settings: baseline.BaselineSettings, dead_time_s: float) -> None:
        self.name = name
        self.settings = settings
        self.state = baseline.BaselineState()
        self.sender = _Sender(dead_time_s, settings.method is EssMethod.MODE3)

    def setup(self, site: Site) -> None:
        site.set_ess_setting(HUB4_MODE, 3 if self.sender.mode3 else 1)

    def __call__(self, site: Site, t: float) -> list[Delayed]:
        d = baseline.decide(site_inputs(site, t), self.state, self.settings, t)
        self.state = d.next_state
        return self.sender.send(d.commands, t)


class OracleController:
    """Knows the load exactly, every step; same Multi, limits and dead time (mode 3).

    It needs no feedback: the per-phase AC-input setpoints that put the grid at ``aim_w`` for
    the present load, with the total conversion clamped to what the battery and the Multi
    allow (:func:`conversion_window`, SoC floor included). What is left is the dead time and
    the Multi's own lag.
    """

    every_step = True

    def __init__(self, name: str, aim_w: float, dead_time_s: float) -> None:
        self.name = name
        self.aim_w = aim_w
        self.sender = _Sender(dead_time_s, mode3=True)
        self.floor = FloorLatch()
        self._sent: tuple[float, ...] | None = None

    def setup(self, site: Site) -> None:
        site.set_ess_setting(HUB4_MODE, 3)

    def __call__(self, site: Site, t: float) -> list[Delayed]:
        n = site.phases
        idle = site.multi.idle_w()
        acin_side = [site.load_in_w[i] - site.pv_in_w[i] - site.micro_in_w[i] for i in range(n)]
        if_idle = sum(site.acout_w) + n * idle + sum(acin_side)
        lo, hi = conversion_window(site, self.floor.update(site))
        conv = min(max(self.aim_w - if_idle, lo), hi)
        setpoints = tuple(round(conv / n + site.acout_w[i] + idle, 1) for i in range(n))
        if (
            self._sent is not None
            and max(abs(a - b) for a, b in zip(setpoints, self._sent, strict=True)) < 1.0
        ):
            return self.sender.send((), t)
        self._sent = setpoints
        return self.sender.send((SetPhaseSetpoints.of(setpoints),), t)
