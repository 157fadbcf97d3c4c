"""M5 time to go: estimate tables and properties, smoothing, and one run on a private D-Bus."""

from __future__ import annotations

import math

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from venus_ems.clock import SteppedClock
from venus_ems.features import create_features
from venus_ems.features.time_to_go import (
    MAX_S,
    TIMETOGO_SERVICE,
    Inputs,
    Smoother,
    TimeToGo,
    estimate,
)
from venus_ems.runtime.actuator import ActuatorRegistry
from venus_ems.runtime.config import TimeToGoConfig, parse_config
from venus_ems.runtime.feature import FeatureContext, NullSink
from venus_ems.venus import Identity, PathSpec, Service, open_monitor
from waiting import bus_watch, until

pytestmark = pytest.mark.anyio

BMS = "com.victronenergy.battery.bms"


# ----------------------------------------------------------------- estimate tables


@pytest.mark.parametrize(
    ("inputs", "seconds", "state", "target"),
    [
        # charging: time to 100 %
        (Inputs(10.0, 50.0, 20.0, capacity_ah=200.0), 36_000.0, "charging", 100.0),
        (Inputs(10.0, 50.0, None, capacity_ah=200.0), 36_000.0, "charging", 100.0),
        (Inputs(50.0, 99.0, 20.0, capacity_ah=100.0), 72.0, "charging", 100.0),
        (Inputs(5.0, 100.0, 20.0, capacity_ah=200.0), 0.0, "charging", 100.0),
        # discharging: time to the active SoC limit
        (Inputs(-20.0, 60.0, 20.0, capacity_ah=200.0), 14_400.0, "discharging", 20.0),
        (Inputs(-20.0, 60.0, 0.0, capacity_ah=200.0), 21_600.0, "discharging", 0.0),
        (Inputs(-20.0, 19.0, 20.0, capacity_ah=200.0), 0.0, "discharging", 20.0),  # below it
        # capacity in Wh (configured) with the voltage: 4000 Wh at 1000 W
        (
            Inputs(-20.0, 60.0, 20.0, capacity_ah=999.0, capacity_wh=10_000.0, voltage_v=50.0),
            14_400.0,
            "discharging",
            20.0,
        ),
        # more than 10 days: invalid
        (Inputs(-0.2, 100.0, 0.0, capacity_ah=200.0), None, "discharging", 0.0),
    ],
)
def test_estimate_table(inputs, seconds, state, target):
    est = estimate(inputs)
    assert (est.seconds, est.state, est.target_soc) == (seconds, state, target)


@pytest.mark.parametrize(
    ("inputs", "state", "why"),
    [
        (Inputs(0.05, 50.0, 20.0, capacity_ah=200.0), "idle", "idle"),
        (Inputs(-0.09, 50.0, 20.0, capacity_ah=200.0), "idle", "idle"),
        (Inputs(None, 50.0, 20.0, capacity_ah=200.0), "missing", "current"),
        (Inputs(-10.0, None, 20.0, capacity_ah=200.0), "missing", "SoC"),
        (Inputs(-10.0, 50.0, None, capacity_ah=200.0), "missing", "ActiveSocLimit"),
        (Inputs(-10.0, 50.0, 20.0), "missing", "capacity"),
        (Inputs(-10.0, 50.0, 20.0, capacity_ah=0.0), "missing", "capacity"),
        (Inputs(-10.0, 50.0, 20.0, capacity_wh=5000.0), "missing", "voltage"),
    ],
)
def test_idle_and_missing_inputs_are_invalid_never_zero(inputs, state, why):
    est = estimate(inputs)
    assert est.seconds is None
    assert est.state == state
    assert why in est.reason


def test_reason_reads_well():
    est = estimate(Inputs(-20.0, 60.0, 20.0, capacity_ah=200.0))
    assert est.reason == "discharging: 4 h 00 min to 20 %"


finite = {"allow_nan": False, "allow_infinity": False}


@given(
    current=st.floats(min_value=-500.0, max_value=500.0, **finite),
    soc=st.floats(min_value=0.0, max_value=100.0, **finite),
    limit=st.floats(min_value=0.0, max_value=100.0, **finite),
    capacity=st.floats(min_value=1.0, max_value=5000.0, **finite),
)
def test_estimate_properties(current, soc, limit, capacity):
    est = estimate(Inputs(current, soc, limit, capacity_ah=capacity))
    if abs(current) < 0.1:
        assert est.seconds is None
    if est.seconds is not None:
        assert 0.0 <= est.seconds <= MAX_S
        assert est.seconds == int(est.seconds)
        # twice the current: at most half the time (rounding aside)
        faster = estimate(Inputs(current * 2.0, soc, limit, capacity_ah=capacity))
        assert faster.seconds is not None
        assert faster.seconds <= est.seconds / 2.0 + 1.0
    assert est.state == (
        "charging" if current >= 0.1 else "discharging" if current <= -0.1 else "idle"
    )


