"""The meter features work with any driver that has their protocol: here the blueprint driver.

The same GridMeter that reads Shelly meters runs, unchanged, on the blueprint driver named in
its config: values, identity, counters, hold-then-invalid. A PV meter on a driver without a
``PowerMeter`` is a configuration error, found by protocol, not by product name.
"""

from __future__ import annotations

import anyio
import pytest
from test_grid_meter_harness import running

from blueprint_device import BlueprintChannel, BlueprintDevice, BlueprintState
from venus_ems.clock import SteppedClock
from venus_ems.errors import ConfigError
from venus_ems.features import create_features
from venus_ems.features.grid_meter import GridMeter, service_name
from venus_ems.features.pv_meter import PvMeter
from venus_ems.features.pv_meter import service_name as pv_service_name
from venus_ems.runtime.config import GridMeterConfig, PvMeterConfig, parse_config
from venus_ems.runtime.supervisor import first_error

pytestmark = pytest.mark.anyio
approx = pytest.approx
NAME = service_name("bp")


def state() -> BlueprintState:
    return BlueprintState(
        channels=[
            BlueprintChannel(1500.0, 231.0, energy_in_wh=4000.0, energy_out_wh=0.0),
            BlueprintChannel(-300.0, 229.0, energy_in_wh=0.0, energy_out_wh=900.0),
        ]
    )


def grid(dev, **kw) -> GridMeter:
    base = {"name": "bp", "enabled": True, "driver": "blueprint", "host": dev.host}
    base |= {"timeout_s": 0.3, "hold_s": 2.0, "phases": 1}
    return GridMeter(GridMeterConfig.model_validate({**base, **kw}))


async def test_grid_meter_on_the_blueprint_driver(bus_address, tmp_path):
    clock = SteppedClock()
    async with (
        BlueprintDevice(state(), clock=clock) as dev,
        running(grid(dev), NAME, bus_address, clock, tmp_path) as run,
    ):
        assert run.get("/ProductName") == "Blueprint meter BP-3"
        assert run.get("/Serial") == "BP0001"
        assert run.get("/FirmwareVersion") == "1.2.0"
        assert run.get("/Ac/Power") == 1500.0
        assert run.get("/Ac/L1/Voltage") == 231.0
        assert run.get("/Ac/L1/Energy/Forward") == approx(4.0)
        assert run.get("/Connected") == 1
        assert run.get("/NrOfPhases") == 1


async def test_two_channels_mapped_and_inverted(bus_address, tmp_path):
    clock = SteppedClock()
    channels = [{"channel": 0, "phase": "L1"}, {"channel": 1, "phase": "L2", "invert": True}]
    cfg = {"phases": 3, "channels": [*channels, {"channel": 2, "phase": "L3"}]}
    three = state()
    three.channels.append(BlueprintChannel(0.0))
    async with (
        BlueprintDevice(three, clock=clock) as dev,
        running(grid(dev, **cfg), NAME, bus_address, clock, tmp_path) as run,
    ):
        assert run.get("/Ac/L2/Power") == 300.0  # the CT on channel 1 was fitted backwards
        assert run.get("/Ac/Power") == approx(1800.0)
        assert run.get("/Ac/L2/Energy/Forward") == approx(0.9)  # its export is our import
        dev.state.channels[0].energy_in_wh = 4010.0
        await run.step(clock)
        assert run.get("/Ac/L1/Energy/Forward") == approx(4.01)


async def test_hold_then_invalid_then_recover(bus_address, tmp_path):
    clock = SteppedClock()
    async with (
        BlueprintDevice(state(), clock=clock) as dev,
        running(grid(dev), NAME, bus_address, clock, tmp_path) as run,
    ):
        await dev.set_fault("http500")
        await run.step(clock)
        assert run.get("/Ac/Power") == 1500.0  # held within hold_s
        await run.step(clock)
        await run.step(clock)
        assert run.get("/Connected") == 0
        assert run.get("/Ac/Power") is None  # invalid, never 0 W
        assert run.get("/Ac/Energy/Forward") is None
        await dev.set_fault("ok")
        await run.step(clock)
        assert run.get("/Connected") == 1
        assert run.get("/Ac/Power") == 1500.0


async def test_a_driver_without_the_protocol_is_a_config_error(bus_address, tmp_path):
    clock = SteppedClock()
    async with BlueprintDevice(state(), clock=clock) as dev:
        pv = PvMeter(
            PvMeterConfig.model_validate(
                {"name": "pv", "enabled": True, "driver": "blueprint", "host": dev.host}
            )
        )
        with pytest.raises(Exception) as err:
            async with running(pv, pv_service_name("pv"), bus_address, clock, tmp_path):
                await anyio.sleep(5)
    error = first_error(err.value)
    assert isinstance(error, ConfigError)
    assert "Blueprint meter BP-3" in str(error)
    assert "no power meter on channel 0" in str(error)


def test_the_config_builds_a_meter_on_the_named_driver():
    text = (
        'schema_version = 1\n[[grid_meter]]\nname = "bp"\nenabled = true\n'
        'driver = "blueprint"\nhost = "10.0.0.9"\n'
    )
    config, _ = parse_config(text)
    ((_, feature),) = create_features(config)
    assert isinstance(feature, GridMeter)
    assert feature.config.driver == "blueprint"
    conn = feature.connection()
    assert (conn.host, conn.options) == ("10.0.0.9", {})
