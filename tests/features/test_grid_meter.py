"""M1 grid meter: a real emulator -> GridMeter -> a real dbus-daemon -> a real Monitor."""

from __future__ import annotations

import anyio
import pytest
from test_grid_meter_harness import running, until

from venus_ems.clock import RealClock, SteppedClock
from venus_ems.errors import ConfigError
from venus_ems.features import REGISTRY, create_features
from venus_ems.features.grid_meter import GridMeter, service_name
from venus_ems.features.meter import PRODUCT_ID
from venus_ems.runtime.config import GridMeterConfig, parse_config
from venus_ems.runtime.config.report import InvalidConfigError
from venus_ems.runtime.supervisor import first_error
from venus_ems.sim.devices import (
    MemorySwitch,
    PhaseReading,
    ShellyGen1Emulator,
    StaticMeter,
    pro_3em,
    pro_em,
)
from venus_ems.venus.specs import METER_ROLES

pytestmark = pytest.mark.anyio
approx = pytest.approx
NAME = service_name("house")


def host(emu) -> str:
    return emu.url.removeprefix("http://")


def grid(emu, **kw) -> GridMeter:
    base = {"name": "house", "enabled": True, "host": host(emu), "timeout_s": 0.3}
    return GridMeter(GridMeterConfig.model_validate({**base, **kw}))


def meter(clock, powers=(1200.0, -450.0, 35.0), fwd=(5000.0, 0.0, 12.5), rev=(0.0, 700.0, 0.0)):
    return StaticMeter(
        [
            PhaseReading.of(p, voltage_v=230.0 + i, energy_forward_wh=f, energy_reverse_wh=r)
            for i, (p, f, r) in enumerate(zip(powers, fwd, rev, strict=True))
        ],
        clock=clock,
    )


@pytest.fixture
def clock():
    return SteppedClock()


async def test_publishes_every_grid_path_once_per_poll(bus_address, clock, tmp_path):
    source = meter(clock)
    async with (
        pro_3em(source, clock=clock) as emu,
        running(grid(emu), NAME, bus_address, clock, tmp_path) as run,
    ):
        assert run.get("/Ac/Power") == approx(1200.0 - 450.0 + 35.0)
        assert [run.get(f"/Ac/L{i}/Power") for i in (1, 2, 3)] == [1200.0, -450.0, 35.0]
        assert run.get("/Ac/L2/Current") < 0  # exporting phase: current signed like the power
        assert run.get("/Ac/L1/Voltage") == 230.0
        assert run.get("/Ac/Frequency") == 50.0
        assert run.get("/Ac/L1/Energy/Forward") == approx(5.0)
        assert run.get("/Ac/L2/Energy/Reverse") == approx(0.7)
        assert run.get("/Ac/Energy/Forward") == approx(5.0125)
        assert run.get("/Ac/Energy/Reverse") == approx(0.7)
        assert run.get("/NrOfPhases") == 3
        assert run.get("/Role") == "grid"
        assert run.get("/AllowedRoles") == list(METER_ROLES)
        assert run.get("/FirmwareVersion") == "1.1.0"  # "ver"; the build id is kept apart
        assert run.get("/FirmwareBuild") == "20231219-134001/1.1.0-g34b5d4f"
        assert {"/IsGenericEnergyMeter", "/Position"}.isdisjoint(run.paths())  # other roles
        assert run.get("/RefreshTime") == 1000
        assert run.get("/Connected") == 1
        assert run.get("/ProductName") == "Shelly Pro 3EM"
        assert run.get("/ProductId") == PRODUCT_ID
        assert run.get("/Serial") == "08F9E0A1B201"
        assert run.get("/Mgmt/Connection") == f"HTTP {host(emu)}"
        assert isinstance(run.get("/DeviceInstance"), int)
        # one ItemsChanged per poll: /UpdateIndex moves every second even with constant values
        updates = []
        sub = run.mon.subscribe(services=[NAME], paths=["/UpdateIndex"])

        async def collect():
            async for changes in sub:
                updates.extend(changes.values())

        async with anyio.create_task_group() as tg:
            tg.start_soon(collect)
            for _ in range(5):
                await run.step(clock, 1.0)
            await until(lambda: len(updates) >= 5)
            run.mon.unsubscribe(sub)
        assert len(set(updates)) == 5
        source.set_power(0, 2000.0)
        await run.step(clock)
        assert run.get("/Ac/L1/Power") == 2000.0


async def test_at_least_one_update_per_second_in_real_time(bus_address, tmp_path):
    real = RealClock()
    async with (
        pro_3em(meter(real), clock=real) as emu,
        running(grid(emu), NAME, bus_address, real, tmp_path) as run,
    ):
        first = run.feature.polls
        # two more polls within 2.2 s of real time (fails as soon as that is over)
        await until(lambda: run.feature.polls - first >= 2, timeout=2.2)
        await run.synced()


async def test_phase_mapping_and_inversion(bus_address, clock, tmp_path):
    channels = [
        {"channel": 0, "phase": "L2"},
        {"channel": 1, "phase": "L1", "invert": True},
        {"channel": 2, "phase": "L3"},
    ]
    async with (
        ShellyGen1Emulator("SHEM-3", meter=meter(clock), clock=clock) as emu,
        running(grid(emu, channels=channels), NAME, bus_address, clock, tmp_path) as run,
    ):
        assert run.get("/Ac/L2/Power") == 1200.0
        assert run.get("/Ac/L1/Power") == 450.0  # the CT on channel 1 was fitted backwards
        assert run.get("/Ac/L1/Current") > 0
        assert run.get("/Ac/Power") == approx(1200.0 + 450.0 + 35.0)
        # inverting swaps the counters: what the CT saw as export is import
        assert run.get("/Ac/L1/Energy/Forward") == approx(0.7)
        assert run.get("/Ac/L1/Energy/Reverse") == approx(0.0)
        assert run.get("/Ac/L2/Energy/Forward") == approx(5.0)
        assert run.get("/Ac/Frequency") is None  # a gen1 3EM does not measure it
        assert run.get("/ProductName") == "Shelly 3EM"


