"""Heizstab-Regelung emulator: pymodbus servers on loopback TCP and a pseudo-terminal (RTU).

The firmware (:mod:`.heizstab_firmware`) answers as slave 33 (others are silent, as on an
RS485 bus) over any of:

* Modbus TCP on ``127.0.0.1`` (``framing="tcp"``) or RTU frames on that TCP socket
  (``framing="rtu"``, what a serial-to-TCP gateway forwards);
* RTU on a pseudo-terminal (``rtu=True``): the server holds one pty, the client opens
  ``rtu_path``, a relay joins the two like a null-modem cable. pymodbus' serial server and
  client use them as any serial port (pyserial).

``faults.mode`` (also through :mod:`venus_ems.sim.control`, ``venus-ems sim-fault heater ...``):

=========== ==================================================================================
mode        what a client sees
=========== ==================================================================================
ok          the device as documented
offline     TCP: the port refuses connections (open ones are closed); RTU: silence
no_reply    every request is ignored (a dead or disconnected device): client timeouts
crc         answers with a broken CRC (RTU framings); on Modbus TCP a garbled MBAP header
exception   every request answered with Modbus exception ``exception_code`` (default 4)
watchdog    the firmware's watchdog has expired: SSRs off, heartbeats no longer latch
sensor      the temperature sensor fails: input register 0 reads 8500 (85.00 °C)
force_on    the FORCE ON switch is closed: mode 1, all SSRs on
=========== ==================================================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from collections import deque
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Literal, get_args

import anyio
import anyio.abc
from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.exceptions import NoSuchIdException
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusSerialServer, ModbusTcpServer

from ...clock import Clock, RealClock
from ...errors import ConfigError
from .heizstab_firmware import COILS, INPUT_REGISTERS, HeaterPlant, HeizstabFirmware, MemoryPlant

__all__ = ["MODBUS_FAULT_MODES", "HeizstabEmulator", "ModbusFaultMode", "ModbusFaults", "PtyLine"]

ModbusFaultMode = Literal[
    "ok", "offline", "no_reply", "crc", "exception", "watchdog", "sensor", "force_on"
]
MODBUS_FAULT_MODES: tuple[str, ...] = get_args(ModbusFaultMode)
MODBUS_FAULT_PARAMS: dict[str, tuple[type, float, float]] = {"exception_code": (int, 1.0, 11.0)}
SLAVE_ID = 33
LOOP_S = 0.25
"""Period of the firmware's timer loop (watchdog) between requests, in clock seconds."""


class ModbusFaults:
    """The fault mode of a Modbus emulator and its parameters; ``requests`` counts requests."""

    modes = MODBUS_FAULT_MODES
    params = MODBUS_FAULT_PARAMS

    def __init__(self) -> None:
        """Start in mode ``ok``."""
        self.mode: ModbusFaultMode = "ok"
        self.exception_code = 4
        self.requests = 0

    def configure(self, mode: str | None = None, /, **params: object) -> None:
        """Set parameters, then the mode; ConfigError names a bad one (nothing changes)."""
        checked: dict[str, int] = {}
        for name, raw in params.items():
            if name not in MODBUS_FAULT_PARAMS:
                raise ConfigError(
                    f"fault parameter {name!r} is not one of {', '.join(MODBUS_FAULT_PARAMS)}"
                )
            _, lo, hi = MODBUS_FAULT_PARAMS[name]
            if isinstance(raw, bool) or not isinstance(raw, (int, float)):
                raise ConfigError(f"fault parameter {name} must be a number, got {raw!r}")
            if not lo <= raw <= hi or raw != int(raw):
                raise ConfigError(f"fault parameter {name} = {raw!r} is outside {lo:g}..{hi:g}")
            checked[name] = int(raw)
        if mode is not None and mode not in MODBUS_FAULT_MODES:
            raise ConfigError(f"fault mode {mode!r} is not one of {', '.join(MODBUS_FAULT_MODES)}")
        for name, value in checked.items():
            setattr(self, name, value)
        if mode is not None:
            self.mode = mode  # type: ignore[assignment]

    def describe(self) -> dict[str, object]:
        """Mode, parameters and request count, as JSON-ready values."""
        return {"mode": self.mode, "requests": self.requests, "exception_code": self.exception_code}


