"""Reference surplus distributors for bench/surplus.py, written from their documented behaviour.

* :class:`EsEss` — es-ESS's SolarOverheadDistributor (shared/docs/reference/es-ess.md §10):
  every 60 s, ``O = max(0, feed-in + assigned + battery power)``, reservation ``R`` from the
  ``MinBatteryCharge`` curve, the exact grant loop of §10.4 (strict ``step < O - R``, one grant
  per pass to the first eligible consumer by effective priority) with config (NPC) consumers
  whose step is their whole request; an HTTP consumer switches on when its allowance reaches
  its request and off only at 0 (§10.8). Stateless: no hysteresis, no minimum on/off time.
* :class:`OpportunityLoadsLike` — Victron's Opportunity Loads loop as documented for the
  prototype (venus-platform.md §1.7, modelled in :mod:`venus_ems.sim.ol_loop`): every 5 s,
  surplus = AC PV + 0.925 x DC PV - consumption + what its loads draw, one change per loop,
  OMBC MinRun/MinRest timers, an instruction confirmed once the relay has switched; its loads
  sit below ``battery`` in the priority list (they only get what is left after the reservation).

Both see the same site values as ours (true grid, battery, SoC, PV, relay draw at the instant
of the decision) and switch relays with the same 1 s delay.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from venus_ems.control.ombc import OmbcMode, OmbcPlan
from venus_ems.sim.ol_loop import OlLoad, OlLoop
from venus_ems.sim.physics import Site
from venus_ems.sim.stepped.harness import Delayed

__all__ = ["Consumer", "EsEss", "OpportunityLoadsLike", "relay_write"]

SWITCH_DELAY_S = 1.0


@dataclass(frozen=True)
class Consumer:
    """A switched load of the bench (W, s; lower priority = served first)."""

    relay: str
    power_w: float
    priority: int
    min_on_s: float = 60.0
    min_off_s: float = 60.0


def relay_write(name: str, on: bool, then: Callable[[Site], None] | None = None) -> Delayed:
    """Switch one relay after the switching delay (``then`` runs when it has switched)."""

    def write(site: Site) -> None:
        site.set_relay(name, on)
        if then is not None:
            then(site)

    return Delayed(SWITCH_DELAY_S, write)


class EsEss:
    """es-ESS SolarOverheadDistributor with HTTP (NPC) consumers (see the module doc)."""

    every_step = True

    def __init__(
        self,
        consumers: Sequence[Consumer],
        reservation: Callable[[float], float],
        *,
        cycle_s: float = 60.0,
    ) -> None:
        """``reservation(soc)`` is the ``MinBatteryCharge`` curve, W."""
        self.name = "es-ESS"
        self.consumers = list(consumers)
        self.reservation = reservation
        self.cycle_s = cycle_s
        self._next = 0.0

    def setup(self, site: Site) -> None:
        """First cycle at the start of the run."""
        self._next = site.time

    def allocate(self, o: float, r: float) -> dict[str, float]:
        """§10.4 with step = minimum-free request (NPC: StepSize := Request), no shift."""
        order = sorted(self.consumers, key=lambda c: c.priority)  # stable: ties in config order
        d = {c.relay: 0.0 for c in order}
        while True:
            granted = False
            for c in order:
                step = request = c.power_w
                if d[c.relay] >= request:
                    continue
                if step < o - r:
                    d[c.relay] += step
                    o -= step
                    granted = True
                    break
            if not granted:
                return d

    def __call__(self, site: Site, t: float) -> list[Delayed]:
        """One distribution cycle when due."""
        if t + 1e-9 < self._next:
            return []
        self._next += self.cycle_s
        feed_in = -sum(site.grid_w)
        assigned = sum(site.relays[c.relay].power_w for c in self.consumers)
        o = max(0.0, feed_in + assigned + site.battery.power_w)
        allowance = self.allocate(o, self.reservation(site.battery.soc))
        out: list[Delayed] = []
        for c in self.consumers:
            on = site.relays[c.relay].on
            if allowance[c.relay] >= c.power_w and not on:
                out.append(relay_write(c.relay, True))
            elif allowance[c.relay] == 0 and on:
                out.append(relay_write(c.relay, False))
        return out


class OpportunityLoadsLike:
    """Victron Opportunity Loads' loop with on/off OMBC resource managers (module doc)."""

    every_step = True

    def __init__(
        self,
        consumers: Sequence[Consumer],
        reservation: Callable[[float], float],
        *,
        interval_s: float = 5.0,
    ) -> None:
        """One OMBC plan (Off, on) per consumer with its min run/rest as timers."""
        self.name = "Opportunity Loads"
        self.consumers = list(consumers)
        self.reservation = reservation
        self.interval_s = interval_s
        self.loads = [
            OlLoad(
                c.relay,
                OmbcPlan.for_levels(
                    c.relay, (0.0, c.power_w), min_on_s=c.min_on_s, min_off_s=c.min_off_s
                ),
                c.priority,
            )
            for c in consumers
        ]
        self.loop = OlLoop(self.loads)
        self._next = 0.0

    def setup(self, site: Site) -> None:
        """First loop at the start of the run."""
        self._next = site.time

    def __call__(self, site: Site, t: float) -> list[Delayed]:
        """One control loop when due: at most one instruction."""
        if t + 1e-9 < self._next:
            return []
        self._next += self.interval_s
        f = site.flows
        managed = sum(site.relays[c.relay].power_w for c in self.consumers)
        surplus = f.pv_ac_w + 0.925 * f.pv_dc_w - f.loads_w + managed
        step = self.loop.step(surplus, self.reservation(site.battery.soc), t)
        if step is None:
            return []
        load, mode = step
        load.sends += 1
        if load.sends > 1:
            return []  # already sent, the relay has not confirmed yet
        return [relay_write(load.name, mode.power_w > 0, _confirm(load, mode))]


def _confirm(load: OlLoad, mode: OmbcMode) -> Callable[[Site], None]:
    def confirm(site: Site) -> None:
        load.confirmed(mode, site.time)  # the RM's OMBC.Status after the switch

    return confirm
