"""Shelly gen2+ components: ``EM``/``EMData`` (3 phases), ``EM1``/``EM1Data``, ``Switch``, ``PM1``.

Each component answers ``<Type>.GetStatus`` with the object it also contributes to
``Shelly.GetStatus`` under ``<type>:<id>``, read from its protocol object at call time. Units:
W, VA, V, A, Hz; energies in Wh; ``aenergy.by_minute`` in mWh for the last three whole minutes
(index 0 = newest) before ``minute_ts`` (the start of the current minute, unix s).
Signs: ``act_power`` + = forward/import; ``Switch``/``PM1`` ``apower`` is the magnitude on gen2
and signed (+ = consuming, - = fed back) on gen3.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...clock import Clock
from .counters import MinuteEnergy
from .relay import RelayControl
from .shelly_rpc import no_handler, param_bool, param_number
from .sources import MeterSource, SwitchReading, SwitchSource

__all__ = [
    "Component",
    "Em1Component",
    "Em1DataComponent",
    "EmComponent",
    "EmDataComponent",
    "Pm1Component",
    "SwitchComponent",
    "SwitchMetering",
    "check_action",
]


def _r(value: float, digits: int) -> float:
    return round(value, digits) + 0.0


class Component:
    """Base: ``type_name`` (e.g. ``"EM"``), ``id``, ``status()`` and extra ``actions``."""

    type_name = ""
    actions: tuple[str, ...] = ("GetStatus",)

    def __init__(self, cid: int = 0) -> None:
        """Component number ``cid`` (the RPC ``id``, as in ``em:0``)."""
        self.id = cid

    @property
    def key(self) -> str:
        """Key in ``Shelly.GetStatus``, e.g. ``em:0``."""
        return f"{self.type_name.lower()}:{self.id}"

    def status(self) -> dict[str, Any]:
        """The ``GetStatus`` object now."""
        raise NotImplementedError

    def call(self, action: str, params: Mapping[str, Any]) -> Any:
        """Run ``action`` (canonical case); RpcError 404 if the component has no such action."""
        if action == "GetStatus":
            return self.status()
        raise no_handler(f"{self.type_name}.{action}")


class EmComponent(Component):
    """Three-phase ``EM`` (Pro 3EM, 3EM gen3 triphase) over a 3-channel meter."""

    type_name = "EM"

    def __init__(
        self, meter: MeterSource, cid: int = 0, *, neutral_current_a: float | None = None
    ) -> None:
        """``neutral_current_a`` None = no neutral CT (``n_current: null``)."""
        super().__init__(cid)
        if len(meter.read()) != 3:
            raise ValueError("EM needs a meter with 3 channels (phases a, b, c)")
        self.meter = meter
        self.neutral_current_a = neutral_current_a

    def status(self) -> dict[str, Any]:
        """``EM.GetStatus``: per-phase and total A, V, W, VA, pf, Hz."""
        phases = self.meter.read()
        out: dict[str, Any] = {"id": self.id}
        for p, ch in zip("abc", phases, strict=True):
            out[f"{p}_current"] = _r(ch.current_a, 3)
            out[f"{p}_voltage"] = _r(ch.voltage_v, 1)
            out[f"{p}_act_power"] = _r(ch.power_w, 1)
            out[f"{p}_aprt_power"] = _r(ch.apparent_va, 1)
            out[f"{p}_pf"] = _r(ch.power_factor, 2)
            out[f"{p}_freq"] = _r(ch.frequency_hz, 1)
        n = self.neutral_current_a
        out["n_current"] = None if n is None else _r(n, 3)
        out["total_current"] = _r(sum(ch.current_a for ch in phases), 3)
        out["total_act_power"] = _r(sum(ch.power_w for ch in phases), 3)
        out["total_aprt_power"] = _r(sum(ch.apparent_va for ch in phases), 3)
        out["user_calibrated_phase"] = []
        return out


class EmDataComponent(Component):
    """``EMData``: per-phase import/export Wh of a 3-channel meter (totals not netted)."""

    type_name = "EMData"

    def __init__(self, meter: MeterSource, cid: int = 0) -> None:
        """Counters come from the meter's ``energy_forward_wh``/``energy_reverse_wh``."""
        super().__init__(cid)
        self.meter = meter

    def status(self) -> dict[str, Any]:
        """``EMData.GetStatus``: Wh."""
        phases = self.meter.read()
        out: dict[str, Any] = {"id": self.id}
        for p, ch in zip("abc", phases, strict=True):
            out[f"{p}_total_act_energy"] = _r(ch.energy_forward_wh, 2)
            out[f"{p}_total_act_ret_energy"] = _r(ch.energy_reverse_wh, 2)
        out["total_act"] = _r(sum(ch.energy_forward_wh for ch in phases), 2)
        out["total_act_ret"] = _r(sum(ch.energy_reverse_wh for ch in phases), 2)
        return out


class Em1Component(Component):
    """``EM1``: one CT channel of a meter (Pro EM, EM gen3)."""

    type_name = "EM1"

    def __init__(self, meter: MeterSource, channel: int, cid: int | None = None) -> None:
        """Channel ``channel`` of ``meter``; ``cid`` defaults to the channel number."""
        super().__init__(channel if cid is None else cid)
        self.meter = meter
        self.channel = channel

    def status(self) -> dict[str, Any]:
        """``EM1.GetStatus``: A, V, W, VA, pf, Hz."""
        ch = self.meter.read()[self.channel]
        return {
            "id": self.id,
            "current": _r(ch.current_a, 3),
            "voltage": _r(ch.voltage_v, 1),
            "act_power": _r(ch.power_w, 1),
            "aprt_power": _r(ch.apparent_va, 1),
            "pf": _r(ch.power_factor, 2),
            "freq": _r(ch.frequency_hz, 1),
            "calibration": "factory",
        }


