"""The Shelly drivers against the loopback emulators: detection, values, relays, auth."""

from __future__ import annotations

import pytest

from venus_ems.devices import PhaseMeter, PowerMeter, Switch
from venus_ems.devices.shelly import Gen1Shelly, Gen2Shelly, ShellyRpcError, open_shelly
from venus_ems.errors import ConfigError, DeviceAuthError
from venus_ems.sim.devices import (
    MemorySwitch,
    PhaseReading,
    ShellyGen1Emulator,
    StaticMeter,
    em_gen3,
    mini_1pm_gen3,
    plus_1pm,
    pm_mini_gen3,
    pro_3em,
    pro_em,
    s3em_63_gen3,
)

pytestmark = pytest.mark.anyio
approx = pytest.approx


def meter(clock, n):
    readings = [
        PhaseReading.of(1200.0, voltage_v=231.0, power_factor=0.9, energy_forward_wh=5000.0),
        PhaseReading.of(-450.0, voltage_v=229.5, power_factor=0.8, energy_reverse_wh=700.0),
        PhaseReading.of(35.0, voltage_v=230.2, frequency_hz=49.9, energy_forward_wh=12.5),
    ]
    return StaticMeter(readings[:n], clock=clock)


@pytest.mark.parametrize(
    ("make", "gen", "product", "channels"),
    [
        (lambda m, c: ShellyGen1Emulator("SHEM", meter=m, clock=c), 1, "Shelly EM", 2),
        (lambda m, c: ShellyGen1Emulator("SHEM-3", meter=m, clock=c), 1, "Shelly 3EM", 3),
        (lambda m, c: pro_3em(m, clock=c), 2, "Shelly Pro 3EM", 3),
        (lambda m, c: pro_em(m, clock=c), 2, "Shelly Pro EM", 2),
        (lambda m, c: em_gen3(m, clock=c), 3, "Shelly EM Gen3", 2),
        (lambda m, c: s3em_63_gen3(m, clock=c), 3, "Shelly 3EM-63 Gen3", 3),
    ],
)
async def test_energy_meters(session, clock, make, gen, product, channels):
    source = meter(clock, channels)
    async with make(source, clock) as emu:
        dev = await open_shelly(session, emu.url, clock=clock, timeout_s=2)
        assert isinstance(dev, PhaseMeter)
        assert (dev.info.generation, dev.identity.product_name) == (gen, product)
        assert dev.channel_count == channels
        await clock.advance(4.0)
        reading = await dev.read_phases()
    assert reading.taken_at == 4.0
    want = source.read()
    for got, exp in zip(reading.channels, want, strict=True):
        assert got.power_w == approx(exp.power_w, abs=0.01)
        assert got.voltage_v == approx(exp.voltage_v, abs=0.01)
        assert got.energy_forward_kwh == approx(exp.energy_forward_wh / 1000, abs=1e-4)
        assert got.energy_reverse_kwh == approx(exp.energy_reverse_wh / 1000, abs=1e-4)
        if got.current_a is not None:  # the gen1 EM has no current; others sign it from W
            assert got.current_a == approx(
                exp.current_a * (1 if exp.power_w >= 0 else -1), abs=0.01
            )
    assert reading.channels[1].power_w < 0  # exporting channel stays negative
    if gen > 1:
        assert reading.frequency_hz == 50.0
    else:
        assert reading.frequency_hz is None
    # the energy counters follow the power over time (Wh on the wire, kWh in the reading)
    async with make(source, clock) as emu:
        dev = await open_shelly(session, emu.url, clock=clock)
        await clock.advance(3600.0)
        later = await dev.read_phases()
    assert later.channels[0].energy_forward_kwh == approx(5.0 + 1.2 * 3604 / 3600, abs=1e-4)
    assert later.channels[1].energy_reverse_kwh == approx(0.7 + 0.45 * 3604 / 3600, abs=1e-4)


@pytest.mark.parametrize(
    ("make", "gen", "signed", "returned"),
    [
        (lambda s, c: ShellyGen1Emulator("SHPLG-S", switch=s, clock=c), 1, False, False),
        (lambda s, c: ShellyGen1Emulator("SHSW-PM", switch=s, clock=c), 1, False, False),
        (lambda s, c: plus_1pm(s, clock=c), 2, False, False),
        (lambda s, c: mini_1pm_gen3(s, clock=c), 3, True, True),
        (lambda s, c: pm_mini_gen3(s, clock=c), 3, True, True),
    ],
)
async def test_power_meters(session, clock, make, gen, signed, returned):
    # an inverter behind the plug feeds 600 W back; counters start at 2 kWh / 1 kWh
    source = MemorySwitch(
        load_w=-600.0, on=True, energy_wh=2000.0, returned_energy_wh=1000.0, clock=clock
    )
    async with make(source, clock) as emu:
        dev = await open_shelly(session, emu.url, clock=clock)
        assert isinstance(dev, PowerMeter)
        assert dev.info.generation == gen
        assert dev.power_channels == (0,)
        first = await dev.read_power(0)
        await clock.advance(120.0)  # two whole minutes at 600 W = 10 Wh each
        await clock.advance(60.0 - clock.now().timestamp() % 60)
        second = await dev.read_power(0)
    assert first.signed is signed
    assert first.power_w == (-600.0 if signed else 600.0)
    assert first.voltage_v in (None, 230.0)
    # the device counts both directions in its total; consumed/returned split when it can
    assert first.energy_total_kwh == approx(3.0, abs=1e-3)
    if returned:
        assert (first.energy_forward_kwh, first.energy_reverse_kwh) == approx((2.0, 1.0))
    else:
        assert first.energy_reverse_kwh is None
    assert second.energy_total_kwh == approx(3.0 + 0.6 * 3 / 60, abs=2e-4)
    assert second.last_minutes_wh[0] == approx(10.0, abs=0.01)
    assert second.last_minutes_wh[1] == approx(10.0, abs=0.01)
    assert second.taken_at == clock.monotonic()


