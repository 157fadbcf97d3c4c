"""A tiny plant for the micro-inverter core: inverters with ack and dead time, a house load.

Each inverter acknowledges a limit ``ack_s`` after it was commanded (the writer then reports it
confirmed) and produces it ``dead_s`` after (no ramp). The grid is the load minus the
inverters' output; the DTU reports each inverter's output every ``poll_s``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from venus_ems.control import BatterySample, GridSample
from venus_ems.control.commands import RestartInverter, SetInverterLimit
from venus_ems.control.micro import decide
from venus_ems.control.micro_model import (
    InverterSample,
    InverterSettings,
    MicroInputs,
    MicroSettings,
    MicroState,
)


@dataclass
class PlantInverter:
    cfg: InverterSettings
    ack_s: float
    dead_s: float
    output_w: float = 0.0
    limit_pct: float = 100.0  # what the DTU reports (acknowledged)
    confirmed: tuple[int, float] | None = None
    pending: list[list[float]] = field(default_factory=list)  # [ack_at, apply_at, %, acked]
    polled: tuple[float, float] = (0.0, 0.0)
    reachable: bool = True
    refuse: bool = False
    failures: int = 0

    def command(self, pct: int, now: float) -> None:
        self.pending.append([now + self.ack_s, now + self.dead_s, pct, 0])

    def step(self, now: float, poll_s: float) -> None:
        for cmd in list(self.pending):
            ack_at, apply_at, pct, acked = cmd
            if not acked and now >= ack_at:
                if self.refuse or not self.reachable:
                    self.failures += 1
                    self.pending.remove(cmd)
                    continue
                cmd[3] = 1
                self.limit_pct = pct
                self.confirmed = (int(pct), now)
                self.failures = 0
            if cmd[3] and now >= apply_at:
                self.output_w = self.cfg.watts(pct)
                self.pending.remove(cmd)
        if (now - self.polled[0] >= poll_s or self.polled[0] == 0.0) and self.reachable:
            self.polled = (now, self.output_w)

    def sample(self) -> InverterSample:
        at, ac = self.polled
        return InverterSample(
            serial=self.cfg.serial,
            reachable=self.reachable,
            data_at=at,
            ac_power_w=ac,
            dc_power_w=ac / 0.95,
            limit_pct=self.limit_pct,
            limit_state="Ok",
            confirmed_pct=None if self.confirmed is None else self.confirmed[0],
            confirmed_at=None if self.confirmed is None else self.confirmed[1],
            write_failures=self.failures,
        )


@dataclass
class Plant:
    settings: MicroSettings
    load_w: float = 300.0
    soc: float = 60.0
    poll_s: float = 5.0
    now: float = 0.0
    state: MicroState = field(default_factory=MicroState)
    log: list[tuple[float, str, float]] = field(default_factory=list)
    restarts: list[str] = field(default_factory=list)
    invs: dict[str, PlantInverter] = field(default_factory=dict)

    @classmethod
    def of(cls, settings: MicroSettings, dead: dict[str, float], **kw: object) -> Plant:
        plant = cls(settings, **kw)  # type: ignore[arg-type]
        for cfg in settings.inverters:
            d = dead[cfg.serial]
            plant.invs[cfg.serial] = PlantInverter(cfg, ack_s=min(2.0, d), dead_s=d)
        return plant

    @property
    def grid_w(self) -> float:
        return self.load_w - sum(i.output_w for i in self.invs.values())

    def inputs(self) -> MicroInputs:
        return MicroInputs(
            grid=GridSample((self.grid_w,), self.now),
            battery=BatterySample(self.now, soc_pct=self.soc, voltage_v=52.0, power_w=0.0),
            inverters=tuple(i.sample() for i in self.invs.values()),
            dtu_at=self.now,
        )

    def run(self, seconds: int) -> None:
        for _ in range(seconds):
            self.now += 1.0
            for inv in self.invs.values():
                inv.step(self.now, self.poll_s)
            decision = decide(self.inputs(), self.state, self.settings, self.now)
            self.state = decision.next_state
            for cmd in decision.commands:
                if isinstance(cmd, SetInverterLimit):
                    inv = self.invs[cmd.serial]
                    pct = round(cmd.w / inv.cfg.step_w)
                    inv.command(pct, self.now)
                    self.log.append((self.now, cmd.serial, cmd.w))
                elif isinstance(cmd, RestartInverter):
                    self.restarts.append(cmd.serial)
