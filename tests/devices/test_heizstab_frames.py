"""Heizstab-Regelung: the documented RTU frames, our CRC check of them, and the parsers' tables.

The CRC here is written from the CRC-16/MODBUS definition (poly 0xA001 reflected, init 0xFFFF,
low byte first), bit by bit: independent of pymodbus' table and of the driver. The frames are
read from ``shared/vectors/heizstab-modbus-frames.md``; the frames the driver really sends are
captured on the wire of an RTU-over-TCP emulator and must be the documented ones byte for byte.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from venus_ems.clock import SteppedClock
from venus_ems.devices import Connection, LoadMode, LoadReading
from venus_ems.devices.heizstab import coils_for, parse_inputs
from venus_ems.devices.modbus import parse_endpoint
from venus_ems.devices.registry import open_device, open_session
from venus_ems.errors import ConfigError, DeviceProtocolError
from venus_ems.sim.devices.heizstab import HeizstabEmulator
from venus_ems.sim.devices.heizstab_firmware import MemoryPlant

VECTORS = Path(
    os.environ.get("VENUS_EMS_VECTORS", Path(__file__).resolve().parents[3] / "shared" / "vectors")
)  # as tests/conftest.py: the vector fixture reads JSON, this vector is a table
FRAMES_MD = VECTORS / "heizstab-modbus-frames.md"
IN_CI = bool(os.environ.get("CI") or os.environ.get("VENUS_EMS_CI"))
pytestmark = pytest.mark.anyio


def crc16_modbus(data: bytes) -> bytes:
    """CRC-16/MODBUS of ``data``, low byte first (as it goes on the wire)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return bytes([crc & 0xFF, crc >> 8])


def documented_frames() -> dict[str, bytes]:
    """purpose -> complete frames (request, and response where the table gives one in full)."""
    if not FRAMES_MD.is_file():
        if IN_CI:
            pytest.fail(f"vector {FRAMES_MD.name} not available; CI needs it")
        pytest.skip(f"vector {FRAMES_MD.name} not available")
    out: dict[str, bytes] = {}
    for line in FRAMES_MD.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3:
            continue
        purpose = cells[0]
        for i, cell in enumerate(cells[1:]):
            hexes = re.fullmatch(r"`((?:[0-9A-F]{2} ?)+)`", cell)
            if hexes:
                out[f"{purpose} [{'request' if i == 0 else 'response'}]"] = bytes.fromhex(hexes[1])
    return out


def test_our_crc_reproduces_the_standard_example():
    assert crc16_modbus(bytes.fromhex("01 03 00 00 00 0A")) == bytes.fromhex("C5 CD")


def test_every_documented_frame_carries_a_valid_crc():
    frames = documented_frames()
    assert len(frames) >= 11  # the table's nine requests and two full responses
    for purpose, frame in frames.items():
        assert frame[0] == 0x21, purpose  # slave id 33
        assert crc16_modbus(frame[:-2]) == frame[-2:], purpose


def test_the_stale_firmware_comment_frame_reads_ir0_not_ir1():
    # main.cpp's comment names "... 36 AA" as the heartbeat request; that CRC belongs to IR0
    assert crc16_modbus(bytes.fromhex("21 04 00 00 00 01")) == bytes.fromhex("36 AA")
    assert crc16_modbus(bytes.fromhex("21 04 00 01 00 01")) == bytes.fromhex("67 6A")


def test_the_device_type_reply_decodes_to_e5e1():
    reply = documented_frames()["read IR3 device type [response]"]
    assert reply[1:3] == b"\x04\x02"  # FC04, two data bytes
    assert int.from_bytes(reply[3:5], "big") == 0xE5E1


# --- what the driver puts on the wire ---------------------------------------------------------


async def test_the_driver_sends_the_documented_frames():
    """Open, 1500 W, off: each request the driver sends is the documented frame, byte for byte."""
    frames = documented_frames()
    clock = SteppedClock()
    async with HeizstabEmulator(MemoryPlant(), clock=clock, framing="rtu") as emu:
        assert emu.firmware is not None
        emu.firmware.holding = 41  # so that the driver's first heartbeat is 42
        conn = Connection(f"127.0.0.1:{emu.port}", 1.0, options={"transport": "rtu-over-tcp"})
        async with open_session("heizstab", conn) as session:
            heater = await open_device("heizstab", session, conn, clock=clock)
            await heater.set_step(1500.0)
            await heater.set_step(0.0)
        wire = b"".join(emu.received)
    for purpose in (
        "read IR3 device type [request]",
        "read HR0 [request]",
        "write coils 0..2 = 011b (500 W + 1000 W = 1500 W) [request]",
        "write HR0 heartbeat = 42 [request]",
        "read IR0..4 (temp, hb, power, type, mode) [request]",
        "write coils 0..2 = all off [request]",
    ):
        assert frames[purpose] in wire, purpose
    # coils before heartbeat: the 1500 W pattern precedes the heartbeat write
    coils = wire.index(frames["write coils 0..2 = 011b (500 W + 1000 W = 1500 W) [request]"])
    assert coils < wire.index(frames["write HR0 heartbeat = 42 [request]"])


# --- pure tables --------------------------------------------------------------------------------

