"""Micro-inverter controllers on the simulated physics: what the DTU shows, how commands travel.

Every controller here sees the site the way the daemon would:

* the grid meter's view (1 Hz, noise, quantisation) and the battery readings;
* a DTU (:class:`DtuView`) that polls each inverter every ``poll_s`` (staggered), so AC/DC
  values are those of its last poll, while limits and command states are current;
* commands (:class:`Link`) reach the DTU 0.1 s after they are decided; the inverter
  acknowledges them after its ``ack_s`` and acts after its dead time (the physics). Like the
  daemon's actuator, one write per inverter is in flight at a time: a newer value waits for
  the confirmation (or failure) of the one before; failed writes are retried every 5 s.

:class:`MicroKpis` observes the true site after every step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from control_harness import Delayed

from venus_ems.control import BatterySample, GridSample
from venus_ems.control.commands import RestartInverter, SetInverterLimit
from venus_ems.control.micro import decide
from venus_ems.control.micro_model import InverterSample, MicroInputs, MicroSettings, MicroState
from venus_ems.sim.physics import Site

NETWORK_S = 0.1
RETRY_S = 5.0
VERIFY_TIMEOUT_S = 15.0
_H = 3600.0


def grid_sample(site: Site) -> GridSample | None:
    """The meter view of the grid (total W, + = import) stamped when it was sampled."""
    reading = site.meter.reading()
    if reading is None:
        return None
    return GridSample((sum(reading),), site.meter.sample_time)


def battery_sample(site: Site, t: float) -> BatterySample:
    """The battery as the GX shows it (power + = charging)."""
    bat = site.battery
    return BatterySample(
        measured_at=t,
        soc_pct=min(max(bat.soc, 0.0), 100.0),
        voltage_v=bat.voltage_v,
        power_w=bat.power_w,
        ccl_a=bat.ccl_a,
        dcl_a=bat.dcl_a,
        allow_charge=bat.allow_charge,
        allow_discharge=bat.allow_discharge,
    )


@dataclass
class _Polled:
    at: float
    ac_w: float
    dc_w: float


@dataclass
class DtuView:
    """The DTU's view: one poll per inverter every ``poll_s`` s, staggered."""

    poll_s: float = 5.0
    polled: dict[str, _Polled] = field(default_factory=dict)

    def update(self, site: Site) -> None:
        """Take the polls that fell due since the last call."""
        n = len(site.micros)
        for i, (serial, mi) in enumerate(site.micros.items()):
            offset = self.poll_s * i / max(n, 1)
            last = math.floor((site.time - offset) / self.poll_s) * self.poll_s + offset
            held = self.polled.get(serial)
            if mi.reachable and (held is None or held.at < last):
                self.polled[serial] = _Polled(last, mi.power_w, mi.dc_power_w)

    def ac_w(self, serial: str) -> float | None:
        """AC W of the last poll (None: never polled)."""
        p = self.polled.get(serial)
        return None if p is None else p.ac_w


@dataclass
class _Write:
    pct: int
    sent_at: float


@dataclass
class Link:
    """The actuator and writer of each inverter: one write in flight, confirmed by read-back."""

    commands: int = 0
    restarts: int = 0
    inflight: dict[str, _Write] = field(default_factory=dict)
    desired: dict[str, int] = field(default_factory=dict)
    confirmed: dict[str, tuple[int, float]] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    retry_at: dict[str, float] = field(default_factory=dict)
    resend: set[str] = field(default_factory=set)

    def want(self, serial: str, pct: int, *, resend: bool = False) -> None:
        """Claim ``pct`` for ``serial`` (``resend``: write it even if unchanged)."""
        self.desired[serial] = pct
        if resend:
            self.resend.add(serial)

    def step(self, site: Site, t: float) -> list[Delayed]:
        """Check writes in flight, start the next ones; returns what reaches the DTU."""
        out: list[Delayed] = []
        for serial, mi in site.micros.items():
            w = self.inflight.get(serial)
            if w is not None:
                ok = mi.limit_status == "Ok" and abs(mi.limit_relative - w.pct) < 0.6
                acked = t >= w.sent_at + NETWORK_S + 0.5 and ok
                failed = mi.limit_status == "Failure" and t >= w.sent_at + NETWORK_S + 0.5
                if acked:
                    self.confirmed[serial] = (w.pct, t)
                    self.failures[serial] = 0
                    del self.inflight[serial]
                elif failed or t - w.sent_at > VERIFY_TIMEOUT_S:
                    self.failures[serial] = self.failures.get(serial, 0) + 1
                    self.retry_at[serial] = t + RETRY_S
                    del self.inflight[serial]
                else:
                    continue
            want = self.desired.get(serial)
            if want is None or t < self.retry_at.get(serial, -math.inf):
                continue
            held = self.confirmed.get(serial)
            if held is not None and held[0] == want and serial not in self.resend:
                continue
            self.resend.discard(serial)
            self.inflight[serial] = _Write(want, t)
            self.commands += 1
            out.append(Delayed(NETWORK_S, _limit(serial, want)))
        return out


