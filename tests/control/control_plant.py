"""A tiny ESS plant for closed-loop tests: dead time + first-order lag + meter noise.

Per phase: AC-in-side load ``acin_load_w`` (+ = consuming; negative = PV on the grid side),
AC-out load ``out_load_w``, and the Multi's conversion ``conv_w`` (+ = charging). Then
``ac_in = out_load + conv`` and ``grid = ac_in + acin_load``; battery power = Σconv + dc_pv.

* mode 3: the setpoint in force is the AC-in power per phase; conv chases ``u_p - out_p``.
* hub4 override: the setpoint in force is the grid target; a hub4control stand-in chases it,
  respecting CCL/DCL/SoC floor like the real one (so the plant never breaks battery limits
  by itself in override mode; in mode 3 it does exactly what it is told, so tests can check
  that the core never asks for too much).

Commands take effect ``dead_time_s`` after being sent; the conversion then moves toward its
target with time constant ``tau_s``. The grid meter samples every ``meter_interval_s`` with
uniform noise ``±noise_w`` (seeded).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from venus_ems.control.commands import Command, SetGridSetpoint, SetPhaseSetpoints
from venus_ems.control.ess import EssMethod
from venus_ems.control.inputs import BatterySample, EssInputs, GridSample, MultiSample


@dataclass
class Plant:
    method: EssMethod = EssMethod.MODE3
    phases: int = 1
    dead_time_s: float = 1.0
    tau_s: float = 0.5
    meter_interval_s: float = 1.0
    noise_w: float = 0.0
    seed: int = 1
    acin_load_w: list[float] = field(default_factory=lambda: [0.0])
    out_load_w: list[float] = field(default_factory=lambda: [0.0])
    dc_pv_w: float = 0.0
    voltage_v: float = 50.0
    ccl_a: float = 100.0
    dcl_a: float = 100.0
    allow_charge: bool = True
    allow_discharge: bool = True
    soc_pct: float = 50.0
    soc_floor_pct: float = 10.0
    capacity_wh: float = 1e9
    max_feed_in_w: float | None = None
    t: float = 0.0
    conv_w: list[float] = field(default_factory=list)
    setpoint: tuple[float, ...] | None = None
    queue: list[tuple[float, tuple[float, ...]]] = field(default_factory=list)
    grid_sample: GridSample | None = None
    next_sample_at: float = 0.0
    commands: list[tuple[float, Command]] = field(default_factory=list)
    grid_log: list[tuple[float, float]] = field(default_factory=list)
    battery_log: list[tuple[float, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        if not self.conv_w:
            self.conv_w = [0.0] * self.phases
        if self.method is EssMethod.HUB4_OVERRIDE and self.setpoint is None:
            self.setpoint = (0.0,)

    # -- what the plant shows -------------------------------------------------------------
    @property
    def ac_in_w(self) -> list[float]:
        return [o + c for o, c in zip(self.out_load_w, self.conv_w, strict=True)]

    @property
    def grid_w(self) -> list[float]:
        return [i + a for i, a in zip(self.ac_in_w, self.acin_load_w, strict=True)]

    @property
    def grid_total_w(self) -> float:
        return sum(self.grid_w)

    @property
    def battery_w(self) -> float:
        return sum(self.conv_w) + self.dc_pv_w

    def battery_floor_blocked(self) -> bool:
        return self.soc_pct <= self.soc_floor_pct

    # -- commands -------------------------------------------------------------------------
    def command(self, cmd: Command) -> None:
        self.commands.append((self.t, cmd))
        if isinstance(cmd, SetGridSetpoint):
            value: tuple[float, ...] = (cmd.total_w,)
        elif isinstance(cmd, SetPhaseSetpoints):
            value = cmd.phases_w
        else:
            raise TypeError(cmd)
        self.queue.append((self.t + self.dead_time_s, value))

    # -- physics --------------------------------------------------------------------------
    def _targets(self) -> list[float]:
        n = self.phases
        if self.setpoint is None:
            return [0.0] * n
        if self.method is EssMethod.MODE3:
            return [u - o for u, o in zip(self.setpoint, self.out_load_w, strict=True)]
        # hub4control stand-in: make the grid total equal the setpoint within battery limits.
        want = self.setpoint[0] - sum(self.acin_load_w) - sum(self.out_load_w)
        chg = self.ccl_a * self.voltage_v if self.allow_charge else 0.0
        dis = self.dcl_a * self.voltage_v
        if not self.allow_discharge or self.battery_floor_blocked():
            dis = 0.0
        want = min(max(want, -dis - self.dc_pv_w), chg - self.dc_pv_w)
        return [want / n] * n

    def step(self, dt: float) -> None:
        self.t += dt
        while self.queue and self.queue[0][0] <= self.t + 1e-9:
            self.setpoint = self.queue.pop(0)[1]
        alpha = 1.0 - math.exp(-dt / self.tau_s) if self.tau_s > 0 else 1.0
        self.conv_w = [
            c + alpha * (w - c) for c, w in zip(self.conv_w, self._targets(), strict=True)
        ]
        self.soc_pct += self.battery_w * dt / 3600 / self.capacity_wh * 100
        self.soc_pct = min(max(self.soc_pct, 0.0), 100.0)
        if self.t + 1e-9 >= self.next_sample_at:
            noisy = tuple(
                g + self.rng.uniform(-self.noise_w, self.noise_w) / self.phases for g in self.grid_w
            )
            self.grid_sample = GridSample(noisy, self.t)
            self.next_sample_at = self.t + self.meter_interval_s
        self.grid_log.append((self.t, self.grid_total_w))
        self.battery_log.append((self.t, self.battery_w))

    def inputs(self) -> EssInputs:
        battery = BatterySample(
            measured_at=self.t,
            soc_pct=self.soc_pct,
            voltage_v=self.voltage_v,
            power_w=self.battery_w,
            ccl_a=self.ccl_a,
            dcl_a=self.dcl_a,
            allow_charge=self.allow_charge,
            allow_discharge=self.allow_discharge,
            active_soc_limit_pct=self.soc_floor_pct,
        )
        multi = MultiSample(self.t, tuple(self.ac_in_w), tuple(self.out_load_w))
        return EssInputs(self.grid_sample, battery, multi, self.max_feed_in_w)


def run(plant: Plant, decide, state, settings, seconds: float, dt: float = 0.5, on_step=None):
    """Step the plant and the core together; returns the final state and the decisions."""
    decisions = []
    for _ in range(round(seconds / dt)):
        plant.step(dt)
        if on_step is not None:
            on_step(plant)
        decision = decide(plant.inputs(), state, settings, plant.t)
        for cmd in decision.commands:
            plant.command(cmd)
        decisions.append((plant.t, decision))
        state = decision.next_state
    return state, decisions