class Em1DataComponent(Em1Component):
    """``EM1Data``: import/export Wh of one CT channel."""

    type_name = "EM1Data"

    def status(self) -> dict[str, Any]:
        """``EM1Data.GetStatus``: Wh."""
        ch = self.meter.read()[self.channel]
        return {
            "id": self.id,
            "total_act_energy": _r(ch.energy_forward_wh, 2),
            "total_act_ret_energy": _r(ch.energy_reverse_wh, 2),
        }


@dataclass(frozen=True)
class SwitchMetering:
    """Which metering fields a model reports and whether ``apower`` is signed (gen3)."""

    signed: bool = False
    pf: bool = False
    freq: bool = False
    returned: bool = False
    temperature: bool = True


class _Energy:
    """``aenergy``/``ret_aenergy`` objects from a cumulative Wh counter."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._minutes = MinuteEnergy()

    def obj(self, total_wh: float) -> dict[str, Any]:
        unix = self._clock.now().timestamp()
        self._minutes.sample(unix, total_wh)
        return {
            "total": _r(total_wh, 3),
            "by_minute": [_r(wh * 1000.0, 3) for wh in self._minutes.last_minutes_wh(unix)],
            "minute_ts": self._minutes.minute_ts(unix),
        }


def _metering(
    reading: SwitchReading, metering: SwitchMetering, energy: _Energy, ret: _Energy
) -> dict[str, Any]:
    power = reading.power_w if metering.signed else abs(reading.power_w)
    out: dict[str, Any] = {
        "apower": _r(power, 1),
        "voltage": _r(reading.voltage_v, 1),
        "current": _r(reading.current_a, 3),
    }
    if metering.pf:
        out["pf"] = _r(reading.power_factor, 2)
    if metering.freq:
        out["freq"] = _r(reading.frequency_hz, 1)
    # the device counts |P|, so the total includes returned energy (evcc's finding on gen3)
    out["aenergy"] = energy.obj(reading.energy_wh + reading.returned_energy_wh)
    if metering.returned:
        out["ret_aenergy"] = ret.obj(reading.returned_energy_wh)
    return out


class SwitchComponent(Component):
    """``Switch``: relay with optional metering; ``Set``/``Toggle`` go through ``RelayControl``."""

    type_name = "Switch"
    actions = ("GetStatus", "Set", "Toggle")

    def __init__(
        self,
        relay: RelayControl,
        clock: Clock,
        cid: int = 0,
        *,
        metering: SwitchMetering | None = None,
    ) -> None:
        """``metering`` None = a contactor output without a meter (Pro EM ``switch:0``)."""
        super().__init__(cid)
        self.relay = relay
        self.metering = metering
        self._energy = _Energy(clock)
        self._ret = _Energy(clock)
        self.status()

    def status(self) -> dict[str, Any]:
        """``Switch.GetStatus``."""
        reading = self.relay.switch.read()
        out: dict[str, Any] = {"id": self.id, "source": self.relay.source, "output": reading.output}
        timer = self.relay.timer()
        if timer is not None:
            out["timer_started_at"] = _r(timer[0], 2)
            out["timer_duration"] = _r(timer[1], 2)
        if self.metering is not None:
            out.update(_metering(reading, self.metering, self._energy, self._ret))
            if self.metering.temperature:
                t = reading.temperature_c
                out["temperature"] = {"tC": _r(t, 1), "tF": _r(t * 9 / 5 + 32, 1)}
        return out

    def call(self, action: str, params: Mapping[str, Any]) -> Any:
        """``Set {id, on, toggle_after?}`` / ``Toggle {id}`` → ``{"was_on": bool}``."""
        if action == "Set":
            on = param_bool(params, "on")
            assert on is not None
            after = param_number(params, "toggle_after", required=False, minimum=0.0)
            return {"was_on": self.relay.turn(on, source="HTTP_in", flip_after_s=after)}
        if action == "Toggle":
            on = not self.relay.switch.read().output
            return {"was_on": self.relay.turn(on, source="HTTP_in")}
        return super().call(action, params)


class Pm1Component(Component):
    """``PM1`` (Plus PM Mini, PM Mini gen3): a meter without relay; ignores the source's output."""

    type_name = "PM1"

    def __init__(
        self, source: SwitchSource, clock: Clock, cid: int = 0, *, signed: bool = True
    ) -> None:
        """Reads ``source``; ``signed`` apower on gen3."""
        super().__init__(cid)
        self.source = source
        self._metering = SwitchMetering(signed=signed, freq=True, returned=True, temperature=False)
        self._energy = _Energy(clock)
        self._ret = _Energy(clock)
        self.status()

    def status(self) -> dict[str, Any]:
        """``PM1.GetStatus``: V, A, W, Hz, ``aenergy``, ``ret_aenergy``."""
        reading = self.source.read()
        metered = _metering(reading, self._metering, self._energy, self._ret)
        return {
            "id": self.id,
            "voltage": metered["voltage"],
            "current": metered["current"],
            "apower": metered["apower"],
            "freq": metered["freq"],
            "aenergy": metered["aenergy"],
            "ret_aenergy": metered["ret_aenergy"],
        }


def check_action(component: Component, action: str) -> str:
    """Canonical spelling of ``action`` on ``component``; RpcError 404 if it has none."""
    for known in component.actions:
        if known.lower() == action.lower():
            return known
    raise no_handler(f"{component.type_name}.{action}")
