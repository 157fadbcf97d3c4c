"""The power step of a stepped load (a Modbus heating rod) as an owned actuator output.

:class:`StepWriter` is the one door to the device: it holds the bus client (a serial port can be
opened once), serialises every request with a lock, and is what the feature reads its
temperature and power through as well. A write is :meth:`SteppedLoad.set_step` (coils, then a new
heartbeat, confirmed by reading the power feedback back). The actuator rewrites the claimed step
every ``refresh_s`` (the keep-alive that holds the device's watchdog off) and, once every claim
is released, writes 0 W once and then nothing: the device's own watchdog then keeps it off even
if that last write was lost.

It is a :class:`~.ownership.ReadableOutput`, so the actuator reads the device back every
``readback_s`` (a device that rebooted or whose watchdog tripped while we hold it gets our step
again) and notes every step above 0 W in the output ledger with :meth:`spec`. A daemon killed
while heating is cleared at the next start (:mod:`.leftovers` rebuilds the writer with
:func:`step_writer_from_spec`) unless the watchdog (``device_timeout_s``) has done it already.
The target is marked persistent: a reboot of the GX does not switch the heater off.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import anyio

from ..clock import Clock
from ..devices import Connection, LoadMode, LoadReading, SteppedLoad
from ..devices.registry import bus_client, open_device
from ..errors import ConfigError, DeviceConnectionError, DeviceError
from .actuator import Actuator, Readback

__all__ = ["SPEC_KIND", "StepWriter", "step_actuator", "step_writer_from_spec"]

SPEC_KIND = "stepped-load"
DEFAULT_WATCHDOG_S = 300.0


class StepWriter:
    """Writes (and reads) the step of one stepped load; owns its bus client."""

    persistent = True

    def __init__(
        self,
        driver: str,
        conn: Connection,
        *,
        clock: Clock,
        refresh_s: float = 60.0,
        watchdog_s: float = DEFAULT_WATCHDOG_S,
    ) -> None:
        """``refresh_s``: keep-alive period, well within the device's ``watchdog_s``."""
        self.driver = driver
        self.conn = conn
        self.clock = clock
        self.refresh_s: float | None = refresh_s
        self.device_timeout_s: float | None = watchdog_s
        self._client: Any = None
        self._device: SteppedLoad | None = None
        self._lock = anyio.Lock()
        self.reading: LoadReading | None = None
        self.error: str | None = None
        """Why the last read failed (None: it worked)."""
        self.write_error: str | None = None
        """Why the last step write failed or was not confirmed (None: it worked)."""
        self._notify: Callable[[], None] | None = None

    @property
    def target(self) -> str:
        """For logs and status: ``heizstab heater at /dev/ttyUSB0 step``."""
        return f"{self.driver} heater at {self.conn.host} step"

    @property
    def device(self) -> SteppedLoad | None:
        """The device once opened (its steps, identity)."""
        return self._device

    def spec(self) -> dict[str, Any]:
        """How :func:`step_writer_from_spec` rebuilds this writer (JSON)."""
        options = {k: v for k, v in self.conn.options.items() if isinstance(v, (str, int))}
        return {
            "kind": SPEC_KIND,
            "driver": self.driver,
            "host": self.conn.host,
            "timeout_s": self.conn.timeout_s,
            "options": options,
        }

    async def _open(self) -> SteppedLoad:
        if self._client is None:
            self._client = bus_client(self.driver, self.conn)
        if self._device is None:
            device = await open_device(self.driver, self._client, self.conn, clock=self.clock)
            if not isinstance(device, SteppedLoad):
                raise ConfigError(f"{device.identity.product_name} is no stepped load")
            self._device = device
            if device.watchdog_s is not None:
                self.device_timeout_s = device.watchdog_s
        return self._device

    async def _do(self, op: Callable[[SteppedLoad], Any], *, writing: bool) -> LoadReading:
        async with self._lock:
            try:
                device = await self._open()
                reading: LoadReading = await op(device)
            except DeviceError as err:
                if writing:
                    self.write_error = str(err)
                else:
                    self.error = str(err)
                if isinstance(err, DeviceConnectionError):
                    self._drop()
                raise
            self.reading = reading
            if writing:
                self.write_error = None
            else:
                self.error = None
        if self._notify is not None:
            self._notify()
        return reading

    def _drop(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = self._device = None

    async def write(self, value: float) -> None:
        """Run at step ``value`` W, confirmed; DeviceError (retried by the actuator)."""
        await self._do(lambda d: d.set_step(float(value)), writing=True)

    async def poll(self) -> LoadReading:
        """Read the device now (temperature, power, mode); DeviceError when it fails."""
        return await self._do(lambda d: d.read(), writing=False)

    def read_cached(self) -> Readback:
        """The last reading's power (UNKNOWN while FORCE ON or unknown); owner = the device."""
        r = self.reading
        if r is None or r.mode is LoadMode.FORCED_ON:
            return Readback(self.target)
        return Readback(self.target, r.power_w)

    async def read(self) -> Readback:
        """Read the device back (the cached answer if it fails)."""
        try:
            await self.poll()
        except DeviceError:
            return Readback(self.target)
        return self.read_cached()

    def watch(self, notify: Callable[[], None]) -> None:
        """``notify()`` after every new reading."""
        self._notify = notify

    async def aclose(self) -> None:
        """Close the bus client (after the actuator's last write)."""
        self._drop()


def step_writer_from_spec(spec: Mapping[str, Any], clock: Clock) -> StepWriter | None:
    """The writer a ledger entry describes (None when malformed)."""
    driver, host, timeout = spec.get("driver"), spec.get("host"), spec.get("timeout_s")
    options = spec.get("options")
    if not (isinstance(driver, str) and isinstance(host, str) and isinstance(options, dict)):
        return None
    if not isinstance(timeout, (int, float)) or not 0 < timeout <= 30:
        return None
    return StepWriter(driver, Connection(host, float(timeout), options=options), clock=clock)


def step_actuator(name: str, writer: StepWriter, clock: Clock, **kw: Any) -> Actuator[float]:
    """The step output (W): safe 0 W, the keep-alive as its refresh, written and confirmed."""
    kw.setdefault("write_timeout_s", 4 * writer.conn.timeout_s + 2.0)
    kw.setdefault("shutdown_timeout_s", 4 * writer.conn.timeout_s + 2.0)
    kw.setdefault("retry_s", 5.0)
    kw.setdefault("readback_s", 10.0)
    return Actuator(name, writer, safe_value=0.0, clock=clock, **kw)
