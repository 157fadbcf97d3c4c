"""M1: an energy meter published as ``com.victronenergy.grid`` (+ = import).

One service ``com.victronenergy.grid.venusems_<name>`` per ``[[grid_meter]]``: any device whose
driver implements ``PhaseMeter`` (``driver = "shelly"``, the default: Shelly EM, 3EM (gen1),
Pro 3EM, Pro EM, EM Gen3, 3EM-63 Gen3). Every ``poll_interval_s`` (<= 1 s) one ItemsChanged carries
``/Ac/Power``, per phase ``/Ac/Lx/Power|Voltage|Current|Energy/Forward|Energy/Reverse``,
``/Ac/Energy/Forward|Reverse`` (kWh), ``/Ac/Frequency`` (when the meter measures it) and
``/UpdateIndex``. Channel n is phase L(n+1) unless ``channels`` maps it, and ``invert`` turns a
CT round. A single-phase site publishes only its phase and ``/NrOfPhases`` = 1.

Metering: ``gross`` publishes the meter's per-phase import/export counters summed; ``net``
(saldating) integrates the total power over all phases, so import on L1 and export on L2 in the
same second cancel out. Either way the counters never go backwards (a device counter reset or a
replaced device continues from the published value), not even across a crash or ``kill -9``:
they are kept in ``counter_file`` (default ``<state_dir>/grid_meter_<name>.json``), written
atomically before a value more than 0.01 kWh above the last save is published, at least once
a minute and on shutdown (see ``features.counters``).

A failed poll keeps the last values for ``hold_s``; then ``/Connected`` = 0 and every
measurement is invalid (never 0 W) until the meter answers again, which is tried every poll.
``/ProductId`` is 0xFFFF (not a Victron product, so no model-specific handling applies) and
``/DeviceType`` 0; the VRM instance is allocated for ``venusems_grid_<name>``, so it stays
when the Shelly is replaced. Like a Victron meter, the user may switch the role on the GX
(``/Role``: grid, pvinverter, genset, acload, evcharger, heatpump): the service is then
published again as ``com.victronenergy.<role>.venusems_<name>`` with the same measurements
(power as measured: + = into the load side of the CT), ``/IsGenericEnergyMeter`` = 1 and a
``/Position``; the choice is kept in localsettings.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from ..devices import Device, MeterReading, PhaseMeter
from ..errors import ConfigError
from ..runtime.config import GridMeterConfig
from ..venus import Service
from ..venus.names import GRID
from ..venus.names import service_name as _service_name
from ..venus.specs import METER_ROLES, add_grid_paths, grid_measurements
from .counters import split_energy
from .meter import MeterFeature, Reading

__all__ = ["GridMeter", "build", "service_name"]


def service_name(name: str) -> str:
    """D-Bus service name of the grid meter called ``name``."""
    return _service_name(GRID, f"venusems_{name}")


class GridMeter(MeterFeature):
    """An energy meter (``PhaseMeter``) as the GX's grid meter (feature M1)."""

    service_class: ClassVar[str] = "grid"
    settings_group: ClassVar[str] = "GridMeter"
    product_kind: ClassVar[str] = "energy meter"
    roles: ClassVar[tuple[str, ...]] = METER_ROLES
    config: GridMeterConfig

    def __init__(self, config: GridMeterConfig, *, save_interval_s: float = 60.0) -> None:
        """Prepare the meter; nothing is published until :meth:`run`."""
        super().__init__(config, table="grid_meter", save_interval_s=save_interval_s)
        self.channel_map = tuple(sorted(config.channel_map, key=lambda c: c.phase))
        self.phases = tuple(c.phase for c in self.channel_map)
        self._prev: tuple[float, float] | None = None

    def service_name(self) -> str:
        """``com.victronenergy.grid.venusems_<name>``."""
        return service_name(self.config.name)

    def declare(self, svc: Service) -> None:
        """Grid paths: totals, one block per configured phase, role and refresh time."""
        add_grid_paths(svc, self.phases, refresh_ms=round(self.config.poll_interval_s * 1000))

    def measurement_paths(self) -> list[str]:
        """Everything measured (invalid while the meter is lost)."""
        return grid_measurements(self.phases)

    def _meter(self, device: Device) -> PhaseMeter:
        """The device as a ``PhaseMeter``; ConfigError if it is none (e.g. a plug)."""
        if not isinstance(device, PhaseMeter) or device.channel_count == 0:
            raise ConfigError(
                f"[[grid_meter]] {self.config.name!r}: {device.identity.product_name} at "
                f"{self.config.host} is not an energy meter"
            )
        return device

    def check_device(self, device: Device) -> str:
        """ConfigError unless it is a meter with every mapped channel; returns the source key."""
        have = self._meter(device).channel_count
        for c in self.channel_map:
            if c.channel >= have:
                raise ConfigError(
                    f"[[grid_meter]] {self.config.name!r}: channel {c.channel} ({c.phase}) does "
                    f"not exist on the {device.identity.product_name} ({have} channels)"
                )
        mapping = ",".join(
            f"{c.channel}{c.phase}{'-' if c.invert else '+'}" for c in self.channel_map
        )
        return f"{device.identity.serial}|{mapping}"

    async def read(self, device: Device) -> MeterReading:
        """All channels of the meter."""
        return await self._meter(device).read_phases()

    def on_lost(self) -> None:
        """Forget the power sample: no energy is integrated across an outage."""
        self._prev = None

    def energy_values(self) -> dict[str, float | None]:
        """Totals and per-phase counters as they may be published (kWh)."""
        counters = self.counters
        out = {
            "/Ac/Energy/Forward": counters.published("forward"),
            "/Ac/Energy/Reverse": counters.published("reverse"),
        }
        for p in self.phases:
            out[f"/Ac/{p}/Energy/Forward"] = counters.published(f"{p}/forward")
            out[f"/Ac/{p}/Energy/Reverse"] = counters.published(f"{p}/reverse")
        return out

    def values(self, reading: Reading) -> dict[str, Any]:
        """Map, invert and total one reading; update the counters; path -> value."""
        assert isinstance(reading, MeterReading)
        counters = self.counters
        out: dict[str, Any] = {}
        total_w = 0.0
        raw_fwd: list[float | None] = []
        raw_rev: list[float | None] = []
        added_fwd = added_rev = 0.0
        for c in self.channel_map:
            ch = reading.channels[c.channel]
            if c.invert:
                ch = ch.inverted()
            total_w += ch.power_w
            p = c.phase
            added_fwd += counters.track(f"{p}/forward", ch.energy_forward_kwh)
            added_rev += counters.track(f"{p}/reverse", ch.energy_reverse_kwh)
            raw_fwd.append(ch.energy_forward_kwh)
            raw_rev.append(ch.energy_reverse_kwh)
            out[f"/Ac/{p}/Power"] = ch.power_w
            out[f"/Ac/{p}/Voltage"] = ch.voltage_v
            out[f"/Ac/{p}/Current"] = ch.current_a
        counters.seed("forward", _sum(raw_fwd))
        counters.seed("reverse", _sum(raw_rev))
        if self.config.metering == "gross":
            counters.add("forward", added_fwd)
            counters.add("reverse", added_rev)
        else:
            self._integrate(reading.taken_at, total_w)
        out["/Ac/Power"] = total_w + 0.0
        out["/Ac/Frequency"] = reading.frequency_hz
        return {**out, **self.energy_values()}

    def _integrate(self, taken_at: float, total_w: float) -> None:
        prev, self._prev = self._prev, (taken_at, total_w)
        if prev is None:
            return
        dt = taken_at - prev[0]
        if dt <= 0 or dt > self.config.hold_s + self.config.poll_interval_s:
            return  # a gap: better to miss energy than to invent it
        imported, exported = split_energy(prev[1], total_w, dt)
        self.counters.add("forward", imported)
        self.counters.add("reverse", exported)


def _sum(values: list[float | None]) -> float | None:
    if any(v is None for v in values):
        return None
    return math.fsum(v for v in values if v is not None)


def build(config: GridMeterConfig) -> GridMeter:
    """Registry factory for ``[[grid_meter]]``."""
    return GridMeter(config)
