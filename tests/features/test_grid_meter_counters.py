"""Energy counters: saldating maths, reset-safe tracking, atomic persistence, restarts, names."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_grid_meter_harness import running, until

from venus_ems.clock import SteppedClock
from venus_ems.features.counters import (
    FORMAT,
    CounterFile,
    EnergyCounters,
    split_energy,
)
from venus_ems.features.grid_meter import GridMeter, service_name
from venus_ems.runtime.config import GridMeterConfig
from venus_ems.sim.devices import PhaseReading, StaticMeter, pro_3em

pytestmark = pytest.mark.anyio
approx = pytest.approx
NAME = service_name("house")

powers = st.floats(min_value=-50_000, max_value=50_000, allow_nan=False)


@given(powers, powers, st.floats(min_value=0.001, max_value=60.0))
def test_split_energy_conserves_the_net_energy(p0, p1, dt):
    imported, exported = split_energy(p0, p1, dt)
    assert imported >= 0
    assert exported >= 0
    net = (p0 + p1) / 2 * dt / 3_600_000
    assert imported - exported == approx(net, abs=1e-12)
    gross = (abs(p0) + abs(p1)) / 2 * dt / 3_600_000
    assert imported + exported <= gross + 1e-12


def test_split_energy_splits_at_the_zero_crossing():
    # 1000 W -> -1000 W over 2 s: 1 s importing (mean 500 W), 1 s exporting
    assert split_energy(1000.0, -1000.0, 2.0) == approx((500 / 3.6e6, 500 / 3.6e6))
    assert split_energy(600.0, 600.0, 3600.0) == approx((0.6, 0.0))
    assert split_energy(-600.0, -600.0, 3600.0) == approx((0.0, 0.6))
    assert split_energy(5.0, 7.0, 0.0) == (0.0, 0.0)


def test_tracking_device_counters():
    c = EnergyCounters()
    assert c.track("L1/forward", 100.0) == 0.0  # first value: start at the device's counter
    assert c.get("L1/forward") == 100.0
    assert c.track("L1/forward", 100.5) == approx(0.5)
    assert c.track("L1/forward", 100.495) == 0.0  # jitter, not a reset
    assert c.track("L1/forward", 100.6) == approx(0.1)
    assert c.track("L1/forward", 0.2) == approx(0.2)  # the device reset its counter
    assert c.get("L1/forward") == approx(100.8)
    assert c.resets == 1
    c.set_source("another-shelly")  # replaced device: new baseline, no jump either way
    assert c.track("L1/forward", 9000.0) == 0.0
    assert c.get("L1/forward") == approx(100.8)
    assert c.track("L1/forward", None) == 0.0
    with pytest.raises(ValueError, match="cannot add"):
        c.add("forward", -1.0)
    with pytest.raises(ValueError, match="cannot add"):
        c.add("forward", math.nan)


def test_counter_file_round_trip_and_atomic_write(tmp_path):
    file = CounterFile(tmp_path / "sub" / "c.json")
    assert file.load().counters is None  # no file: a fresh start, no problem
    c = EnergyCounters()
    c.set_source("AABB|0L1+")
    c.track("L1/forward", 12.5)
    c.add("forward", 3.25)
    file.save(c)
    assert not file.tmp.exists()
    loaded = file.load()
    assert loaded.problem == ""
    assert loaded.counters is not None
    assert loaded.counters.values == c.values
    assert loaded.counters.raw == c.raw
    assert loaded.counters.source == "AABB|0L1+"
    # a temp file left by a crash during a write does not matter
    file.tmp.write_text("{half")
    assert file.load().counters.values == c.values


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{half", "corrupt"),
        ("[]", "not a venus-ems energy counters file"),
        (json.dumps({"format": FORMAT, "version": 9}), "unknown version"),
        (
            json.dumps({"format": FORMAT, "version": 1, "counters": {"forward": -1}, "raw": {}}),
            ">= 0",
        ),
        (
            json.dumps({"format": FORMAT, "version": 1, "counters": {"forward": "1"}, "raw": {}}),
            ">= 0",
        ),
        (json.dumps({"format": FORMAT, "version": 1, "counters": [], "raw": {}}), "not an object"),
    ],
)
def test_a_bad_counter_file_is_kept_aside_and_reported(tmp_path, text, why):
    path = tmp_path / "c.json"
    path.write_text(text)
    result = CounterFile(path).load()
    assert result.counters is None
    assert why in result.problem
    assert "starting from the device counters" in result.problem
    assert not path.exists()
    assert (tmp_path / "c.json.corrupt").read_text() == text  # nothing is lost


def grid(emu, **kw) -> GridMeter:
    base = {"name": "house", "enabled": True, "host": emu.url.removeprefix("http://")}
    return GridMeter(GridMeterConfig.model_validate({**base, **kw}), save_interval_s=5.0)


def meter(clock):
    return StaticMeter(
        [PhaseReading.of(p, energy_forward_wh=2000.0) for p in (3600.0, 0.0, 0.0)], clock=clock
    )


async def test_counters_continue_after_a_restart(bus_address, tmp_path):
    clock = SteppedClock()
    source = meter(clock)
    async with pro_3em(source, clock=clock) as emu:
        async with running(grid(emu, metering="net"), NAME, bus_address, clock, tmp_path) as run:
            for _ in range(10):
                await run.step(clock)
            stopped_at = run.get("/Ac/Energy/Forward")
        saved = json.loads((tmp_path / "grid_meter_house.json").read_text())
        assert saved["counters"]["forward"] == approx(stopped_at)  # saved on shutdown
        assert stopped_at == approx(6.0 + 0.01)
        # the meter keeps running while we are stopped; a net counter cannot know about that
        await clock.advance(100.0)
        async with running(grid(emu, metering="net"), NAME, bus_address, clock, tmp_path) as run:
            assert run.get("/Ac/Energy/Forward") == approx(stopped_at)
            await run.step(clock)
            assert run.get("/Ac/Energy/Forward") == approx(stopped_at + 0.001)
            # per-phase counters follow the device, so they include the time we were down
            assert run.get("/Ac/L1/Energy/Forward") == approx(2.0 + 0.111, abs=1e-6)


async def test_corrupt_counter_file_at_start(bus_address, tmp_path):
    clock = SteppedClock()
    path = tmp_path / "counters.json"
    path.write_text('{"format": "venus-ems energy counters", "version": 1, "counters": {"forwa')
    async with (
        pro_3em(meter(clock), clock=clock) as emu,
        running(grid(emu, counter_file=str(path)), NAME, bus_address, clock, tmp_path) as run,
    ):
        assert run.get("/Ac/Energy/Forward") == approx(6.0)  # the device counters
        assert any("corrupt" in text and "kept as" in text for _, text in run.sink.messages)
        assert (tmp_path / "counters.json.corrupt").exists()
        await run.step(clock, 5.0)
    assert json.loads(path.read_text())["counters"]["forward"] == approx(6.005)


async def test_a_failing_save_is_reported_and_polling_goes_on(bus_address, tmp_path):
    clock = SteppedClock()
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    async with (
        pro_3em(meter(clock), clock=clock) as emu,
        running(grid(emu), NAME, bus_address, clock, blocker) as run,
    ):
        await until(lambda: any("cannot save" in t for _, t in run.sink.messages))
        await run.step(clock, 1.0)
        assert run.get("/Connected") == 1


async def test_custom_name_is_kept_in_localsettings(bus_address, tmp_path):
    clock = SteppedClock()
    settings = tmp_path / "settings.json"
    async with pro_3em(meter(clock), clock=clock) as emu:
        feature = grid(emu, custom_name="Grid")
        async with running(feature, NAME, bus_address, clock, tmp_path, settings=settings) as run:
            assert run.get("/CustomName") == "Grid"
            assert await run.mon.set_value(NAME, "/CustomName", "Netz") == 0
            path = "/Settings/VenusEms/GridMeter/house/CustomName"
            await until(lambda: run.settings.get(path) == "Netz")
            run.settings.set(path, "Hausanschluss")  # e.g. the GUI edits the setting itself
            await until(lambda: run.get("/CustomName") == "Hausanschluss")
        async with running(
            grid(emu, custom_name="Grid"), NAME, bus_address, clock, tmp_path, settings=settings
        ) as run:
            assert run.get("/CustomName") == "Hausanschluss"
        # no localsettings on the bus: the configured name
        async with running(
            grid(emu, custom_name="Grid"), NAME, bus_address, clock, tmp_path
        ) as run:
            assert run.get("/CustomName") == "Grid"