async def test_single_phase_site_publishes_only_l1(bus_address, clock, tmp_path):
    source = StaticMeter([PhaseReading.of(-800.0), PhaseReading.of(150.0)], clock=clock)
    async with (
        pro_em(source, clock=clock) as emu,
        running(grid(emu, phases=1), NAME, bus_address, clock, tmp_path) as run,
    ):
        assert run.get("/NrOfPhases") == 1
        assert run.get("/Ac/Power") == -800.0
        assert run.get("/Ac/L1/Power") == -800.0
        published = run.paths()
        assert "/Ac/L1/Voltage" in published
        assert not any(p.startswith(("/Ac/L2", "/Ac/L3")) for p in published)
        await run.step(clock)
        assert run.get("/Connected") == 1


async def test_gross_and_net_metering(bus_address, tmp_path):
    # L1 imports 3600 W while L2 exports 1800 W: the house imports 1800 W net
    powers = (3600.0, -1800.0, 0.0)
    results = {}
    for metering in ("gross", "net"):
        clock = SteppedClock()
        source = meter(clock, powers=powers, fwd=(1000.0, 0.0, 0.0), rev=(0.0, 0.0, 0.0))
        async with (
            pro_3em(source, clock=clock) as emu,
            running(
                grid(emu, metering=metering), NAME, bus_address, clock, tmp_path / metering
            ) as run,
        ):
            start = (run.get("/Ac/Energy/Forward"), run.get("/Ac/Energy/Reverse"))
            for _ in range(10):
                await run.step(clock, 1.0)
            end = (run.get("/Ac/Energy/Forward"), run.get("/Ac/Energy/Reverse"))
            per_phase = (run.get("/Ac/L1/Energy/Forward"), run.get("/Ac/L2/Energy/Reverse"))
        assert start == approx((1.0, 0.0))  # a fresh start begins at the meter's counters
        results[metering] = (end[0] - start[0], end[1] - start[1], per_phase)
    # gross: 10 s of 3600 W imported and 10 s of 1800 W exported, as the meter counted them
    assert results["gross"][:2] == approx((0.01, 0.005), abs=2e-5)
    # net: only the 1800 W balance is imported, nothing exported
    assert results["net"][:2] == approx((0.005, 0.0), abs=2e-5)
    # per-phase counters are the meter's in both modes
    assert results["net"][2] == approx(results["gross"][2], abs=2e-5)


async def test_device_counter_reset_never_goes_backwards(bus_address, clock, tmp_path):
    source = meter(clock)
    async with (
        pro_3em(source, clock=clock) as emu,
        running(grid(emu), NAME, bus_address, clock, tmp_path) as run,
    ):
        before = run.get("/Ac/Energy/Forward")
        # the Shelly's counters restart from 0 (firmware update, EMData.ResetCounters)
        for i in range(3):
            old = source.read()[i]
            source.set_reading(i, PhaseReading.of(old.power_w, energy_forward_wh=2.0))
        await run.step(clock)
        after = run.get("/Ac/Energy/Forward")
        assert after >= before
        assert after == approx(before + 0.006, abs=2e-3)
        assert run.get("/Ac/L2/Energy/Reverse") == approx(0.7, abs=1e-3)


async def test_wrong_device_or_channel_is_a_config_error(bus_address, clock, tmp_path):
    async with ShellyGen1Emulator("SHPLG-S", switch=MemorySwitch(), clock=clock) as emu:
        with pytest.raises(Exception) as err:
            async with running(grid(emu), NAME, bus_address, clock, tmp_path):
                pytest.fail("the feature started")  # the error ends the block before this
        assert isinstance(first_error(err.value), ConfigError)
        assert "not an energy meter" in str(first_error(err.value))
    async with pro_em(StaticMeter(2, clock=clock), clock=clock) as emu:
        with pytest.raises(Exception) as err:
            async with running(grid(emu, phases=3), NAME, bus_address, clock, tmp_path):
                pytest.fail("the feature started")
        assert isinstance(first_error(err.value), ConfigError)
        assert "channel 2 (L3) does not exist" in str(first_error(err.value))


def test_bad_config_is_refused_with_the_key():
    good = '[[grid_meter]]\nname = "house"\nenabled = true\nhost = "10.0.0.5"\n'
    config, _ = parse_config("schema_version = 1\n" + good)
    ((name, feature),) = create_features(config)
    assert name == "grid_meter.house"
    assert isinstance(feature, GridMeter)
    assert REGISTRY["grid_meter"] == "venus_ems.features.grid_meter:build"
    bad = [
        ("poll_interval_s = 2.0\n", "poll_interval_s"),
        ('metering = "saldo"\n', "metering"),
        ("phases = 2\n", "phases"),
        ('channels = [{ channel = 0, phase = "L1" }]\n', "channels"),
        ('host = "http://x/"\n', "host"),
    ]
    for extra, key in bad:
        text = "schema_version = 1\n" + good.replace('host = "10.0.0.5"\n', "") + extra
        if "host" not in extra:
            text += 'host = "10.0.0.5"\n'
        with pytest.raises(InvalidConfigError, match=key):
            parse_config(text)