class _Registers(ModbusServerContext):
    """The datastore pymodbus' server calls: the firmware's registers plus the faults."""

    def __init__(self, emulator: HeizstabEmulator) -> None:  # no super(): its v4 warning
        self.emulator = emulator
        self.simdevices: list[Any] = []
        self.old_simulator = True  # pymodbus: call async_getValues/async_setValues directly

    def _check(self, device_id: int) -> HeizstabFirmware:
        emu = self.emulator
        if device_id != emu.unit or emu.faults.mode in ("no_reply", "offline"):
            raise NoSuchIdException(f"no reply from id {device_id}")
        assert emu.firmware is not None
        return emu.firmware

    async def async_getValues(  # noqa: N802 - pymodbus' name
        self, device_id: int, func_code: int, address: int, count: int = 1
    ) -> list[int] | list[bool] | ExcCodes:
        """Read coils (1, 5, 15), holding (3, 6, 16) or input (4) registers."""
        fw = self._check(device_id)
        if self.emulator.faults.mode == "exception":
            return ExcCodes(self.emulator.faults.exception_code)
        fw.loop()
        end = address + count
        if func_code in (1, 5, 15):
            return list(fw.coils[address:end]) if end <= COILS else ExcCodes.ILLEGAL_ADDRESS
        if func_code in (3, 6, 16):
            return [fw.holding] if (address, count) == (0, 1) else ExcCodes.ILLEGAL_ADDRESS
        if func_code == 4:
            regs = fw.input_registers()
            return regs[address:end] if end <= INPUT_REGISTERS else ExcCodes.ILLEGAL_ADDRESS
        return ExcCodes.ILLEGAL_FUNCTION

    async def async_setValues(  # noqa: N802 - pymodbus' name
        self, device_id: int, func_code: int, address: int, values: Sequence[int] | Sequence[bool]
    ) -> ExcCodes | None:
        """Write coils (5, 15) or holding register 0 (6, 16); then one loop iteration."""
        fw = self._check(device_id)
        if self.emulator.faults.mode == "exception":
            return ExcCodes(self.emulator.faults.exception_code)
        end = address + len(values)
        if func_code in (5, 15) and end <= COILS:
            fw.coils[address:end] = [bool(v) for v in values]
        elif func_code in (6, 16) and (address, len(values)) == (0, 1):
            fw.holding = int(values[0]) & 0xFFFF
        else:
            return ExcCodes.ILLEGAL_ADDRESS
        fw.loop()
        return None

    def device_ids(self) -> list[int]:
        """The one slave id."""
        return [self.emulator.unit]


class PtyLine:
    """Two pseudo-terminals joined by a relay: ``device_path`` for the server, ``client_path``."""

    def __init__(self) -> None:
        """Open both pairs (raw); the relay runs from :meth:`start` to :meth:`close`."""
        self._fds: list[int] = []
        m1, s1 = os.openpty()
        m2, s2 = os.openpty()
        self._fds = [m1, s1, m2, s2]
        for fd in (s1, s2):  # our slave ends stay open: no EIO while clients come and go
            tty.setraw(fd)
        for fd in (m1, m2):
            os.set_blocking(fd, False)
        self.device_path = os.ttyname(s1)
        self.client_path = os.ttyname(s2)
        self._masters = (m1, m2)
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Relay bytes both ways (needs the running asyncio loop)."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        m1, m2 = self._masters
        loop.add_reader(m1, self._relay, m1, m2)
        loop.add_reader(m2, self._relay, m2, m1)

    def _relay(self, src: int, dst: int) -> None:
        try:
            data = os.read(src, 4096)
            os.write(dst, data)
        except OSError:  # EIO/EAGAIN: nobody on the other end, the bytes are lost as on a wire
            pass

    def close(self) -> None:
        """Stop relaying and close every descriptor."""
        if self._loop is not None:
            for fd in self._masters:
                self._loop.remove_reader(fd)
            self._loop = None
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = []


