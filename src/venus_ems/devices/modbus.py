"""Modbus transport for drivers: the client a caller owns, and one bounded request at a time.

For a Modbus driver the *session* of the registry (``devices.registry.open_session``) is a
pymodbus async client: one per serial port or TCP endpoint, owned by the caller, shared by
every device on that bus (pymodbus serialises the requests). :func:`modbus_session` builds it
from a :class:`~venus_ems.devices.base.Connection`:

* ``transport = "tcp"`` (default unless ``host`` is a device path): Modbus TCP (MBAP header)
  to ``host[:port]`` (port 502);
* ``transport = "rtu-over-tcp"``: RTU frames (with CRC) on a TCP socket, as serial gateways
  forward them, to ``host:port``;
* ``transport = "rtu"`` (default when ``host`` starts with ``/``): RTU on a serial port,
  ``baudrate`` (9600), ``parity`` (``N``/``E``/``O``), ``stopbits`` (1, 2), ``bytesize`` (7, 8).

:class:`ModbusLink` is what a driver talks through: one device (unit id) on that client, every
request within ``timeout_s`` (pymodbus' own timeout, no retries, plus a hard bound around it),
every failure mapped into the ``DeviceError`` tree: no reply -> ``DeviceTimeoutError``; a reply
that failed its CRC check (or a garbled MBAP header) -> ``DeviceProtocolError``; a Modbus
exception response -> ``DeviceProtocolError`` naming the code; port or socket unusable ->
``DeviceConnectionError``; an answer of the wrong length -> ``DeviceProtocolError``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

import anyio
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.client.base import ModbusBaseClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.framer import FramerRTU, FramerSocket, FramerType

from ..errors import ConfigError, DeviceConnectionError, DeviceProtocolError, DeviceTimeoutError
from .base import Connection

__all__ = [
    "EXCEPTION_NAMES",
    "TRANSPORT_OPTIONS",
    "ModbusClient",
    "ModbusEndpoint",
    "ModbusLink",
    "bad_frames",
    "modbus_client",
    "modbus_session",
    "parse_endpoint",
]

ModbusClient = ModbusBaseClient
"""The session type of Modbus drivers: a pymodbus async client (TCP or serial)."""

Transport = Literal["tcp", "rtu-over-tcp", "rtu"]
TRANSPORT_OPTIONS = frozenset({"transport", "baudrate", "parity", "stopbits", "bytesize"})
"""``Connection.options`` the transport reads; a Modbus driver accepts them besides its own."""

EXCEPTION_NAMES: Mapping[int, str] = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}
"""Modbus exception codes (Modbus Application Protocol v1.1b3, section 7)."""

_MAX_COUNT = 125  # registers per read (the protocol's own limit)


@dataclass(frozen=True, slots=True)
class ModbusEndpoint:
    """Where a Modbus bus is: transport, host or serial device, port, serial line settings."""

    transport: Transport
    host: str
    port: int = 502
    baudrate: int = 9600
    parity: str = "N"
    stopbits: int = 1
    bytesize: int = 8

    def describe(self) -> str:
        """For humans and ``/Mgmt/Connection``: ``Modbus RTU on /dev/ttyUSB0 (9600 8N1)``."""
        if self.transport == "rtu":
            line = f"{self.baudrate} {self.bytesize}{self.parity}{self.stopbits}"
            return f"Modbus RTU on {self.host} ({line})"
        if self.transport == "rtu-over-tcp":
            return f"Modbus RTU over TCP {self.host}:{self.port}"
        return f"Modbus TCP {self.host}:{self.port}"


def _int_option(
    options: Mapping[str, object], name: str, allowed: Sequence[int], default: int
) -> int:
    value = options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(map(str, allowed))}, got {value!r}")
    return value


def parse_endpoint(conn: Connection) -> ModbusEndpoint:
    """The bus ``conn`` names (see the module docstring); ConfigError when malformed."""
    opts = conn.options
    host = conn.host.strip()
    if not host or len(host) > 255:
        raise ConfigError(f"Modbus host {conn.host!r} must be a host, host:port or a device path")
    default: Transport = "rtu" if host.startswith("/") else "tcp"
    transport = opts.get("transport", default)
    if transport not in ("tcp", "rtu-over-tcp", "rtu"):
        raise ConfigError(f"transport must be tcp, rtu-over-tcp or rtu, got {transport!r}")
    if transport == "rtu":
        if not host.startswith("/"):
            raise ConfigError(f"transport rtu needs a serial device path as host, got {host!r}")
        parity = opts.get("parity", "N")
        if parity not in ("N", "E", "O"):
            raise ConfigError(f"parity must be N, E or O, got {parity!r}")
        bauds = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)
        return ModbusEndpoint(
            "rtu",
            host,
            0,
            baudrate=_int_option(opts, "baudrate", bauds, 9600),
            parity=str(parity),
            stopbits=_int_option(opts, "stopbits", (1, 2), 1),
            bytesize=_int_option(opts, "bytesize", (7, 8), 8),
        )
    serial_only = sorted({"baudrate", "parity", "stopbits", "bytesize"} & set(opts))
    if serial_only:
        raise ConfigError(f"{', '.join(serial_only)}: serial settings need transport = rtu")
    name, sep, port_text = host.rpartition(":")
    if not sep or "]" in port_text:
        name, port_text = host, ""
    name = name.strip("[]")
    if not port_text:
        if transport == "rtu-over-tcp":
            raise ConfigError(f"transport rtu-over-tcp needs host:port, got {host!r}")
        return ModbusEndpoint("tcp", name, 502)
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"Modbus port in {host!r} must be 1..65535")
    return ModbusEndpoint(transport, name, int(port_text))


# --- the client: pymodbus, with a framer that counts the replies it had to drop -------------


class _CountingRtu(FramerRTU):
    """RTU framer that counts frames dropped for a bad CRC (else they look like no reply)."""

    bad_frames = 0
    failure = "failed its CRC check"

    def decode(self, data: bytes) -> tuple[int, int, int, bytes]:
        used, dev_id, tid, frame = super().decode(data)
        if used and not frame:  # FramerRTU consumes data without a frame only on a bad CRC
            self.bad_frames += 1
        return used, dev_id, tid, frame


class _CountingSocket(FramerSocket):
    """MBAP framer that counts headers it had to drop (protocol id not 0)."""

    bad_frames = 0
    failure = "had a corrupt MBAP header"

    def decode(self, data: bytes) -> tuple[int, int, int, bytes]:
        if len(data) >= 4 and data[2:4] != b"\x00\x00":
            self.bad_frames += 1
        return super().decode(data)


def bad_frames(client: ModbusClient) -> int:
    """Replies ``client`` dropped as corrupt so far (0 for a client not built here)."""
    framer = getattr(getattr(client, "ctx", None), "framer", None)
    count = getattr(framer, "bad_frames", 0)
    return count if isinstance(count, int) else 0


def modbus_client(conn: Connection) -> ModbusClient:
    """A pymodbus client for the bus ``conn`` names (not connected yet); ConfigError if bad.

    No retries and no background reconnect: a request that fails fails now, and the next one
    connects again. Must be called with an event loop running (pymodbus needs one).
    """
    ep = parse_endpoint(conn)
    timeout = max(conn.timeout_s, 0.05)
    client: Any
    if ep.transport == "rtu":
        client = AsyncModbusSerialClient(
            ep.host,
            framer=FramerType.RTU,
            baudrate=ep.baudrate,
            bytesize=ep.bytesize,
            parity=ep.parity,
            stopbits=ep.stopbits,
            timeout=timeout,
            retries=0,
            reconnect_delay=0,
        )
    else:
        framer = FramerType.RTU if ep.transport == "rtu-over-tcp" else FramerType.SOCKET
        client = AsyncModbusTcpClient(
            ep.host, port=ep.port, framer=framer, timeout=timeout, retries=0, reconnect_delay=0
        )
    counting = _CountingRtu if isinstance(client.ctx.framer, FramerRTU) else _CountingSocket
    client.ctx.framer = counting(client.ctx.framer.decoder)
    return client  # type: ignore[no-any-return]


@asynccontextmanager
async def modbus_session(conn: Connection) -> AsyncIterator[ModbusClient]:
    """The client of :func:`modbus_client`, closed on exit; ConfigError if ``conn`` is bad."""
    client = modbus_client(conn)
    try:
        yield client
    finally:
        client.close()


# --- one device on the bus ------------------------------------------------------------------


class ModbusLink:
    """Requests to unit ``unit`` through ``client``, each bounded by ``timeout_s``."""

    def __init__(self, client: ModbusClient, unit: int, timeout_s: float, where: str) -> None:
        """``where`` names the device in error messages (``Modbus RTU on /dev/ttyUSB0 #33``)."""
        self.client = client
        self.unit = unit
        self.timeout_s = timeout_s
        self.where = where

    async def read_input_registers(self, address: int, count: int) -> list[int]:
        """FC04: ``count`` input registers from ``address`` (each 0..65535)."""
        what = f"read input registers {address}..{address + count - 1}"
        reply = await self._call(
            what,
            lambda: self.client.read_input_registers(address, count=count, device_id=self.unit),
        )
        return self._registers(reply, count, what)

    async def read_holding_registers(self, address: int, count: int) -> list[int]:
        """FC03: ``count`` holding registers from ``address`` (each 0..65535)."""
        what = f"read holding registers {address}..{address + count - 1}"
        reply = await self._call(
            what,
            lambda: self.client.read_holding_registers(address, count=count, device_id=self.unit),
        )
        return self._registers(reply, count, what)

    async def read_coils(self, address: int, count: int) -> list[bool]:
        """FC01: ``count`` coils from ``address``."""
        what = f"read coils {address}..{address + count - 1}"
        reply = await self._call(
            what, lambda: self.client.read_coils(address, count=count, device_id=self.unit)
        )
        bits = getattr(reply, "bits", None)
        if not isinstance(bits, list) or len(bits) < count:
            raise DeviceProtocolError(f"{self.where}: {what}: answer has too few coils")
        return [bool(b) for b in bits[:count]]

    async def write_coils(self, address: int, values: Sequence[bool]) -> None:
        """FC15: coils from ``address``; DeviceProtocolError unless the echo matches."""
        what = f"write coils {address}..{address + len(values) - 1}"
        reply = await self._call(
            what,
            lambda: self.client.write_coils(address, list(values), device_id=self.unit),
        )
        if getattr(reply, "address", None) != address or getattr(reply, "count", None) != len(
            values
        ):
            raise DeviceProtocolError(f"{self.where}: {what}: the echo does not match")

    async def write_register(self, address: int, value: int) -> None:
        """FC06: one holding register; DeviceProtocolError unless the echo matches."""
        what = f"write holding register {address} = {value}"
        reply = await self._call(
            what, lambda: self.client.write_register(address, value, device_id=self.unit)
        )
        registers = getattr(reply, "registers", None)
        if getattr(reply, "address", None) != address or registers != [value]:
            raise DeviceProtocolError(f"{self.where}: {what}: the echo does not match")

    def _registers(self, reply: Any, count: int, what: str) -> list[int]:
        regs = getattr(reply, "registers", None)
        if not isinstance(regs, list) or len(regs) != count:
            got = len(regs) if isinstance(regs, list) else "no"
            raise DeviceProtocolError(f"{self.where}: {what}: {got} registers in the answer")
        if not all(isinstance(r, int) and 0 <= r <= 0xFFFF for r in regs):
            raise DeviceProtocolError(f"{self.where}: {what}: a register is not 16 bit")
        return regs

    async def _call(self, what: str, request: Callable[[], Awaitable[Any]]) -> Any:
        """One request: connect if needed, bounded, errors mapped; the reply PDU."""
        client = self.client
        dropped = bad_frames(client)
        try:
            # pymodbus bounds connect and reply by its timeout; this bounds everything else
            with anyio.fail_after(2 * self.timeout_s + 1.0):
                if not client.connected and not await client.connect():
                    raise DeviceConnectionError(f"{self.where}: cannot connect")
                reply = await request()
        except TimeoutError:
            raise DeviceTimeoutError(f"{self.where}: {what}: no answer in time") from None
        except ConnectionException as err:
            raise DeviceConnectionError(f"{self.where}: {what}: {_short(err)}") from err
        except ModbusIOException as err:
            if bad_frames(client) > dropped:
                failure = getattr(getattr(client, "ctx", None), "framer", None)
                why = getattr(failure, "failure", "was corrupt")
                raise DeviceProtocolError(f"{self.where}: {what}: the answer {why}") from err
            raise DeviceTimeoutError(
                f"{self.where}: {what}: no answer within {self.timeout_s:g} s"
            ) from err
        except ModbusException as err:
            raise DeviceProtocolError(f"{self.where}: {what}: {_short(err)}") from err
        except OSError as err:  # the serial port vanished, the socket broke
            raise DeviceConnectionError(f"{self.where}: {what}: {_short(err)}") from err
        if reply is None:
            raise DeviceTimeoutError(f"{self.where}: {what}: no answer")
        if reply.isError():
            code = getattr(reply, "exception_code", None)
            name = EXCEPTION_NAMES.get(code, "unknown") if isinstance(code, int) else "unknown"
            raise DeviceProtocolError(f"{self.where}: {what}: Modbus exception {code} ({name})")
        return reply


def _short(err: BaseException) -> str:
    return f"{type(err).__name__}: {str(err)[:160]}"