def _limit(serial: str, pct: int):
    return lambda site: site.set_micro_limit(serial, pct, relative=True)


def _restart(serial: str):
    return lambda site: site.restart_micro(serial)


class OursController:
    """Our core (:func:`venus_ems.control.micro.decide`) with the feature's defaults."""

    every_step = False

    def __init__(self, name: str, settings: MicroSettings, *, poll_s: float = 5.0) -> None:
        self.name = name
        self.settings = settings
        self.state = MicroState()
        self.dtu = DtuView(poll_s)
        self.link = Link()
        self.decisions = 0

    def setup(self, site: Site) -> None:
        """Nothing to prepare: the core starts each inverter at its safe limit."""

    def inputs(self, site: Site, t: float) -> MicroInputs:
        self.dtu.update(site)
        samples = []
        for serial, mi in site.micros.items():
            polled = self.dtu.polled.get(serial)
            confirmed = self.link.confirmed.get(serial)
            samples.append(
                InverterSample(
                    serial=serial,
                    reachable=mi.reachable,
                    data_at=polled.at if polled is not None else -math.inf,
                    ac_power_w=None if polled is None else polled.ac_w,
                    dc_power_w=None if polled is None else polled.dc_w,
                    limit_pct=mi.limit_relative,
                    limit_state=mi.limit_status,
                    confirmed_pct=None if confirmed is None else confirmed[0],
                    confirmed_at=None if confirmed is None else confirmed[1],
                    write_failures=self.link.failures.get(serial, 0),
                )
            )
        return MicroInputs(
            grid=grid_sample(site),
            battery=battery_sample(site, t),
            inverters=tuple(samples),
            dtu_at=t,
        )

    def __call__(self, site: Site, t: float) -> list[Delayed]:
        decision = decide(self.inputs(site, t), self.state, self.settings, t)
        self.state = decision.next_state
        self.decisions += 1
        out: list[Delayed] = []
        for cmd in decision.commands:
            if isinstance(cmd, SetInverterLimit):
                step = self.settings.inverter(cmd.serial).step_w
                self.link.want(cmd.serial, round(cmd.w / step), resend=cmd.resend)
            elif isinstance(cmd, RestartInverter):
                self.link.restarts += 1
                out.append(Delayed(NETWORK_S, _restart(cmd.serial)))
        return out + self.link.step(site, t)


@dataclass
class MicroKpis:
    """Export, import and the import the inverters could have covered (true site, W·s -> Wh).

    *Coverable import*: import above ``aim_w`` that the inverters had room for at that second
    (each up to its maximum, all within ``cap_w``) while the battery allowed discharge.
    """

    aim_w: float
    max_w: float
    cap_w: float | None = None
    stop_soc_pct: float = 0.0
    export_wh: float = 0.0
    import_wh: float = 0.0
    coverable_wh: float = 0.0
    seconds: float = 0.0
    micro_wh: float = 0.0

    def observe(self, site: Site, dt: float) -> None:
        g = sum(site.grid_w)
        self.seconds += dt
        out = sum(m.power_w for m in site.micros.values())
        self.micro_wh += out * dt / _H
        if g < 0:
            self.export_wh -= g * dt / _H
            return
        self.import_wh += g * dt / _H
        if site.battery.soc <= self.stop_soc_pct:
            return
        top = self.max_w if self.cap_w is None else min(self.max_w, self.cap_w)
        room = max(top - out, 0.0)
        self.coverable_wh += min(max(g - self.aim_w, 0.0), room) * dt / _H
