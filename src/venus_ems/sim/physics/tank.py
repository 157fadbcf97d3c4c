"""A hot-water tank heated by a stepped heating rod: one fully mixed node, draw-offs, losses.

Energy balance per step (J): ``C dT = P_el dt - UA (T - T_amb) dt - P_draw dt`` with the heat
capacity ``C`` = litres x 4186 J/K (1 kg per litre), explicit in time. The rod's stages are
switched from outside (the Heizstab emulator's SSRs); the rod's own safety limiter opens at
``cutout_c`` and closes 5 K below (an assumption: electric rods carry one, the controller's
firmware has no limit). A draw-off takes hot water out and lets cold water in: modelled as the
heat it carries, and never more than the tank holds above the cold-water temperature (what
it could not deliver counts as ``unmet_kwh``).

The default draw-off day is the EU reference tapping cycle "M" (:data:`TAPPING_CYCLE_M`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ...errors import ConfigError

__all__ = ["TAPPING_CYCLE_M", "DrawOff", "Tank", "TankParams"]

_J_PER_KWH = 3.6e6
_WATER_J_PER_LITRE_K = 4186.0
_DAY_S = 86400.0


@dataclass(frozen=True)
class DrawOff:
    """One draw-off: start s after midnight, heat taken kWh, over ``duration_s``."""

    start_s: float
    energy_kwh: float
    duration_s: float = 60.0

    @property
    def power_w(self) -> float:
        """Heat flow out of the tank while it lasts, W."""
        return self.energy_kwh * _J_PER_KWH / self.duration_s


def _m(hhmm: str, kwh: float, minutes: float) -> DrawOff:
    h, m = hhmm.split(":")
    return DrawOff((int(h) * 60 + int(m)) * 60.0, kwh, minutes * 60.0)


TAPPING_CYCLE_M: tuple[DrawOff, ...] = (
    _m("07:00", 0.105, 1),
    _m("07:05", 1.400, 7),
    _m("07:30", 0.105, 1),
    _m("08:01", 0.105, 1),
    _m("08:15", 0.105, 1),
    _m("08:30", 0.105, 1),
    _m("08:45", 0.105, 1),
    _m("09:00", 0.105, 1),
    _m("09:30", 0.105, 1),
    _m("10:30", 0.105, 1),
    _m("11:30", 0.105, 1),
    _m("11:45", 0.105, 1),
    _m("12:45", 0.315, 2),
    _m("14:30", 0.105, 1),
    _m("15:30", 0.105, 1),
    _m("16:30", 0.105, 1),
    _m("18:00", 0.105, 1),
    _m("18:15", 0.105, 1),
    _m("18:30", 0.105, 1),
    _m("19:00", 0.105, 1),
    _m("20:30", 0.735, 4),
    _m("21:15", 0.105, 1),
    _m("21:30", 1.400, 7),
)
"""Load profile "M" of the EU water-heater rules (Commission Delegated Regulation (EU)
No 812/2013 Annex VII Table 3, Regulation (EU) No 814/2013 Annex III; the tapping cycle of
EN 16147): 23 draw-offs, 5.845 kWh of useful heat a day, times in local time. A normative
test cycle (derived from use studies), not one household's measurement; times and energies as
recalled from the regulation, durations ours (from the flow rates: ~6 kW for small taps, ~12 kW
for a shower). Source and licence notes: docs/simulation.md."""


@dataclass(frozen=True)
class TankParams:
    """Tank and rod: litres, loss W/K, °C, stage powers W, draw-offs; raises ConfigError."""

    volume_l: float = 200.0
    loss_w_per_k: float = 1.6
    ambient_c: float = 18.0
    cold_water_c: float = 12.0
    initial_c: float = 40.0
    stage_powers_w: tuple[float, ...] = (500.0, 1000.0, 2000.0)
    cutout_c: float | None = 90.0
    draw_offs: tuple[DrawOff, ...] = TAPPING_CYCLE_M
    draw_scale: float = 1.0
    phase: int = 1
    position: str = "ac-out"

    def __post_init__(self) -> None:
        """Validate ranges."""
        if not self.volume_l > 0:
            raise ConfigError("tank.volume_l must be > 0")
        if not self.loss_w_per_k >= 0:
            raise ConfigError("tank.loss_w_per_k must be >= 0")
        if not all(p > 0 for p in self.stage_powers_w):
            raise ConfigError("tank.stage_powers_w must be > 0")
        if not self.draw_scale >= 0:
            raise ConfigError("tank.draw_scale must be >= 0")
        if any(
            not (0 <= d.start_s < _DAY_S and d.energy_kwh >= 0 and d.duration_s > 0)
            for d in self.draw_offs
        ):
            raise ConfigError("tank.draw_offs: start in 0..86400 s, energy >= 0, duration > 0")
        if self.position not in ("ac-in", "ac-out") or self.phase not in (1, 2, 3):
            raise ConfigError("tank.position must be ac-in/ac-out and tank.phase 1..3")

    @property
    def heat_capacity_j_per_k(self) -> float:
        """J/K of the water."""
        return self.volume_l * _WATER_J_PER_LITRE_K


class Tank:
    """The tank's state; ``step`` advances it and returns the rod's electric power W."""

    def __init__(self, params: TankParams) -> None:
        """Stages off, water at ``initial_c``."""
        self.params = params
        self.temperature_c = params.initial_c
        self.elements: tuple[bool, ...] = (False,) * len(params.stage_powers_w)
        self.cut_out = False
        self.power_w = 0.0
        self.electric_kwh = 0.0
        self.loss_kwh = 0.0
        self.drawn_kwh = 0.0
        self.unmet_kwh = 0.0

    def set_elements(self, on: Sequence[bool]) -> None:
        """Switch the rod's stages (index = stage); ValueError for a wrong count."""
        if len(on) != len(self.elements):
            raise ValueError(f"the rod has {len(self.elements)} stages, got {len(on)}")
        self.elements = tuple(bool(x) for x in on)

    def water_temperature_c(self) -> float:
        """The (mixed) water temperature, °C."""
        return self.temperature_c

    def draw_w(self, now: float) -> float:
        """Heat the draw-off profile takes at ``now`` (s, daily), W."""
        t = now % _DAY_S
        total = 0.0
        for d in self.params.draw_offs:
            if d.start_s <= t < d.start_s + d.duration_s:
                total += d.power_w
        return total * self.params.draw_scale

    def step(
        self, now: float, dt: float, powered: bool = True, heat_w: float | None = None
    ) -> float:
        """Advance ``dt`` s from ``now``; returns electric W (``heat_w`` overrides the stages)."""
        p = self.params
        c = p.heat_capacity_j_per_k
        if p.cutout_c is not None:
            if self.temperature_c >= p.cutout_c:
                self.cut_out = True
            elif self.temperature_c <= p.cutout_c - 5.0:
                self.cut_out = False
        if heat_w is None:
            on = sum(w for w, x in zip(p.stage_powers_w, self.elements, strict=True) if x)
            heat_w = 0.0 if self.cut_out or not powered else on
        self.power_w = heat_w
        loss_w = p.loss_w_per_k * (self.temperature_c - p.ambient_c)
        mid = self.temperature_c + (heat_w - loss_w) * dt / c
        wanted = self.draw_w(now) * dt  # J
        available = max((mid - p.cold_water_c) * c, 0.0)
        drawn = min(wanted, available)
        self.temperature_c = mid - drawn / c
        self.electric_kwh += heat_w * dt / _J_PER_KWH
        self.loss_kwh += loss_w * dt / _J_PER_KWH
        self.drawn_kwh += drawn / _J_PER_KWH
        self.unmet_kwh += (wanted - drawn) / _J_PER_KWH
        return heat_w
