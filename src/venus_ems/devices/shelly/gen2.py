"""Shelly gen2/gen3/gen4 over RPC: ``EM``/``EMData``, ``EM1``/``EM1Data``, ``Switch``, ``PM1``.

Components are found once in ``Shelly.GetStatus`` (keys ``em:0``, ``em1:N``, ``switch:N``,
``pm1:N``). Units and signs:

* ``EM``: ``<p>_act_power`` W signed (+ = forward, - = export), ``<p>_current`` A unsigned
  (signed here from the power), V, pf, Hz; ``EMData`` per-phase ``total_act_energy`` and
  ``total_act_ret_energy`` **Wh** → kWh (not netted).
* ``EM1``/``EM1Data``: the same per channel (Pro EM, EM gen3, 3EM in monophase profile).
* ``Switch``/``PM1``: ``apower`` W, magnitude on gen2 and signed on gen3+ (+ = the load
  consumes); ``aenergy.total`` Wh counts both directions, ``ret_aenergy.total`` the part fed
  back, so consumed = total - returned; ``aenergy.by_minute`` is **mWh** per whole minute,
  newest first → Wh.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from ...clock import Clock
from ...errors import DeviceProtocolError
from ..base import MeterReading, PhaseReading, PowerReading
from .device import ShellyDevice
from .fields import ShellyInfo, number, obj, optional_number
from .rpc import RpcClient

__all__ = [
    "Gen2Shelly",
    "Inventory",
    "parse_em",
    "parse_em1",
    "parse_meter_status",
    "parse_switch",
]


def _signed(current: float | None, power: float) -> float | None:
    if current is None:
        return None
    return -abs(current) if power < 0 else abs(current)


def _kwh(doc: Mapping[str, Any] | None, key: str, where: str) -> float | None:
    if doc is None:
        return None
    wh = optional_number(doc, key, where)
    return None if wh is None else wh / 1000.0


def parse_em(
    em: Mapping[str, Any], emdata: Mapping[str, Any] | None, taken_at: float
) -> MeterReading:
    """``EM.GetStatus`` (+ ``EMData.GetStatus``) → three channels a, b, c."""
    out = []
    for p in "abc":
        power = number(em, f"{p}_act_power", "EM")
        out.append(
            PhaseReading(
                power_w=power,
                voltage_v=optional_number(em, f"{p}_voltage", "EM"),
                current_a=_signed(optional_number(em, f"{p}_current", "EM"), power),
                power_factor=optional_number(em, f"{p}_pf", "EM"),
                frequency_hz=optional_number(em, f"{p}_freq", "EM"),
                energy_forward_kwh=_kwh(emdata, f"{p}_total_act_energy", "EMData"),
                energy_reverse_kwh=_kwh(emdata, f"{p}_total_act_ret_energy", "EMData"),
            )
        )
    return MeterReading(tuple(out), taken_at)


def parse_em1(em1: Mapping[str, Any], em1data: Mapping[str, Any] | None) -> PhaseReading:
    """``EM1.GetStatus`` (+ ``EM1Data.GetStatus``) → one channel."""
    power = number(em1, "act_power", "EM1")
    return PhaseReading(
        power_w=power,
        voltage_v=optional_number(em1, "voltage", "EM1"),
        current_a=_signed(optional_number(em1, "current", "EM1"), power),
        power_factor=optional_number(em1, "pf", "EM1"),
        frequency_hz=optional_number(em1, "freq", "EM1"),
        energy_forward_kwh=_kwh(em1data, "total_act_energy", "EM1Data"),
        energy_reverse_kwh=_kwh(em1data, "total_act_ret_energy", "EM1Data"),
    )


def _optional_obj(doc: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any] | None:
    return obj(doc, key, where) if doc.get(key) is not None else None


def parse_meter_status(status: Any, channels: int, taken_at: float) -> MeterReading:
    """``Shelly.GetStatus`` of a meter → its channels (``em:0`` or ``em1:0..n-1``)."""
    if not isinstance(status, Mapping):
        raise DeviceProtocolError("Shelly.GetStatus: expected a JSON object")
    if "em:0" in status:
        em = obj(status, "em:0", "Shelly.GetStatus")
        return parse_em(em, _optional_obj(status, "emdata:0", "Shelly.GetStatus"), taken_at)
    out = []
    for i in range(channels):
        em1 = obj(status, f"em1:{i}", "Shelly.GetStatus")
        out.append(parse_em1(em1, _optional_obj(status, f"em1data:{i}", "Shelly.GetStatus")))
    return MeterReading(tuple(out), taken_at)


def parse_switch(doc: Any, *, signed: bool, taken_at: float, where: str = "Switch") -> PowerReading:
    """``Switch.GetStatus`` or ``PM1.GetStatus`` → a power reading (``signed``: gen3+)."""
    if not isinstance(doc, Mapping):
        raise DeviceProtocolError(f"{where}: expected a JSON object")
    power = number(doc, "apower", where)
    energy = _optional_obj(doc, "aenergy", where)
    returned = _optional_obj(doc, "ret_aenergy", where)
    total = None if energy is None else optional_number(energy, "total", f"{where}.aenergy")
    ret = None if returned is None else optional_number(returned, "total", f"{where}.ret_aenergy")
    minutes: tuple[float, ...] = ()
    if energy is not None and isinstance(energy.get("by_minute"), list):
        minutes = tuple(
            number({"m": m}, "m", f"{where}.aenergy.by_minute") / 1000.0
            for m in energy["by_minute"]
        )
    forward = None if total is None else max(total - (ret or 0.0), 0.0) / 1000.0
    output = doc.get("output")
    temperature = _optional_obj(doc, "temperature", where)
    return PowerReading(
        power_w=power,
        taken_at=taken_at,
        signed=signed,
        voltage_v=optional_number(doc, "voltage", where),
        current_a=_signed(optional_number(doc, "current", where), power),
        power_factor=optional_number(doc, "pf", where),
        frequency_hz=optional_number(doc, "freq", where),
        energy_forward_kwh=forward,
        energy_reverse_kwh=None if ret is None else ret / 1000.0,
        last_minutes_wh=minutes,
        output=output if isinstance(output, bool) else None,
        temperature_c=None if temperature is None else optional_number(temperature, "tC", where),
    )


def _ids(status: Mapping[str, Any], kind: str) -> list[int]:
    out = []
    for key in status:
        name, _, num = key.partition(":")
        if name == kind and num.isdigit():
            out.append(int(num))
    return sorted(out)


@dataclass(frozen=True, slots=True)
class Inventory:
    """Components found in ``Shelly.GetStatus``: meter channels, metered outputs, relays."""

    meter_channels: int = 0
    power: tuple[tuple[int, str], ...] = ()
    switches: tuple[int, ...] = ()

    @classmethod
    def of(cls, status: Any) -> Inventory:
        """Inventory of a ``Shelly.GetStatus`` answer; DeviceProtocolError if not an object."""
        if not isinstance(status, Mapping):
            raise DeviceProtocolError("Shelly.GetStatus: expected a JSON object")
        channels = 3 if "em:0" in status else len(_ids(status, "em1"))
        switches = _ids(status, "switch")
        metered = [
            (i, "Switch")
            for i in switches
            if isinstance(status[f"switch:{i}"], Mapping) and "apower" in status[f"switch:{i}"]
        ]
        metered += [(i, "PM1") for i in _ids(status, "pm1")]
        return cls(channels, tuple(sorted(metered)), tuple(switches))


class Gen2Shelly(ShellyDevice):
    """A gen2+ device reached over RPC; ``password`` enables digest auth."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        info: ShellyInfo,
        inventory: Inventory,
        *,
        clock: Clock,
        timeout_s: float,
        password: str | None = None,
    ) -> None:
        """See :class:`ShellyDevice`; ``inventory`` comes from ``Shelly.GetStatus``."""
        super().__init__(session, base_url, info, clock=clock, timeout_s=timeout_s)
        self.inventory = inventory
        self.rpc = RpcClient(session, base_url, timeout_s=timeout_s, password=password)

    @property
    def channel_count(self) -> int:
        """3 for ``EM`` (triphase), else the number of ``EM1`` channels."""
        return self.inventory.meter_channels

    @property
    def power_channels(self) -> tuple[int, ...]:
        """Ids of metered ``Switch`` or ``PM1`` components."""
        return tuple(i for i, _ in self.inventory.power)

    @property
    def outputs(self) -> tuple[int, ...]:
        """Ids of ``Switch`` components."""
        return self.inventory.switches

    async def get_status(self) -> Mapping[str, Any]:
        """``Shelly.GetStatus``: every component under ``type:id``."""
        status = await self.rpc.call("Shelly.GetStatus")
        if not isinstance(status, Mapping):
            raise DeviceProtocolError("Shelly.GetStatus: expected a JSON object")
        return status

    async def read_phases(self) -> MeterReading:
        """All meter channels from one ``Shelly.GetStatus`` (a consistent snapshot)."""
        self._need_meter()
        status = await self.get_status()
        return parse_meter_status(status, self.channel_count, self.clock.monotonic())

    async def read_power(self, channel: int = 0) -> PowerReading:
        """``Switch.GetStatus`` or ``PM1.GetStatus`` of ``channel``."""
        self._need_power(channel)
        kind = dict(self.inventory.power)[channel]
        doc = await self.rpc.call(f"{kind}.GetStatus", {"id": channel})
        signed = self.info.generation >= 3
        return parse_switch(doc, signed=signed, taken_at=self.clock.monotonic(), where=kind)

    async def set_output(self, channel: int, on: bool) -> None:
        """``Switch.Set {id, on}``; DeviceProtocolError if the answer is not ``{was_on}``."""
        self._need_output(channel)
        result = await self.rpc.call("Switch.Set", {"id": channel, "on": on})
        if not isinstance(result, Mapping) or not isinstance(result.get("was_on"), bool):
            raise DeviceProtocolError(f"Switch.Set: unexpected answer {result!r}")

    async def read_output(self, channel: int = 0) -> bool:
        """``Switch.GetStatus`` → ``output``."""
        self._need_output(channel)
        doc = await self.rpc.call("Switch.GetStatus", {"id": channel})
        if not isinstance(doc, Mapping) or not isinstance(doc.get("output"), bool):
            raise DeviceProtocolError(f"Switch.GetStatus: no 'output' in {doc!r}")
        return bool(doc["output"])