# The reference client's step table (frames file): power -> coils [500, 1000, 2000]
STEP_TABLE = [
    (0, "000"),
    (500, "100"),
    (1000, "010"),
    (1500, "110"),
    (2000, "001"),
    (2500, "101"),
    (3000, "011"),
    (3500, "111"),
]


@pytest.mark.parametrize(("watts", "pattern"), STEP_TABLE)
def test_coils_for_each_step(watts, pattern):
    assert coils_for(float(watts)) == [c == "1" for c in pattern]


@pytest.mark.parametrize("bad", [250.0, -500.0, 4000.0, 1499.9, float("nan")])
def test_a_power_that_is_no_step_is_refused(bad):
    with pytest.raises(ValueError, match="not a step"):
        coils_for(bad)


TYPE = 0xE5E1
INPUT_TABLE = [
    # (registers, temperature °C or None, power W, mode, fault text or "")
    ([4850, 7, 1500, TYPE, 0], 48.5, 1500.0, LoadMode.REMOTE, ""),
    ([8500, 7, 0, TYPE, 0], None, 0.0, LoadMode.REMOTE, "sensor error"),  # never a real 85 °C
    ([8499, 7, 0, TYPE, 0], 84.99, 0.0, LoadMode.REMOTE, ""),
    ([65036, 7, 0, TYPE, 0], -5.0, 0.0, LoadMode.REMOTE, ""),  # -500 written as uint16
    ([20000, 7, 0, TYPE, 0], None, 0.0, LoadMode.REMOTE, "outside the sensor's range"),
    ([0, 65535, 3500, TYPE, 1], 0.0, 3500.0, LoadMode.FORCED_ON, ""),
]


@pytest.mark.parametrize(("regs", "temp", "power", "mode", "fault"), INPUT_TABLE)
def test_input_registers_to_reading(regs, temp, power, mode, fault):
    reading = parse_inputs(regs, 12.5, 1000.0)
    assert reading.temperature_c == temp
    assert (reading.power_w, reading.mode, reading.taken_at) == (power, mode, 12.5)
    assert reading.commanded_w == 1000.0
    assert reading.device_heartbeat == regs[1]
    assert (fault in " ".join(reading.faults)) if fault else reading.faults == ()


@pytest.mark.parametrize(
    ("regs", "why"),
    [
        ([4850, 7, 1500, 0xE5E0, 0], "device type 0xE5E0"),
        ([4850, 7, 700, TYPE, 0], "700 W is no combination"),
        ([4850, 7, 1500, TYPE, 2], "mode 2"),
        ([4850, 7, 1500, TYPE], "got 4 values"),
    ],
)
def test_input_registers_that_are_not_ours(regs, why):
    with pytest.raises(DeviceProtocolError, match=why):
        parse_inputs(regs, 0.0)


@given(st.lists(st.integers(0, 0xFFFF), min_size=0, max_size=8))
def test_any_registers_give_a_reading_or_a_protocol_error(regs):
    try:
        reading = parse_inputs(regs, 1.0)
    except DeviceProtocolError:
        return
    assert isinstance(reading, LoadReading)
    assert reading.temperature_c is None or -55.0 <= reading.temperature_c <= 125.0
    assert reading.power_w in {500.0 * i for i in range(8)}


# --- endpoints ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "options", "described"),
    [
        ("10.0.0.5", {}, "Modbus TCP 10.0.0.5:502"),
        ("10.0.0.5:1502", {}, "Modbus TCP 10.0.0.5:1502"),
        ("gw:4001", {"transport": "rtu-over-tcp"}, "Modbus RTU over TCP gw:4001"),
        ("/dev/ttyUSB0", {}, "Modbus RTU on /dev/ttyUSB0 (9600 8N1)"),
        (
            "/dev/ttyUSB1",
            {"baudrate": 19200, "parity": "E"},
            "Modbus RTU on /dev/ttyUSB1 (19200 8E1)",
        ),
    ],
)
def test_endpoints(host, options, described):
    assert parse_endpoint(Connection(host, options=options)).describe() == described


@pytest.mark.parametrize(
    ("host", "options", "why"),
    [
        ("h", {"transport": "udp"}, "transport must be"),
        ("h", {"transport": "rtu"}, "needs a serial device path"),
        ("gw", {"transport": "rtu-over-tcp"}, "needs host:port"),
        ("h:0", {}, "must be 1..65535"),
        ("h:http", {}, "must be 1..65535"),
        ("/dev/ttyUSB0", {"baudrate": 9601}, "baudrate must be one of"),
        ("/dev/ttyUSB0", {"parity": "X"}, "parity must be"),
        ("/dev/ttyUSB0", {"stopbits": True}, "stopbits must be"),
        ("h", {"baudrate": 9600}, "need transport = rtu"),
        ("", {}, "must be a host"),
    ],
)
def test_bad_endpoints_are_config_errors(host, options, why):
    with pytest.raises(ConfigError, match=why):
        parse_endpoint(Connection(host, options=options))


async def test_bad_driver_options_are_config_errors(clock):
    for options, why in [({"unit": 0}, "unit must be"), ({"unit": "33"}, "unit must be")]:
        with pytest.raises(ConfigError, match=why):
            await open_device("heizstab", None, Connection("h", options=options), clock=clock)
    await anyio.lowlevel.checkpoint()
