"""Run a simulated site: the GX's D-Bus services plus device emulators measuring the physics.

``running_site()`` starts a :class:`SimulatedGx` on a bus and, on loopback, a Shelly Pro 3EM
(an EM gen3 on a single-phase site) measuring the site's grid connection and, if the site has
micro-inverters, an OpenDTU for them, and if it has an EV charger, a Fronius Wattpilot driving
it (websocket, password ``wattpilot_password``), plus the HTTP fault control of those emulators
(:mod:`venus_ems.sim.control`). It yields a :class:`SimHandles` with the URLs to use.
With ``heater`` (``"tcp"``, ``"rtu-over-tcp"`` or ``"rtu"``) the site gets a hot-water tank and
a Heizstab-Regelung emulator switching its rod, on loopback TCP or a pseudo-terminal.
With ``bus_settings`` the GX keeps its settings in the ``com.victronenergy.settings`` already
on the bus (e.g. Victron's localsettings) instead of publishing its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio

from ..clock import Clock
from .control import FaultControl, FaultTarget
from .devices import OpenDtuEmulator, ShellyGen2Emulator, em_gen3, plus_1pm, pro_3em
from .devices.heizstab import HeizstabEmulator
from .devices.wattpilot import WattpilotEmulator
from .scenarios import Scenario, with_modbus_heater
from .venus.gx import SimulatedGx
from .wiring import SiteGridMeter, SiteHeaterPlant, SiteInverterBank, SiteRelay, SiteWallbox

__all__ = ["SimHandles", "parse_time_of_day", "running_site", "time_of_day"]


@dataclass
class SimHandles:
    """What a running simulation offers: the GX, its bus, and the emulators' base URLs."""

    gx: SimulatedGx
    address: str
    shelly: ShellyGen2Emulator
    opendtu: OpenDtuEmulator | None
    control: FaultControl
    heater: HeizstabEmulator | None = None
    wattpilot: WattpilotEmulator | None = None
    relays: dict[str, ShellyGen2Emulator] = field(default_factory=dict)

    def describe(self) -> str:
        """How to connect, for humans."""
        lines = [
            f"D-Bus:    {self.address}",
            f"          e.g. dbus-send --bus='{self.address}' --print-reply "
            "--dest=com.victronenergy.system /Dc/Battery/Soc com.victronenergy.BusItem.GetValue",
            f"Shelly {self.shelly.identity.model} measuring the grid: {self.shelly.url}",
        ]
        if self.gx.local_settings is None:
            lines.insert(2, "Settings: the com.victronenergy.settings already on the bus")
        if self.opendtu is not None:
            lines.append(f"OpenDTU for the micro-inverters:  {self.opendtu.url}")
        if self.heater is not None:
            lines.append(f"Heizstab water heater (Modbus unit 33): {self.heater.url}")
        if self.wattpilot is not None:
            wp = self.wattpilot
            lines.append(f"Fronius Wattpilot (EV charger):   {wp.url} (password {wp.password})")
        for name, relay in self.relays.items():
            lines.append(f"Shelly Plus 1PM switching {name}: {relay.url}")
        lines.append(
            f"Fault control: {self.control.url}/faults, e.g. "
            f"venus-ems sim-fault --control {self.control.url} shelly chunked_flood"
        )
        return "\n".join(lines)


def time_of_day(seconds: float) -> str:
    """Simulated seconds -> ``"HH:MM:SS"`` within the day."""
    day = int(seconds) % 86400
    return f"{day // 3600:02d}:{day % 3600 // 60:02d}:{day % 60:02d}"


def parse_time_of_day(text: str) -> float:
    """``"12:30"`` -> seconds after midnight; ValueError when malformed."""
    hours, _, minutes = text.partition(":")
    h, m = int(hours), int(minutes or 0)
    if not (0 <= h < 24 and 0 <= m < 60):
        raise ValueError(f"time of day {text!r} is not HH:MM")
    return h * 3600.0 + m * 60.0


@asynccontextmanager
async def running_site(
    scenario: Scenario | str,
    *,
    address: str,
    clock: Clock,
    start_s: float = 12 * 3600.0,
    external_meter: bool = False,
    shelly_port: int = 0,
    opendtu_port: int = 0,
    bus_settings: bool = False,
    control_port: int = 0,
    heater: Literal["tcp", "rtu-over-tcp", "rtu"] | None = None,
    heater_port: int = 0,
    wattpilot_port: int = 0,
    wattpilot_password: str = "testpassword",  # noqa: S107 - the simulated charger's, printed
    **gx_options: Any,
) -> AsyncIterator[SimHandles]:
    """Start the GX and the emulators; stop them on exit (options: see :class:`SimulatedGx`)."""
    if heater is not None:
        scenario = with_modbus_heater(scenario)
    gx = SimulatedGx(
        scenario,
        address=address,
        clock=clock,
        start_s=start_s,
        external_meter=external_meter,
        bus_settings=bus_settings,
        **gx_options,
    )
    async with AsyncExitStack() as stack:
        tg = await stack.enter_async_context(anyio.create_task_group())
        stack.callback(tg.cancel_scope.cancel)
        await tg.start(gx.run)
        if gx.site.phases == 3:
            meter = pro_3em(SiteGridMeter(gx.site), clock=clock, port=shelly_port, name="sim-grid")
        else:  # a single-phase site: an EM gen3 with its second CT unused
            source = SiteGridMeter(gx.site, channels=2)
            meter = em_gen3(source, clock=clock, port=shelly_port, name="sim-grid")
        shelly = await stack.enter_async_context(meter)
        dtu = None
        if gx.site.micros:
            dtu = await stack.enter_async_context(
                OpenDtuEmulator(SiteInverterBank(gx.site), clock=clock, port=opendtu_port)
            )
        devices: dict[str, FaultTarget] = {"shelly": shelly}
        if dtu is not None:
            devices["opendtu"] = dtu
        rod = None
        if heater is not None:
            rod = await stack.enter_async_context(
                HeizstabEmulator(
                    SiteHeaterPlant(gx.site),
                    clock=clock,
                    tcp=heater != "rtu",
                    framing="rtu" if heater == "rtu-over-tcp" else "tcp",
                    rtu=heater == "rtu",
                    port=heater_port,
                )
            )
            devices["heater"] = rod
        wattpilot = None
        if gx.site.ev is not None:
            wattpilot = await stack.enter_async_context(
                WattpilotEmulator(
                    SiteWallbox(gx.site),
                    password=wattpilot_password,
                    clock=clock,
                    port=wattpilot_port,
                )
            )
            devices["wattpilot"] = wattpilot
        relays: dict[str, ShellyGen2Emulator] = {}
        for i, name in enumerate(gx.site.relays):  # each switched load behind a Shelly
            relays[name] = await stack.enter_async_context(
                plus_1pm(
                    SiteRelay(gx.site, name), clock=clock, name=f"sim-{name}", mac=f"C0FFEE{i:06X}"
                )
            )
            devices[f"relay-{name}"] = relays[name]
        control = await stack.enter_async_context(FaultControl(devices, port=control_port))
        yield SimHandles(gx, address, shelly, dtu, control, rod, wattpilot, relays)