def test_smoother():
    s = Smoother(60.0)
    assert s.update(0.0, 0.0) == 0.0
    assert s.update(10.0, 60.0) == pytest.approx(10.0 * (1.0 - math.exp(-1.0)))
    assert s.update(None, 65.0) is None  # missing resets: never a stale value
    assert s.update(-5.0, 70.0) == -5.0
    raw = Smoother(0.0)
    assert [raw.update(v, t) for t, v in enumerate([1.0, 5.0, -3.0])] == [1.0, 5.0, -3.0]


# ----------------------------------------------------------------- on a private bus


class Sink(NullSink):
    def __init__(self) -> None:
        self.messages: list[str] = []

    def service_message(self, feature, level, text) -> None:
        self.messages.append(text)


def battery(address, *, writable=True, with_ttg=True, current=-20.0):
    svc = Service(BMS, identity=Identity("BMS"), device_instance=512, address=address)
    svc.add_path("/Dc/0/Current", current, PathSpec("d"))
    svc.add_path("/Dc/0/Voltage", 52.0, PathSpec("d"))
    svc.add_path("/Soc", 60.0, PathSpec("d"))
    svc.add_path("/InstalledCapacity", 200.0, PathSpec("d"))
    if with_ttg:
        svc.add_path("/TimeToGo", None, PathSpec("d", writable=writable))
    return svc


def system(address):
    svc = Service(
        "com.victronenergy.system", identity=Identity("systemcalc"), device_instance=0,
        address=address,
    )  # fmt: skip
    svc.add_path("/Control/ActiveSocLimit", 20.0, PathSpec("d"))
    svc.add_path("/Dc/Battery/BatteryService", BMS, PathSpec("s"))
    return svc


async def test_publishes_on_its_service_and_on_a_writable_battery_path(bus_address):
    clock = SteppedClock()
    bms, sys_svc = battery(bus_address), system(bus_address)
    feature = TimeToGo(TimeToGoConfig(enabled=True, smoothing_s=0.0, update_interval_s=5.0))
    async with (
        bms, sys_svc, open_monitor(bus_address) as mon, bus_watch(bus_address) as bus,
        anyio.create_task_group() as tg,
    ):  # fmt: skip
        await until(lambda: mon.service(BMS) is not None and mon.service(sys_svc.name) is not None)
        ctx = FeatureContext(
            "time_to_go", clock, mon, ActuatorRegistry(tg), bus_address=bus_address
        )
        await tg.start(lambda task_status: feature.run(ctx, task_status=task_status))
        await until(lambda: mon.get(TIMETOGO_SERVICE, "/TimeToGo") == 14_400.0)
        assert mon.get(TIMETOGO_SERVICE, "/State") == "discharging"
        assert mon.get(TIMETOGO_SERVICE, "/Battery") == BMS
        assert mon.get(TIMETOGO_SERVICE, "/TargetSoc") == 20.0
        assert bms["/TimeToGo"] == 14_400.0  # the battery had none: written there too
        await until(lambda: mon.get(TIMETOGO_SERVICE, "/WrittenToBattery") == 1)
        assert ctx.status.decision == "discharging: 4 h 00 min to 20 %"

        bms["/Dc/0/Current"] = 10.0  # charging: 80 Ah to 100 %
        await until(lambda: mon.get(BMS, "/Dc/0/Current") == 10.0)
        await clock.advance(5.0)
        await until(lambda: mon.get(TIMETOGO_SERVICE, "/TimeToGo") == 28_800.0)
        await until(lambda: bms["/TimeToGo"] == 28_800.0)

        bms["/Dc/0/Current"] = 0.0  # idle: invalid on both, never 0
        await until(lambda: mon.get(BMS, "/Dc/0/Current") == 0.0)
        await clock.advance(5.0)
        await until(lambda: mon.get(TIMETOGO_SERVICE, "/State") == "idle")
        assert mon.get(TIMETOGO_SERVICE, "/TimeToGo") is None
        await until(lambda: bms["/TimeToGo"] is None)

        bms["/Dc/0/Current"] = -20.0
        await until(lambda: mon.get(BMS, "/Dc/0/Current") == -20.0)
        await clock.advance(5.0)
        await until(lambda: bms["/TimeToGo"] == 14_400.0)

        bms["/TimeToGo"] = 1234.0  # the BMS starts reporting its own: we step back
        await until(lambda: mon.get(BMS, "/TimeToGo") == 1234.0)
        await clock.advance(5.0)
        await until(lambda: mon.get(TIMETOGO_SERVICE, "/State") == "bms")
        assert mon.get(TIMETOGO_SERVICE, "/TimeToGo") is None
        await clock.advance(5.0)
        await bus.settle()  # any write would have arrived by now
        assert bms["/TimeToGo"] == 1234.0  # never overwritten

        bms["/TimeToGo"] = None  # and stops again: we take over
        await until(lambda: mon.get(BMS, "/TimeToGo") is None)
        await clock.advance(5.0)
        await until(lambda: bms["/TimeToGo"] == 14_400.0)
        tg.cancel_scope.cancel()
    assert bms["/TimeToGo"] is None  # cleared on the way out: no stale value stays behind