@pytest.mark.parametrize(
    "make",
    [
        lambda s, c: ShellyGen1Emulator("SHPLG-S", switch=s, clock=c),
        lambda s, c: ShellyGen1Emulator("SHEM", meter=StaticMeter(2, clock=c), switch=s, clock=c),
        lambda s, c: plus_1pm(s, clock=c),
        lambda s, c: mini_1pm_gen3(s, clock=c),
        lambda s, c: pro_em(StaticMeter(2, clock=c), contactor=s, clock=c),
    ],
)
async def test_relays(session, clock, make):
    source = MemorySwitch(load_w=100.0, clock=clock)
    async with make(source, clock) as emu:
        dev = await open_shelly(session, emu.url, clock=clock)
        assert isinstance(dev, Switch)
        assert dev.outputs == (0,)
        assert await dev.read_output(0) is False
        await dev.set_output(0, True)
        assert source.read().output is True
        assert await dev.read_output(0) is True
        await dev.set_output(0, False)
        assert source.read().output is False
        assert source.switch_count == 2
        with pytest.raises(ConfigError, match="no relay 1"):
            await dev.set_output(1, True)


async def test_capabilities_the_device_lacks_are_config_errors(session, clock):
    async with pm_mini_gen3(MemorySwitch(clock=clock), clock=clock) as emu:
        dev = await open_shelly(session, emu.url, clock=clock)
        assert isinstance(dev, Gen2Shelly)
        with pytest.raises(ConfigError, match="no relay"):
            await dev.set_output(0, True)
        with pytest.raises(ConfigError, match="not an energy meter"):
            await dev.read_phases()
        with pytest.raises(ConfigError, match="channel 2"):
            await dev.read_power(2)
    async with pro_3em(meter(clock, 3), clock=clock) as emu:
        dev = await open_shelly(session, emu.url, clock=clock)
        with pytest.raises(ConfigError, match="no power meter"):
            await dev.read_power(0)
        with pytest.raises(ConfigError, match="gen2 API but generation = 1"):
            await open_shelly(session, emu.url, clock=clock, generation=1)
        assert isinstance(
            await open_shelly(session, emu.url, clock=clock, generation=2), Gen2Shelly
        )
        # errors the device itself returns keep their code
        with pytest.raises(ShellyRpcError) as err:
            await dev.rpc.call("EM.GetStatus", {"id": 7})
        assert err.value.code == -105
        with pytest.raises(ShellyRpcError) as err:
            await dev.rpc.call("Nope.Nothing")
        assert err.value.code == 404


async def test_gen1_basic_auth(session, clock):
    src = meter(clock, 3)
    async with ShellyGen1Emulator(
        "SHEM-3", meter=src, credentials=("admin", "pw"), clock=clock
    ) as e:
        info_open = await open_shelly(session, e.url, clock=clock)  # /shelly is never protected
        assert isinstance(info_open, Gen1Shelly)
        assert info_open.info.auth is True
        with pytest.raises(DeviceAuthError, match="set username/password"):
            await info_open.read_phases()
        bad = await open_shelly(session, e.url, clock=clock, username="admin", password="nope")
        with pytest.raises(DeviceAuthError, match="refused"):
            await bad.read_phases()
        good = await open_shelly(session, e.url, clock=clock, username="admin", password="pw")
        assert (await good.read_phases()).channels[0].power_w == 1200.0


async def test_gen2_digest_auth_reuses_the_nonce(session, clock):
    async with pro_3em(meter(clock, 3), password="s3cret", clock=clock) as emu:
        with pytest.raises(DeviceAuthError, match="set password"):
            await open_shelly(session, emu.url, clock=clock)
        with pytest.raises(DeviceAuthError, match="refused"):
            await open_shelly(session, emu.url, clock=clock, password="wrong")
        dev = await open_shelly(session, emu.url, clock=clock, password="s3cret")
        before = emu.faults.requests
        for _ in range(5):
            assert (await dev.read_phases()).channels[1].power_w == -450.0
        assert emu.faults.requests - before == 5  # no 401 round trip per poll
        # an expired nonce is replaced by the next challenge, transparently
        await clock.advance(7200.0)
        before = emu.faults.requests
        assert len((await dev.read_phases()).channels) == 3
        assert emu.faults.requests - before == 2


async def test_gen2_switch_with_digest(session, clock):
    source = MemorySwitch(load_w=50.0, clock=clock)
    async with plus_1pm(source, password="pw", clock=clock) as emu:
        dev = await open_shelly(session, emu.url, clock=clock, password="pw")
        await dev.set_output(0, True)
        assert source.read().output is True
        assert (await dev.read_power(0)).power_w == 50.0
