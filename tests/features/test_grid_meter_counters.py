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
    RESERVE_KWH,
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


def test_nothing_is_published_above_the_saved_ceiling():
    c = EnergyCounters()
    c.add("forward", 1.0)
    assert c.published("forward") is None  # never saved: invalid, not 0 and not unsaved
    assert c.over_ceiling()
    snap = c.snapshot()
    assert snap.ceiling == {"forward": approx(1.0 + RESERVE_KWH)}
    c.saved(snap)
    assert c.published("forward") == 1.0
    c.add("forward", RESERVE_KWH / 2)
    assert not c.over_ceiling()
    assert c.published("forward") == approx(1.005)  # within the reserve: live
    c.add("forward", RESERVE_KWH)
    assert c.over_ceiling()
    assert c.published("forward") == approx(1.01)  # held at the ceiling until saved
    c.saved(c.snapshot())
    assert c.published("forward") == approx(1.015)


def test_after_a_restart_the_saved_ceiling_is_a_floor():
    c = EnergyCounters()
    c.add("forward", 2.0)
    c.saved(c.snapshot())
    on_disk = json.loads(json.dumps(c.to_json()))
    c.add("forward", 0.008)  # published, then the process dies before the next save
    last_published = c.published("forward")
    restarted = EnergyCounters.from_json(on_disk)
    assert restarted.values["forward"] == 2.0  # what was counted when it was saved
    assert restarted.get("forward") == approx(2.01)  # but never below what may have gone out
    assert restarted.get("forward") >= last_published
    restarted.add("forward", 0.004)
    assert restarted.get("forward") == approx(2.01)  # on the floor until the count catches up
    restarted.add("forward", 0.01)
    assert restarted.get("forward") == approx(2.014)


def test_a_file_without_ceilings_starts_at_its_counters():
    doc = {"format": FORMAT, "version": 1, "source": "", "counters": {"forward": 3.0}, "raw": {}}
    c = EnergyCounters.from_json(doc)
    assert (c.get("forward"), c.published("forward")) == (3.0, 3.0)


def test_a_clean_shutdown_saves_the_exact_value():
    c = EnergyCounters()
    c.add("forward", 2.0)
    c.saved(c.snapshot())
    c.add("forward", 0.003)
    final = c.snapshot(0.0)
    assert final.ceiling == {"forward": approx(2.003)}
    assert EnergyCounters.from_json(final.to_json()).get("forward") == approx(2.003)


ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.floats(min_value=0.0, max_value=0.05)),
        st.tuples(st.just("track"), st.floats(min_value=0.0, max_value=100.0)),
        st.tuples(st.just("poll"), st.just(0.0)),
        st.tuples(st.just("save"), st.just(0.0)),
        st.tuples(st.just("stop"), st.just(0.0)),
        st.tuples(st.just("kill"), st.just(0.0)),
    ),
    max_size=60,
)


@given(ops)
def test_published_values_never_go_back_whatever_kills_the_process(steps):
    # "disk" is the last file written; "kill" restarts from it at any point, "stop" first saves
    # the exact value; "poll" is what the meter feature does: save first if over the ceiling
    disk = None
    c = EnergyCounters()
    seen: dict[str, float] = {}

    def publish():
        for key in ("forward", "L1/forward"):
            value = c.published(key)
            if value is not None:
                assert value >= seen.get(key, 0.0) - 1e-12, (key, value, seen)
                seen[key] = value

    for op, x in steps:
        if op == "add":
            c.add("forward", x)
        elif op == "track":
            c.track("L1/forward", x)  # a device counter, resets included
        elif op in ("poll", "save"):
            if op == "save" or c.over_ceiling():
                snap = c.snapshot()
                disk = json.loads(json.dumps(snap.to_json()))
                c.saved(snap)
        elif op in ("stop", "kill"):
            if op == "stop":
                disk = json.loads(json.dumps(c.snapshot(0.0).to_json()))
            c = EnergyCounters() if disk is None else EnergyCounters.from_json(disk)
        publish()


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
        ("[" * 200_000 + "]" * 200_000, "corrupt"),  # hostile nesting: RecursionError inside
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


async def test_after_a_kill_the_published_counters_continue_upwards(bus_address, tmp_path):
    clock = SteppedClock()
    source = meter(clock)  # 3600 W on L1: 1 Wh per second
    path = tmp_path / "grid_meter_house.json"
    async with pro_3em(source, clock=clock) as emu:
        async with running(grid(emu, metering="net"), NAME, bus_address, clock, tmp_path) as run:
            for _ in range(17):
                await run.step(clock)
            killed = path.read_bytes()  # the file as kill -9 would leave it now
            published = (run.get("/Ac/Energy/Forward"), run.get("/Ac/L1/Energy/Forward"))
        path.write_bytes(killed)  # undo the save of the clean shutdown
        on_disk = json.loads(killed)
        counted, floor = on_disk["counters"]["forward"], on_disk["ceiling"]["forward"]
        assert published[0] == approx(6.0 + 0.017)
        assert counted < published[0] <= floor <= counted + RESERVE_KWH + 1e-9
        async with running(grid(emu, metering="net"), NAME, bus_address, clock, tmp_path) as run:
            after = (run.get("/Ac/Energy/Forward"), run.get("/Ac/L1/Energy/Forward"))
            assert after[0] == approx(floor)  # the floor saved before the kill: not back
            assert after[1] >= published[1]  # device counters continue from the saved raw value
            steps = 0
            while run.get("/Ac/Energy/Forward") == approx(floor):  # on the floor until the
                await run.step(clock)  # count catches up: what the kill cost, at most the reserve
                steps += 1
            assert steps <= round(RESERVE_KWH / 0.001) + 1
            before = run.get("/Ac/Energy/Forward")
            await run.step(clock)
            assert run.get("/Ac/Energy/Forward") == approx(before + 0.001)


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
