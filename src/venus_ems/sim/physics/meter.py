"""Grid meter: true grid power per phase and a 1 Hz noisy, quantised meter view with counters."""

from __future__ import annotations

import random

from .params import MeterParams

__all__ = ["GridMeter"]

_J_PER_KWH = 3.6e6


class GridMeter:
    """Grid connection point: power per phase W, + = import; the meter view updates periodically."""

    def __init__(self, params: MeterParams, phases: int, rng: random.Random) -> None:
        """Zero power, meter connected, first sample at t = 0."""
        self.params = params
        self.phases = phases
        self._rng = rng
        self.true_w = [0.0] * phases
        self.reading_w = [0.0] * phases
        self.connected = True
        self.sample_time = -1.0
        self._next_sample = 0.0
        self.updated = False
        self.forward_kwh = [0.0] * phases
        self.reverse_kwh = [0.0] * phases
        self.external = False
        self._external_w: list[float] | None = None

    def voltage(self, phase_index: int) -> float:
        """Phase voltage V: nominal, rising with export through the grid impedance."""
        p = self.params
        return p.nominal_voltage_v - p.grid_impedance_v_per_w * self.true_w[phase_index]

    def _quantise(self, watts: float) -> float:
        q = self.params.quantisation_w
        return round(watts / q) * q if q > 0 else watts

    def feed_external(self, readings_w: list[float] | None) -> None:
        """The ESS loop follows another meter from now on: its reading per phase W, None = offline.

        Each call is one new sample: the loop acts on it at the next step (as hub4control reacts
        to the grid meter it was given on D-Bus).
        """
        if readings_w is not None and len(readings_w) != self.phases:
            raise ValueError(f"external meter needs {self.phases} phases, got {len(readings_w)}")
        self.external = True
        self._external_w = None if readings_w is None else [float(w) for w in readings_w]
        self.updated = True

    def step(self, now: float, dt: float, true_w: list[float]) -> None:
        """Record the true power of this step; take a meter sample when one is due."""
        if self.external:
            self._step_counters(now, dt, true_w)
            self.updated = False
            return
        self._step_counters(now, dt, true_w)
        self._sample(now, true_w)

    def _step_counters(self, now: float, dt: float, true_w: list[float]) -> None:
        self.true_w = true_w
        for i, w in enumerate(true_w):
            if w >= 0:
                self.forward_kwh[i] += w * dt / _J_PER_KWH
            else:
                self.reverse_kwh[i] -= w * dt / _J_PER_KWH

    def _sample(self, now: float, true_w: list[float]) -> None:
        self.updated = now + 1e-9 >= self._next_sample
        if self.updated:
            noise = self.params.noise_w
            gauss = self._rng.gauss
            self.reading_w = [
                self._quantise(w + (gauss(0.0, noise) if noise else 0.0)) for w in true_w
            ]
            self.sample_time = now
            period = self.params.update_period_s
            while self._next_sample <= now + 1e-9:
                self._next_sample += period

    def reading(self) -> list[float] | None:
        """What the ESS loop sees per phase W (held between samples); None when there is none."""
        if self.external:
            return None if self._external_w is None else list(self._external_w)
        return list(self.reading_w) if self.connected else None
