"""Device emulators wired to the physics: a meter that measures the site, a DTU for its inverters.

``SiteGridMeter`` is a :class:`~venus_ems.sim.devices.MeterSource` reading the true grid power
of the simulated site per phase (+ = import), with the site's voltages and energy counters.
``SiteInverterBank`` is an :class:`~venus_ems.sim.devices.inverters.InverterBank` over the
site's battery-fed micro-inverters: commands go into the physics, which acknowledges them and
applies them after each inverter's dead time and ramp; readings are those of the DTU's last poll
of each inverter. ``SiteHeaterPlant`` is the Heizstab emulator's
:class:`~venus_ems.sim.devices.heizstab_firmware.HeaterPlant`: its SSRs switch the site's tank
rod (an AC-out load in the energy balance) and its sensor reads the tank.
``SiteWallbox`` is a :class:`~venus_ems.sim.devices.wallbox.Wallbox`
over the site's EV charger, for the Wattpilot emulator: commands go into the physics.
``SiteRelay`` is a :class:`~venus_ems.sim.devices.SwitchSource` over one of the site's relay
loads, for a Shelly emulator: switching it changes the site's energy balance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from ..errors import ConfigError
from .devices.inverters import AcValues, CommandStatus, DcValues, InverterStatus
from .devices.sources import PhaseReading, SwitchReading
from .devices.wallbox import WallboxState, charger_state
from .physics import MicroInverterState, Site
from .physics.ev import EvCharger

__all__ = ["SiteGridMeter", "SiteHeaterPlant", "SiteInverterBank", "SiteRelay", "SiteWallbox"]


class SiteGridMeter:
    """The site's grid connection as a CT meter sees it, one channel per phase."""

    def __init__(self, site: Site, *, channels: int | None = None) -> None:
        """Read ``site`` at every request; channels beyond its phases have no load (0 W)."""
        self.site = site
        self.channels = max(channels or site.phases, site.phases)

    def read(self) -> Sequence[PhaseReading]:
        """One reading per phase: W (+ = import), V, A, Hz and Wh counters."""
        m = self.site.meter
        hz = self.site.params.meter.frequency_hz
        readings = [
            PhaseReading.of(
                m.true_w[i],
                voltage_v=m.voltage(i),
                frequency_hz=hz,
                energy_forward_wh=m.forward_kwh[i] * 1000.0,
                energy_reverse_wh=m.reverse_kwh[i] * 1000.0,
            )
            for i in range(self.site.phases)
        ]
        spare = PhaseReading.of(0.0, voltage_v=m.voltage(0), frequency_hz=hz)
        return readings + [spare] * (self.channels - len(readings))


class SiteInverterBank:
    """The site's micro-inverters as one OpenDTU sees them.

    Like the DTU, it polls every inverter once per ``poll_interval_s`` (staggered), so AC/DC
    values and ``data_age`` are those of the last poll; an unreachable inverter keeps the
    values of its last good poll while its data age grows (radio loss). Limits and command
    states are the DTU's own and shown at once.
    """

    def __init__(self, site: Site, *, poll_interval_s: float = 5.0) -> None:
        """Commands and readings go through ``site``; ValueError for a non-positive interval."""
        if poll_interval_s <= 0:
            raise ValueError("poll_interval_s must be > 0")
        self.site = site
        self.poll_interval_s = poll_interval_s
        self._polled: dict[str, tuple[float, MicroInverterState]] = {}

    def _last_poll(self, order: int, count: int) -> float:
        offset = self.poll_interval_s * order / max(count, 1)
        t = self.site.time - offset
        return math.floor(t / self.poll_interval_s) * self.poll_interval_s + offset

    def inverters(self) -> Sequence[InverterStatus]:
        """Status of every micro-inverter, in configuration order."""
        out = []
        states = self.site.state().micro_inverters
        for order, live in enumerate(states):
            poll = self._last_poll(order, len(states))
            held = self._polled.get(live.serial)
            if held is None or (live.reachable and held[0] < poll):
                held = (poll, live)
                self._polled[live.serial] = held
            polled_at, mi = held
            out.append(
                InverterStatus(
                    serial=mi.serial,
                    name=mi.name,
                    order=order,
                    reachable=live.reachable,
                    producing=mi.producing,
                    data_age_s=max(self.site.time - polled_at, 0.0),
                    max_power_w=mi.max_power_w,
                    limit_relative_pct=live.limit_relative_pct,
                    limit_set_status=_status(live.limit_set_status),
                    power_set_status=_status(live.power_set_status),
                    ac=AcValues(
                        power_w=mi.ac_power_w,
                        voltage_v=mi.ac_voltage_v,
                        current_a=mi.ac_current_a,
                        frequency_hz=mi.ac_frequency_hz,
                    ),
                    dc=(
                        DcValues(
                            name="Battery",
                            power_w=mi.dc_power_w,
                            voltage_v=mi.dc_voltage_v,
                            current_a=mi.dc_current_a,
                        ),
                    ),
                    power_dc_w=mi.dc_power_w,
                    yield_day_wh=mi.yield_day_wh,
                    yield_total_kwh=mi.yield_total_kwh,
                    temperature_c=mi.temperature_c,
                    efficiency_pct=mi.efficiency_pct,
                    events=0,
                )
            )
        return out

    def command_limit(self, serial: str, value: float, *, relative: bool, persistent: bool) -> None:
        """Queue a limit in % or W; KeyError for an unknown serial, ValueError if out of range."""
        self._check(serial)
        self.site.set_micro_limit(serial, value, relative=relative)

    def command_power(self, serial: str, on: bool) -> None:
        """Queue switching the inverter on or off; KeyError for an unknown serial."""
        self._check(serial)
        self.site.set_micro_power(serial, on)

    def command_restart(self, serial: str) -> None:
        """Queue a restart (off, then back at its persistent limit); KeyError if unknown."""
        self._check(serial)
        self.site.restart_micro(serial)

    def _check(self, serial: str) -> None:
        if serial not in self.site.micros:
            raise KeyError(serial)


