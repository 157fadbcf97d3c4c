"""The micro-inverters behind an emulated OpenDTU: a protocol and an in-memory bank with dead time.

The OpenDTU emulator only reads ``InverterBank.inverters()`` and forwards commands, so the site
physics can implement the protocol itself, or drive a ``MemoryInverterBank`` by setting the DC
power each inverter could take (``set_available_dc``) and reading back what it feeds
(``ac_power_w``/``dc_power_w``). AC power is + when producing.

Dead time: a limit command is acknowledged (status ``Pending`` → ``Ok``, the DTU then reports
the new limit) ``ack_s`` after it was received and takes effect ``dead_time_s`` after it was
received (both per inverter, default: the bank's dead time for both), like a DTU that sends it
with its next poll round; an inverter that is unreachable (radio loss) or refuses limits (fault
knob ``set_refuse_limits``) reports ``Failure`` and keeps its old setting.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol, runtime_checkable

from ...clock import Clock, RealClock

__all__ = [
    "AcValues",
    "CommandStatus",
    "DcValues",
    "InverterBank",
    "InverterCommand",
    "InverterSpec",
    "InverterStatus",
    "MemoryInverterBank",
]

CommandStatus = Literal["Ok", "Pending", "Failure", "Unknown"]


@dataclass(frozen=True)
class AcValues:
    """AC side: W (+ = producing), V, A, Hz, power factor, var."""

    power_w: float = 0.0
    voltage_v: float = 230.0
    current_a: float = 0.0
    frequency_hz: float = 50.0
    power_factor: float = 1.0
    reactive_var: float = 0.0


@dataclass(frozen=True)
class DcValues:
    """One DC input: name, W, V, A, today's Wh, lifetime kWh, panel peak Wp (optional)."""

    name: str = ""
    power_w: float = 0.0
    voltage_v: float = 0.0
    current_a: float = 0.0
    yield_day_wh: float = 0.0
    yield_total_kwh: float = 0.0
    peak_wp: float | None = None

    @property
    def irradiation_pct(self) -> float | None:
        """Power as % of the configured panel peak, or None when no peak is configured."""
        if self.peak_wp is None or self.peak_wp <= 0:
            return None
        return 100.0 * self.power_w / self.peak_wp


@dataclass(frozen=True)
class InverterStatus:
    """What the DTU knows of one inverter; ``max_power_w`` 0 means not yet read from the device."""

    serial: str
    name: str
    order: int = 0
    poll_enabled: bool = True
    reachable: bool = True
    producing: bool = False
    data_age_s: float = 0.0
    max_power_w: float = 0.0
    limit_relative_pct: float = 100.0
    limit_set_status: CommandStatus = "Ok"
    power_set_status: CommandStatus = "Unknown"
    ac: AcValues = field(default_factory=AcValues)
    dc: tuple[DcValues, ...] = ()
    power_dc_w: float = 0.0
    yield_day_wh: float = 0.0
    yield_total_kwh: float = 0.0
    temperature_c: float = 25.0
    efficiency_pct: float = 0.0
    events: int = -1

    @property
    def limit_absolute_w(self) -> float:
        """The limit in W, or -1 while the maximum power is unknown (as OpenDTU reports it)."""
        if self.max_power_w <= 0:
            return -1.0
        return self.limit_relative_pct * self.max_power_w / 100.0


@dataclass(frozen=True)
class InverterCommand:
    """A command as received: kind, value (W or %), flags, and clock time of receipt (s)."""

    serial: str
    kind: Literal["limit", "power", "restart"]
    value: float = 0.0
    relative: bool = False
    persistent: bool = False
    on: bool = True
    received_at: float = 0.0


@runtime_checkable
class InverterBank(Protocol):
    """Inverters reachable through one DTU; commands raise KeyError for an unknown serial."""

    def inverters(self) -> Sequence[InverterStatus]:
        """Status of every configured inverter, in configuration order."""
        ...

    def command_limit(self, serial: str, value: float, *, relative: bool, persistent: bool) -> None:
        """Queue a power limit: ``value`` in % if ``relative`` else W."""
        ...

    def command_power(self, serial: str, on: bool) -> None:
        """Queue switching the inverter's output on or off."""
        ...

    def command_restart(self, serial: str) -> None:
        """Queue a restart (the non-persistent limit falls back to the persistent one)."""
        ...


@dataclass(frozen=True)
class InverterSpec:
    """Configuration of one in-memory inverter (rated W, DC inputs, efficiency 0..1)."""

    serial: str
    name: str = "HM-800"
    max_power_w: float = 800.0
    dc_inputs: int = 2
    efficiency: float = 0.96
    dc_voltage_v: float = 48.0
    report_max_power: bool = True
    events: int = 0
    peak_wp: float | None = None
    dead_time_s: float | None = None
    ack_s: float | None = None


