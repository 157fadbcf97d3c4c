"""The Heizstab-Regelung firmware as documented, without I/O: registers, latch, watchdog.

Facts from ``shared/vectors/heizstab-modbus-frames.md`` and ``docs/reference/seeds-small.md``
§C.2 (firmware transistorgit/Heizstab-Regelung ``src/main.cpp``), written down here on their
own, never taken from the driver: coils 0..2 drive SSRs of 500, 1000 and 2000 W; input
registers 0..4 are temperature x 100 (8500 on a failed sensor read, uint16, so a negative
temperature wraps), a heartbeat counting +1 per second, the power read back from the output
pins, the device type 0xE5E1 and the mode (1 while the FORCE ON switch is closed); holding
register 0 is the client heartbeat. The coils reach the SSRs only in the loop iteration that
sees a *new* holding-register value; after 300 s without one everything is switched off and
the error LED lights. FORCE ON turns all three SSRs on whatever the coils say.

The firmware's ``loop()`` runs after every Modbus request it handles (the real one polls the
bus once per loop iteration) and on a timer; so a heartbeat written *before* the coils latches
the old coils, and coils written before the heartbeat are latched on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ...clock import Clock

__all__ = [
    "COILS",
    "DEVICE_TYPE",
    "SSR_POWERS_W",
    "WATCHDOG_S",
    "HeaterPlant",
    "HeizstabFirmware",
    "MemoryPlant",
]

SSR_POWERS_W = (500.0, 1000.0, 2000.0)
COILS = len(SSR_POWERS_W)
DEVICE_TYPE = 0xE5E1
WATCHDOG_S = 300.0
SENSOR_ERROR = 8500
INPUT_REGISTERS = 5


class HeaterPlant(Protocol):
    """What the controller is wired to: the heating element stages and the tank sensor."""

    def water_temperature_c(self) -> float:
        """The water temperature at the sensor, °C."""
        ...

    def set_elements(self, on: Sequence[bool]) -> None:
        """Switch the element stages (500, 1000, 2000 W) as the SSRs are now."""
        ...


class MemoryPlant:
    """A tank that stays at ``temperature_c`` and remembers the SSRs (tests, demo)."""

    def __init__(self, temperature_c: float = 45.0) -> None:
        """All elements off."""
        self.temperature_c = temperature_c
        self.elements: tuple[bool, ...] = (False,) * COILS

    def water_temperature_c(self) -> float:
        """The fixed temperature, °C."""
        return self.temperature_c

    def set_elements(self, on: Sequence[bool]) -> None:
        """Remember the SSR state."""
        self.elements = tuple(bool(x) for x in on)


class HeizstabFirmware:
    """Registers and behaviour of one controller; time from ``clock``."""

    def __init__(self, plant: HeaterPlant, clock: Clock, *, heartbeat_start: int = 0) -> None:
        """Just booted: coils off, holding register 0, watchdog counting from now."""
        self.plant = plant
        self.clock = clock
        self.coils = [False] * COILS
        self.holding = 0
        self.force_on = False
        self.sensor_error = False
        self.watchdog_stuck = False
        self.tripped = False
        self.latches = 0
        self._seen = 0
        self._latched = [False] * COILS
        self._boot = clock.monotonic()
        self._changed_at = self._boot
        self._heartbeat_start = heartbeat_start & 0xFFFF
        self._outputs: tuple[bool, ...] = (False,) * COILS
        plant.set_elements(self._outputs)

    # --- the main loop ----------------------------------------------------------------------

    def loop(self) -> None:
        """One firmware loop iteration: heartbeat check, latch or watchdog, outputs."""
        now = self.clock.monotonic()
        if self.holding != self._seen:
            self._seen = self.holding
            self._changed_at = now
            if not self.watchdog_stuck:
                self._latched = list(self.coils)
                self.tripped = False
                self.latches += 1
        if self.watchdog_stuck or now - self._changed_at >= WATCHDOG_S:
            self._latched = [False] * COILS
            self.tripped = True
        outputs = (True,) * COILS if self.force_on else tuple(self._latched)
        if outputs != self._outputs:
            self._outputs = outputs
            self.plant.set_elements(outputs)

    @property
    def outputs(self) -> tuple[bool, ...]:
        """The SSR output pins now."""
        return self._outputs

    def expire_watchdog(self) -> None:
        """Act as if the heartbeat had not changed for 300 s (fault injection)."""
        self._changed_at = self.clock.monotonic() - WATCHDOG_S
        self.loop()

    # --- registers ----------------------------------------------------------------------------

    def input_registers(self) -> list[int]:
        """Input registers 0..4 as the firmware fills them now."""
        if self.sensor_error:
            raw_t = SENSOR_ERROR
        else:
            raw_t = round(self.plant.water_temperature_c() * 100.0) & 0xFFFF
        heartbeat = (self._heartbeat_start + int(self.clock.monotonic() - self._boot)) & 0xFFFF
        power = sum(p for p, on in zip(SSR_POWERS_W, self._outputs, strict=True) if on)
        return [raw_t, heartbeat, int(power), DEVICE_TYPE, 1 if self.force_on else 0]
