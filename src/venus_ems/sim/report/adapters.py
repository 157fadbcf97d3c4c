"""Which enabled features act on the simulated day, and how: config table -> stepped controller.

A feature with a pure control core runs that core with the feature's own settings (the same
functions the feature calls, tunables at their configured values) through the stepped harness;
its commands reach the physics ``EFFECT_DELAY_S`` later, as in ``bench/control.py``. Features that
only observe or publish (meters, bridges, the settings guard) change nothing in the day; a feature
without a stepped model yet is listed as not simulated, never silently dropped. A new controlling
feature adds one function to :data:`ADAPTERS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...control import EssMode
from ...control.grid_target import target_band
from ...features.ess_control import ess_settings
from ...features.ess_control import tunables_for as ess_tunables
from ...features.output_limiter import limiter_settings
from ...features.output_limiter import tunables_for as limiter_tunables
from ...runtime.config import Config, EssControlConfig, OutputLimiterConfig
from ..physics import Site
from ..stepped import Controller, CoreController, LimiterController

__all__ = ["ADAPTERS", "EFFECT_DELAY_S", "OBSERVE_ONLY", "Plan", "plan"]

EFFECT_DELAY_S = 1.0
"""Seconds from a command to its effect on the physics (D-Bus, hub4control), as bench/ uses."""

OBSERVE_ONLY = frozenset(
    {"grid_meter", "pv_meter", "temperature", "mqtt_exporter", "time_to_go", "settings_guard"}
)
"""Tables whose features publish or report but never act on the site."""


@dataclass
class Plan:
    """What runs on the day: controllers, the grid aim for the tracking KPIs, and notes."""

    controllers: list[Controller] = field(default_factory=list)
    aim_w: float | None = None
    notes: list[str] = field(default_factory=list)
    simulated: list[str] = field(default_factory=list)


def _ess(cfg: Any, site: Site, out: Plan) -> None:
    assert isinstance(cfg, EssControlConfig)
    settings = ess_settings(cfg, {t.name: t.default for t in ess_tunables(cfg)}, site.phases)
    curtail = cfg.curtail_pv and settings.mode is EssMode.GRID_TARGET
    out.controllers.append(CoreController("ess_control", settings, EFFECT_DELAY_S, curtail=curtail))
    if settings.mode is EssMode.GRID_TARGET:
        feed = site.ess.settings.max_feed_in_power_w
        out.aim_w = target_band(settings.grid_target, feed if feed >= 0 else None).aim_w
    else:
        out.aim_w = None
        out.notes.append(f"ess_control runs mode {settings.mode.value}: no grid aim to track")


def _limiter(cfg: Any, site: Site, out: Plan) -> None:
    assert isinstance(cfg, OutputLimiterConfig)
    if cfg.method != "max_discharge_power":
        out.notes.append("output_limiter: method 'setpoint' is not in the report yet; left out")
        return
    values = {t.name: t.default for t in limiter_tunables(cfg)}
    settings = limiter_settings(cfg, values, site.phases).limiter
    out.controllers.append(LimiterController("output_limiter", settings, EFFECT_DELAY_S))


ADAPTERS: dict[str, Callable[[Any, Site, Plan], None]] = {
    "ess_control": _ess,
    "output_limiter": _limiter,
}
"""Config table -> adds the feature's stepped controller (and aim, notes) to a plan."""


def plan(config: Config | None, site: Site) -> Plan:
    """The controllers ``config`` puts on ``site``; without a config, Victron's own ESS alone.

    Raises ValueError when a feature's settings do not fit the site (e.g. per-phase limits on a
    single-phase system), as the feature itself would refuse to start.
    """
    out = Plan(aim_w=site.ess.settings.ac_power_setpoint_w)
    if config is None:
        out.notes.append("no config: Victron's own ESS loop alone (its grid setpoint is the aim)")
        return out
    for name, table in config.enabled_items():
        kind = name.partition(".")[0]
        adapter = ADAPTERS.get(kind)
        if adapter is not None:
            adapter(table, site, out)
            out.simulated.append(name)
        elif kind in OBSERVE_ONLY:
            out.notes.append(f"{name}: publishes or reports only, no effect on the day")
        else:
            out.notes.append(f"{name}: acts on the site but has no stepped model yet; left out")
    if not out.controllers:
        out.notes.append("no controlling feature enabled: Victron's own ESS loop alone")
    return out
