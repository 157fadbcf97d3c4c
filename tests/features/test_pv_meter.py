"""M2 PV meter: Shelly plugs and PMs of every generation as com.victronenergy.pvinverter."""

from __future__ import annotations

import pytest
from test_grid_meter_harness import running

from venus_ems.clock import SteppedClock
from venus_ems.errors import ConfigError
from venus_ems.features import create_features
from venus_ems.features.pv_meter import (
    STATUS_ERROR,
    STATUS_RUNNING,
    STATUS_STANDBY,
    PvMeter,
    service_name,
)
from venus_ems.runtime.config import PvMeterConfig, parse_config
from venus_ems.runtime.config.report import InvalidConfigError
from venus_ems.runtime.supervisor import first_error
from venus_ems.sim.devices import (
    MemorySwitch,
    ShellyGen1Emulator,
    StaticMeter,
    mini_1pm_gen3,
    plus_1pm,
    pm_mini_gen3,
    pro_3em,
)

pytestmark = pytest.mark.anyio
approx = pytest.approx
NAME = service_name("balcony")


def pv(emu, **kw) -> PvMeter:
    base = {
        "name": "balcony",
        "enabled": True,
        "host": emu.url.removeprefix("http://"),
        "timeout_s": 0.3,
        "hold_s": 2.0,
    }
    return PvMeter(PvMeterConfig.model_validate({**base, **kw}))


DEVICES = {
    "gen1-plug-s": (lambda s, c: ShellyGen1Emulator("SHPLG-S", switch=s, clock=c), "Shelly Plug S"),
    "gen1-1pm": (lambda s, c: ShellyGen1Emulator("SHSW-PM", switch=s, clock=c), "Shelly 1PM"),
    "gen2-plus-1pm": (lambda s, c: plus_1pm(s, clock=c), "Shelly Plus 1PM"),
    "gen3-1pm-mini": (lambda s, c: mini_1pm_gen3(s, clock=c), "Shelly 1PM Mini Gen3"),
    "gen3-pm-mini": (lambda s, c: pm_mini_gen3(s, clock=c), "Shelly PM Mini Gen3"),
}


@pytest.mark.parametrize("device", list(DEVICES))
async def test_every_generation_publishes_production(bus_address, tmp_path, device):
    clock = SteppedClock()
    make, product = DEVICES[device]
    # a micro-inverter behind the device feeds 600 W back: signed (gen3) or magnitude only
    inverter = MemorySwitch(load_w=-600.0, on=True, energy_wh=1500.0, clock=clock)
    config = {"phase": "L2", "position": "ac-out"}
    async with (
        make(inverter, clock) as emu,
        running(pv(emu, **config), NAME, bus_address, clock, tmp_path) as run,
    ):
        assert run.get("/ProductName") == product
        assert run.get("/Ac/Power") == 600.0  # + = producing, on every generation
        assert run.get("/Ac/L2/Power") == 600.0
        if device.startswith("gen1"):  # gen1 plugs measure neither voltage nor current
            assert (run.get("/Ac/L2/Voltage"), run.get("/Ac/L2/Current")) == (None, None)
        else:
            assert run.get("/Ac/L2/Current") == approx(600.0 / 230.0, abs=0.01)
            assert run.get("/Ac/L2/Voltage") == 230.0
        assert run.get("/Ac/Energy/Forward") == approx(1.5, abs=1e-3)
        assert run.get("/Ac/L2/Energy/Forward") == run.get("/Ac/Energy/Forward")
        assert run.get("/Position") == 1
        assert run.get("/StatusCode") == STATUS_RUNNING
        assert run.get("/ErrorCode") == 0
        assert run.get("/Ac/NumberOfPhases") == 1
        assert run.get("/Connected") == 1
        assert not any(p.startswith(("/Ac/L1", "/Ac/L3")) for p in run.paths())
        await run.step(clock, 60.0)  # one minute at 600 W: +10 Wh
        assert run.get("/Ac/Energy/Forward") == approx(1.51, abs=1e-3)
        inverter.load_w = -2.0  # night: the inverter idles
        await run.step(clock, 1.0)
        assert run.get("/StatusCode") == STATUS_STANDBY


async def test_unreachable_after_hold_is_status_error(bus_address, tmp_path):
    clock = SteppedClock()
    inverter = MemorySwitch(load_w=-350.0, on=True, clock=clock)
    async with (
        mini_1pm_gen3(inverter, clock=clock) as emu,
        running(pv(emu), NAME, bus_address, clock, tmp_path) as run,
    ):
        await emu.set_fault("offline")
        await run.step(clock)
        await run.step(clock)
        assert run.get("/Ac/Power") == 350.0  # held for hold_s = 2 s
        assert run.get("/StatusCode") == STATUS_RUNNING
        await run.step(clock)
        assert run.get("/Connected") == 0
        assert run.get("/StatusCode") == STATUS_ERROR
        assert run.get("/Ac/Power") is None  # invalid, never 0
        assert run.get("/Ac/Energy/Forward") is None
        assert run.get("/ErrorCode") is None
        await emu.set_fault("ok")
        await run.step(clock)
        assert run.get("/StatusCode") == STATUS_RUNNING
        assert run.get("/Ac/Power") == 350.0


async def test_energy_survives_a_plug_that_resets_its_counter(bus_address, tmp_path):
    clock = SteppedClock()
    inverter = MemorySwitch(load_w=-100.0, on=True, energy_wh=9000.0, clock=clock)
    async with ShellyGen1Emulator("SHPLG-S", switch=inverter, clock=clock) as emu:
        async with running(pv(emu), NAME, bus_address, clock, tmp_path) as run:
            assert run.get("/Ac/Energy/Forward") == approx(9.0)
        # the plug reboots and counts from 0 (gen1 plugs do); we continue from 9 kWh
        emu.relay.switch = MemorySwitch(load_w=-100.0, on=True, clock=clock)
        async with running(pv(emu), NAME, bus_address, clock, tmp_path) as run:
            await run.step(clock, 36.0)  # +1 Wh
            assert run.get("/Ac/Energy/Forward") == approx(9.001, abs=2e-4)


async def test_device_without_that_meter_is_a_config_error(bus_address, tmp_path):
    clock = SteppedClock()
    cases = [
        (pro_3em(StaticMeter(3, clock=clock), clock=clock), {}, "no power meter on channel 0"),
        (plus_1pm(MemorySwitch(clock=clock), clock=clock), {"channel": 1}, "channel 1"),
    ]
    for emulator, extra, why in cases:
        async with emulator as emu:
            with pytest.raises(Exception) as err:
                async with running(pv(emu, **extra), NAME, bus_address, clock, tmp_path):
                    pytest.fail("the feature started")  # the error ends the block before this
            assert isinstance(first_error(err.value), ConfigError)
            assert why in str(first_error(err.value))


def test_config_builds_the_feature_and_refuses_bad_values():
    text = 'schema_version = 1\n[[pv_meter]]\nname = "roof"\nenabled = true\nhost = "pv.local"\n'
    config, _ = parse_config(text)
    ((name, feature),) = create_features(config)
    assert name == "pv_meter.roof"
    assert isinstance(feature, PvMeter)
    for extra, key in [('phase = "L4"\n', "phase"), ('position = "dc"\n', "position")]:
        with pytest.raises(InvalidConfigError, match=key):
            parse_config(text + extra)