@dataclass
class _State:
    spec: InverterSpec
    order: int
    available_dc_w: float = 0.0
    on: bool = True
    limit_pct: float = 100.0
    reported_pct: float = 100.0
    persistent_pct: float = 100.0
    limit_status: CommandStatus = "Ok"
    power_status: CommandStatus = "Unknown"
    refuse_limits: bool = False
    pending: list[tuple[float, InverterCommand]] = field(default_factory=list)
    acks: list[tuple[float, InverterCommand]] = field(default_factory=list)
    yield_total_wh: float = 0.0
    yield_day_wh: float = 0.0
    day: str = ""
    t: float = 0.0
    temperature_c: float = 25.0
    frozen: InverterStatus | None = None
    last_poll: float = 0.0


class MemoryInverterBank:
    """In-memory inverters with limits, on/off, restart, dead time, energy and reachability."""

    def __init__(
        self,
        specs: Sequence[InverterSpec],
        *,
        clock: Clock | None = None,
        dead_time_s: float = 5.0,
        poll_interval_s: float = 5.0,
        ac_voltage_v: float = 230.0,
        frequency_hz: float = 50.0,
    ) -> None:
        """One state per spec; ValueError on duplicate serials or non-positive timings."""
        serials = [s.serial for s in specs]
        if len(set(serials)) != len(serials):
            raise ValueError(f"duplicate inverter serials in {serials}")
        if dead_time_s < 0 or poll_interval_s <= 0:
            raise ValueError("dead_time_s must be >= 0 and poll_interval_s > 0")
        self._clock = clock if clock is not None else RealClock()
        self.dead_time_s = dead_time_s
        self.poll_interval_s = poll_interval_s
        self.ac_voltage_v = ac_voltage_v
        self.frequency_hz = frequency_hz
        now = self._clock.monotonic()
        self._t0 = now
        self._states = {s.serial: _State(spec=s, order=i, t=now) for i, s in enumerate(specs)}
        self.commands: deque[InverterCommand] = deque(maxlen=1000)

    # --- physics side -------------------------------------------------------------------------

    def _get(self, serial: str) -> _State:
        try:
            state = self._states[serial]
        except KeyError:
            raise KeyError(f"no inverter with serial {serial!r}") from None
        self._advance(state)
        return state

    def set_available_dc(self, serial: str, power_w: float) -> None:
        """DC power the inverter could draw right now (battery or panels), W >= 0."""
        state = self._get(serial)
        state.available_dc_w = max(power_w, 0.0)

    def set_refuse_limits(self, serial: str, refuse: bool) -> None:
        """Fault knob: limit commands to this inverter end in ``Failure`` and change nothing."""
        self._get(serial).refuse_limits = refuse

    def set_temperature(self, serial: str, temperature_c: float) -> None:
        """Set the reported inverter temperature, degC."""
        self._get(serial).temperature_c = temperature_c

    def set_reachable(self, serial: str, reachable: bool) -> None:
        """Radio link up or down; while down the DTU shows the last values with a growing age."""
        state = self._get(serial)
        if not reachable and state.frozen is None:
            state.last_poll = self._last_poll(self._clock.monotonic())
            state.frozen = self._status(state)
        elif reachable:
            state.frozen = None

    def ac_power_w(self, serial: str) -> float:
        """AC power the inverter feeds now, W (+ = producing)."""
        return self._ac_power(self._get(serial))

    def dc_power_w(self, serial: str) -> float:
        """DC power the inverter draws now, W (+ = drawn from the DC side)."""
        state = self._get(serial)
        return self._ac_power(state) / state.spec.efficiency

    def total_ac_power_w(self) -> float:
        """Sum of ``ac_power_w`` over all inverters."""
        return sum(self.ac_power_w(s) for s in self._states)

    def total_dc_power_w(self) -> float:
        """Sum of ``dc_power_w`` over all inverters."""
        return sum(self.dc_power_w(s) for s in self._states)

    # --- InverterBank -------------------------------------------------------------------------

    def inverters(self) -> list[InverterStatus]:
        """Status of every inverter as the DTU reports it now."""
        out = []
        now = self._clock.monotonic()
        for state in self._states.values():
            self._advance(state)
            if state.frozen is not None:
                age = now - state.last_poll
                out.append(
                    replace(
                        state.frozen,
                        reachable=False,
                        data_age_s=age,
                        limit_set_status=state.limit_status,
                        power_set_status=state.power_status,
                    )
                )
            else:
                out.append(self._status(state))
        return out

    def command_limit(self, serial: str, value: float, *, relative: bool, persistent: bool) -> None:
        """Queue a limit in % (``relative``) or W (after the dead time); KeyError if unknown."""
        self._queue(
            serial,
            InverterCommand(serial, "limit", value=value, relative=relative, persistent=persistent),
        )

    def command_power(self, serial: str, on: bool) -> None:
        """Queue output on/off; applied after the dead time; KeyError if unknown."""
        self._queue(serial, InverterCommand(serial, "power", on=on))

    def command_restart(self, serial: str) -> None:
        """Queue a restart; applied after the dead time; KeyError if unknown."""
        self._queue(serial, InverterCommand(serial, "restart"))

    # --- internals ----------------------------------------------------------------------------

    def _queue(self, serial: str, command: InverterCommand) -> None:
        state = self._get(serial)
        now = self._clock.monotonic()
        command = replace(command, received_at=now)
        self.commands.append(command)
        dead = self.dead_time_s if state.spec.dead_time_s is None else state.spec.dead_time_s
        if command.kind == "limit":
            state.limit_status = "Pending"
            ack = dead if state.spec.ack_s is None else min(state.spec.ack_s, dead)
            state.acks.append((now + ack, command))
        else:
            state.power_status = "Pending"
        state.pending.append((now + dead, command))
        state.pending.sort(key=lambda item: item[0])

    def _last_poll(self, now: float) -> float:
        n = math.floor((now - self._t0) / self.poll_interval_s)
        return self._t0 + n * self.poll_interval_s

    def _ac_power(self, state: _State) -> float:
        if not state.on:
            return 0.0
        spec = state.spec
        limit_w = max(min(state.limit_pct, 100.0), 0.0) * spec.max_power_w / 100.0
        return max(min(state.available_dc_w * spec.efficiency, limit_w), 0.0)

    def _integrate(self, state: _State, until: float) -> None:
        dt_h = max(until - state.t, 0.0) / 3600.0
        energy = self._ac_power(state) * dt_h
        day = self._clock.now().date().isoformat()
        if day != state.day:
            state.day, state.yield_day_wh = day, 0.0
        state.yield_total_wh += energy
        state.yield_day_wh += energy
        state.t = max(until, state.t)

    def _advance(self, state: _State) -> None:
        now = self._clock.monotonic()
        while True:
            ack = state.acks[0][0] if state.acks else math.inf
            due = state.pending[0][0] if state.pending else math.inf
            if min(ack, due) > now:
                break
            if ack <= due:
                _, command = state.acks.pop(0)
                self._ack(state, command)
            else:
                _, command = state.pending.pop(0)
                self._integrate(state, due)
                self._apply(state, command)
        self._integrate(state, now)

    @staticmethod
    def _pct(state: _State, command: InverterCommand) -> float:
        pct = command.value
        if not command.relative:
            pct = 100.0 * command.value / state.spec.max_power_w
        return max(min(pct, 100.0), 0.0)

    def _ack(self, state: _State, command: InverterCommand) -> None:
        if state.frozen is not None or state.refuse_limits:
            state.limit_status = "Failure"
            state.pending = [(t, c) for t, c in state.pending if c is not command]
            return
        state.limit_status = "Ok"
        state.reported_pct = self._pct(state, command)

    def _apply(self, state: _State, command: InverterCommand) -> None:
        if command.kind == "limit":  # acknowledged already (a refused one never gets here)
            pct = self._pct(state, command)
            state.limit_pct = pct
            if command.persistent:
                state.persistent_pct = pct
            return
        status: CommandStatus = "Failure" if state.frozen is not None else "Ok"
        state.power_status = status
        if status == "Failure":
            return
        if command.kind == "power":
            state.on = command.on
        else:
            state.on = True
            state.limit_pct = state.reported_pct = state.persistent_pct

    def _status(self, state: _State) -> InverterStatus:
        spec = state.spec
        ac_w = self._ac_power(state)
        dc_w = ac_w / spec.efficiency if ac_w > 0 else 0.0
        inputs = max(spec.dc_inputs, 1)
        volts = spec.dc_voltage_v if state.available_dc_w > 0 else 0.0
        per_input = dc_w / inputs
        dc = tuple(
            DcValues(
                name="",
                power_w=per_input,
                voltage_v=volts,
                current_a=per_input / volts if volts > 0 else 0.0,
                yield_day_wh=state.yield_day_wh / spec.efficiency / inputs,
                yield_total_kwh=state.yield_total_wh / spec.efficiency / inputs / 1000.0,
                peak_wp=spec.peak_wp,
            )
            for _ in range(inputs)
        )
        now = self._clock.monotonic()
        return InverterStatus(
            serial=spec.serial,
            name=spec.name,
            order=state.order,
            reachable=True,
            producing=ac_w > 0,
            data_age_s=now - self._last_poll(now),
            max_power_w=spec.max_power_w if spec.report_max_power else 0.0,
            limit_relative_pct=state.reported_pct,
            limit_set_status=state.limit_status,
            power_set_status=state.power_status,
            ac=AcValues(
                power_w=ac_w,
                voltage_v=self.ac_voltage_v,
                current_a=ac_w / self.ac_voltage_v if self.ac_voltage_v > 0 else 0.0,
                frequency_hz=self.frequency_hz,
            ),
            dc=dc,
            power_dc_w=dc_w,
            yield_day_wh=state.yield_day_wh,
            yield_total_kwh=state.yield_total_wh / 1000.0,
            temperature_c=state.temperature_c,
            efficiency_pct=100.0 * ac_w / dc_w if dc_w > 0 else 0.0,
            events=spec.events,
        )