class SiteHeaterPlant:
    """The site's hot-water tank as the heating-rod controller is wired to it."""

    def __init__(self, site: Site) -> None:
        """ConfigError if ``site`` has no tank (see ``scenarios.with_modbus_heater``)."""
        if site.tank is None:
            raise ConfigError("this site has no tank for a Modbus heater")
        self.tank = site.tank

    def water_temperature_c(self) -> float:
        """The tank temperature, °C."""
        return self.tank.temperature_c

    def set_elements(self, on: Sequence[bool]) -> None:
        """The SSRs switch the rod's stages."""
        self.tank.set_elements(on)


class SiteRelay:
    """A relay load of the site (``SiteParams.relays``) as the Shelly in front of it sees it."""

    def __init__(self, site: Site, name: str) -> None:
        """ValueError when the site has no relay ``name``."""
        if name not in site.relays:
            raise ValueError(f"this site has no relay named {name!r}")
        self.site = site
        self.relay = site.relays[name]
        self.name = name

    def read(self) -> SwitchReading:
        """On/off and the power it draws now (W, what the physics last stepped)."""
        r = self.relay
        on = r.on
        power = r.params.power_w if on else 0.0
        return SwitchReading(
            output=on,
            power_w=power,
            current_a=power / 230.0,
            energy_wh=r.energy_kwh * 1000.0,
        )

    def set_output(self, on: bool) -> None:
        """Switch the load (from the next physics step)."""
        self.site.set_relay(self.name, on)


class SiteWallbox:
    """The site's EV charger as the Wattpilot emulator drives it (stepped by the GX)."""

    def __init__(self, site: Site) -> None:
        """Commands and readings go through ``site``; ValueError if it has no EV charger."""
        if site.ev is None:
            raise ValueError("this site has no EV charger")
        self.site = site

    @property
    def ev(self) -> EvCharger:
        """The physics charger."""
        assert self.site.ev is not None
        return self.site.ev

    def state(self) -> WallboxState:
        """The charger now, with the site's voltage on each of its terminals."""
        ev = self.ev
        n = self.site.phases
        volts = [self.site.meter.voltage((ev.params.phase - 1 + k) % n) for k in range(3)]
        return replace(charger_state(ev, self.site.time), voltage_v=(volts[0], volts[1], volts[2]))

    def set_current(self, amps: float) -> None:
        """Offer ``amps`` A per phase."""
        self.site.set_ev_current(amps)

    def set_phases(self, phases: int) -> None:
        """1 or 3 phases (a single-phase site stays on its one phase)."""
        self.site.set_ev_phases(phases)

    def set_enabled(self, on: bool) -> None:
        """Start or stop charging."""
        self.site.set_ev_enabled(on)


def _status(value: str) -> CommandStatus:
    if value == "Ok":
        return "Ok"
    if value == "Pending":
        return "Pending"
    return "Failure" if value == "Failure" else "Unknown"