class HeizstabEmulator:
    """One emulated controller on TCP and/or a pty (an async context manager)."""

    def __init__(
        self,
        plant: HeaterPlant | None = None,
        *,
        clock: Clock | None = None,
        tcp: bool = True,
        framing: Literal["tcp", "rtu"] = "tcp",
        rtu: bool = False,
        port: int = 0,
        unit: int = SLAVE_ID,
        heartbeat_start: int = 0,
    ) -> None:
        """Configure (not start); ``port`` 0 picks a free TCP port; ``plant``: a MemoryPlant."""
        self.plant: HeaterPlant = plant if plant is not None else MemoryPlant()
        self.clock: Clock = clock if clock is not None else RealClock()
        self.faults = ModbusFaults()
        self.received: deque[bytes] = deque(maxlen=256)
        """The last bytes that arrived from clients, as read from the wire (newest last)."""
        self.framing = framing
        self.port = port
        self.unit = unit
        self.firmware: HeizstabFirmware | None = None
        self._tcp, self._rtu = tcp, rtu
        self._heartbeat_start = heartbeat_start
        self._tcp_server: ModbusTcpServer | None = None
        self._serial_server: ModbusSerialServer | None = None
        self._line: PtyLine | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._store = _Registers(self)

    @property
    def url(self) -> str:
        """``tcp://127.0.0.1:<port>`` (``rtu-over-tcp://`` for RTU framing), else the pty path."""
        if not self._tcp:
            return self.rtu_path
        scheme = "tcp" if self.framing == "tcp" else "rtu-over-tcp"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def rtu_path(self) -> str:
        """The serial device a client opens for RTU (valid once started with ``rtu=True``)."""
        if self._line is None:
            raise RuntimeError("this emulator serves no RTU pty")
        return self._line.client_path

    async def __aenter__(self) -> HeizstabEmulator:
        """Boot the firmware and start serving; OSError if the TCP port is taken."""
        self.firmware = HeizstabFirmware(
            self.plant, self.clock, heartbeat_start=self._heartbeat_start
        )
        try:
            if self._tcp:
                await self._start_tcp()
            if self._rtu:
                line = PtyLine()
                self._line = line
                line.start()
                server = ModbusSerialServer(
                    self._store,
                    framer=FramerType.RTU,
                    port=line.device_path,
                    baudrate=9600,
                    ignore_missing_devices=True,
                    trace_packet=self._tracer(rtu=True),
                    trace_pdu=self._count,
                )
                await server.serve_forever(background=True)
                self._serial_server = server
            tg = anyio.create_task_group()
            await tg.__aenter__()
            self._tg = tg
            tg.start_soon(self._timer)
        except BaseException:
            await self._stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop serving, close the pty."""
        await self._stop()

    async def set_fault(self, mode: str) -> None:
        """Set ``faults.mode`` and act on it now; ConfigError if unknown."""
        self.faults.configure(mode)
        fw = self.firmware
        if fw is not None:
            fw.force_on = mode == "force_on"
            fw.sensor_error = mode == "sensor"
            fw.watchdog_stuck = mode == "watchdog"
            if mode == "watchdog":
                fw.expire_watchdog()
            fw.loop()
        if self._tcp:
            if mode == "offline" and self._tcp_server is not None:
                server, self._tcp_server = self._tcp_server, None
                await server.shutdown()  # type: ignore[no-untyped-call]
            elif mode != "offline" and self._tcp_server is None and self.firmware is not None:
                await self._start_tcp()

    async def _start_tcp(self) -> None:
        framer = FramerType.SOCKET if self.framing == "tcp" else FramerType.RTU
        server = ModbusTcpServer(
            self._store,
            framer=framer,
            address=("127.0.0.1", self.port),
            ignore_missing_devices=True,
            trace_packet=self._tracer(rtu=self.framing == "rtu"),
            trace_pdu=self._count,
        )
        await server.serve_forever(background=True)
        if self.port == 0:
            listener: Any = server.transport  # an asyncio.Server once listening
            self.port = int(listener.sockets[0].getsockname()[1])
        self._tcp_server = server

    async def _stop(self) -> None:
        tg, self._tg = self._tg, None
        if tg is not None:
            tg.cancel_scope.cancel()
            await tg.__aexit__(None, None, None)
        for server in (self._tcp_server, self._serial_server):
            if server is not None:
                await server.shutdown()  # type: ignore[no-untyped-call]
        self._tcp_server = self._serial_server = None
        if self._line is not None:
            self._line.close()
            self._line = None

    async def _timer(self) -> None:
        """The firmware loop between requests: the watchdog switches off on time."""
        while True:
            await self.clock.sleep(LOOP_S)
            if self.firmware is not None:
                self.firmware.loop()

    def _count(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        if not sending:
            self.faults.requests += 1
        return pdu

    def _tracer(self, *, rtu: bool) -> Any:
        def trace(sending: bool, data: bytes) -> bytes:
            if not sending:
                self.received.append(bytes(data))
            if not sending or self.faults.mode != "crc" or len(data) < 4:
                return data
            if rtu:  # the CRC is the last two bytes
                return data[:-2] + bytes([data[-2] ^ 0xFF, data[-1] ^ 0x5A])
            return data[:2] + b"\x00\x07" + data[4:]  # MBAP protocol id must be 0

        return trace