async def test_read_only_or_absent_battery_path_is_left_alone(bus_address):
    clock = SteppedClock()
    sink = Sink()
    ro = battery(bus_address, writable=False)
    feature = TimeToGo(TimeToGoConfig(enabled=True, smoothing_s=30.0))
    async with ro, system(bus_address), open_monitor(bus_address) as mon:
        async with bus_watch(bus_address) as bus, anyio.create_task_group() as tg:
            await until(lambda: mon.service(BMS) is not None)
            ctx = FeatureContext(
                "time_to_go", clock, mon, ActuatorRegistry(tg), bus_address=bus_address, sink=sink
            )
            await tg.start(lambda task_status: feature.run(ctx, task_status=task_status))
            await until(lambda: mon.get(TIMETOGO_SERVICE, "/TimeToGo") == 14_400.0)
            await until(lambda: len(sink.messages) == 1)
            assert ro["/TimeToGo"] is None
            assert mon.get(TIMETOGO_SERVICE, "/WrittenToBattery") == 0
            assert "not writable (SetValue answered 1)" in sink.messages[0]
            # smoothing: a step to -40 A moves the estimate only part of the way
            ro["/Dc/0/Current"] = -40.0
            await until(lambda: mon.get(BMS, "/Dc/0/Current") == -40.0)
            await clock.advance(5.0)
            await until(lambda: mon.get(TIMETOGO_SERVICE, "/TimeToGo") != 14_400.0)
            smoothed = -20.0 - 20.0 * (1.0 - math.exp(-5.0 / 30.0))
            assert mon.get(TIMETOGO_SERVICE, "/Current") == pytest.approx(smoothed)
            assert mon.get(TIMETOGO_SERVICE, "/TimeToGo") == round(80.0 / -smoothed * 3600.0)
            await clock.advance(10.0)
            await bus.settle()
            assert len(sink.messages) == 1  # said once, not every tick
            tg.cancel_scope.cancel()

    absent = battery(bus_address, with_ttg=False, current=None)
    async with absent, system(bus_address), open_monitor(bus_address) as mon:
        async with anyio.create_task_group() as tg:
            await until(lambda: mon.service(BMS) is not None)
            ctx = FeatureContext(
                "time_to_go", clock, mon, ActuatorRegistry(tg), bus_address=bus_address, sink=sink
            )
            await tg.start(lambda task_status: feature.run(ctx, task_status=task_status))
            await until(lambda: mon.get(TIMETOGO_SERVICE, "/State") == "missing")
            assert mon.get(TIMETOGO_SERVICE, "/TimeToGo") is None
            assert ctx.status.decision == "no battery current"
            assert len(sink.messages) == 1  # no write was tried on a path that does not exist
            tg.cancel_scope.cancel()


async def test_no_battery_at_all(bus_address):
    clock = SteppedClock()
    feature = TimeToGo(TimeToGoConfig(enabled=True))
    async with open_monitor(bus_address) as mon, anyio.create_task_group() as tg:
        ctx = FeatureContext(
            "time_to_go", clock, mon, ActuatorRegistry(tg), bus_address=bus_address
        )
        await tg.start(lambda task_status: feature.run(ctx, task_status=task_status))
        await until(lambda: mon.get(TIMETOGO_SERVICE, "/State") == "no battery")
        assert mon.get(TIMETOGO_SERVICE, "/TimeToGo") is None
        tg.cancel_scope.cancel()


def test_registry_builds_it():
    config, _ = parse_config(
        "schema_version = 1\n[general]\nlog_console = false\n"
        "[time_to_go]\nenabled = true\ncapacity_wh = 10000.0\n"
    )
    ((name, feature),) = create_features(config)
    assert name == "time_to_go"
    assert isinstance(feature, TimeToGo)
    assert feature.config.capacity_wh == 10_000.0
