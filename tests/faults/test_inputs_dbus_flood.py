"""Floods on D-Bus against the monitor: never-seen paths, new services, huge values, bursts.

A local client (``venus_ems.sim.venus.flood.BusFlood``) claims ``com.victronenergy.*`` names and
announces paths nobody asked for, as fast as the bus takes them. The monitor must keep what it
already watches up to date (no loss, no disconnect) while what it keeps for the flood stays
within its budget. Real dbus-daemon; small limits so the bounds are reached quickly.
"""

from __future__ import annotations

import logging

import anyio
import pytest
from dbus_fast import Message, MessageType, Variant

from venus_ems.sim.venus.flood import BusFlood
from venus_ems.venus import Identity, MonitorLimits, PathSpec, Service, open_monitor
from venus_ems.venus.budget import ENTRY_BYTES
from venus_ems.venus.bus import call, writer_of
from waiting import until

pytestmark = pytest.mark.anyio
REAL = "com.victronenergy.battery.real"
FLOOD = "com.victronenergy.flood"
LIMITS = MonitorLimits(service_bytes=64 << 10, total_bytes=256 << 10, max_services=20)


def battery(address: str) -> Service:
    svc = Service(REAL, identity=Identity("BMS"), device_instance=512, address=address)
    svc.add_path("/Soc", 50.0, PathSpec("d"))
    svc.add_path("/CustomName", "bank", PathSpec("s"))
    for i in range(100):
        svc.add_path(f"/Burst/{i}", 0.0, PathSpec("d"))
    return svc


async def settled(sender, receiver) -> None:
    """Once this returns, ``receiver`` has handled every signal ``sender`` sent before."""
    for bus in (sender, receiver):  # a round trip each: the bus daemon keeps per-link order
        await call(
            bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetId"
        )


def warnings_about(caplog, text: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and text in r.getMessage()
    ]


async def test_flood_of_never_seen_paths_costs_at_most_the_budget(bus_address, caplog):
    async with (
        battery(bus_address) as real,
        open_monitor(bus_address, limits=LIMITS) as mon,
        BusFlood(bus_address) as flood,
    ):
        await until(lambda: mon.service(REAL) is not None)
        await flood.claim(FLOOD)
        await until(lambda: mon.service(FLOOD) is not None)
        kept_before = len(mon.service(REAL).values)

        async def keep_changing() -> None:
            for i in range(200):
                real["/Soc"] = float(i)
                await anyio.sleep(0.002)

        async with anyio.create_task_group() as tg:
            tg.start_soon(keep_changing)
            await flood.paths(30_000, batch=500)  # ItemsChanged batches
            await flood.paths(3_000, per_item=True, tag="G")  # one PropertiesChanged each
        real["/Soc"] = 99.5
        await until(lambda: mon.get(REAL, "/Soc") == 99.5)  # the watched value is not lost
        flooded = mon.service(FLOOD)
        assert flooded is not None
        assert flood.bus.connected
        assert mon.bus.connected
        # what the flood got: the service budget, no more
        assert flooded.cost <= LIMITS.service_bytes
        assert len(flooded.values) <= LIMITS.service_bytes // ENTRY_BYTES
        assert len(flooded.values) > LIMITS.service_bytes // (ENTRY_BYTES + 20)  # and it was used
        assert mon.budget.ignored_paths >= 33_000 - len(flooded.values)
        assert mon.budget.cost <= LIMITS.total_bytes
        assert len(mon.service(REAL).values) == kept_before  # nothing of the real one dropped
        assert len(warnings_about(caplog, FLOOD)) == 1  # one warning, not 33 000


async def test_flood_of_services_is_capped_and_gives_back_its_budget(bus_address, caplog):
    async with (
        battery(bus_address),
        open_monitor(bus_address, limits=LIMITS) as mon,
    ):
        await until(lambda: mon.service(REAL) is not None)
        baseline = mon.budget.cost
        async with BusFlood(bus_address) as flood:
            await flood.services(60, paths=40)
            await until(lambda: mon.budget.ignored_services == 60 - (LIMITS.max_services - 1), 10)
            assert len(mon.services()) <= LIMITS.max_services
            assert mon.budget.cost <= LIMITS.total_bytes
            assert len(warnings_about(caplog, "services")) == 1
            # the real service still answers and updates
            assert mon.get(REAL, "/CustomName") == "bank"
        # the flood's names went with its connection: everything it was charged comes back
        await until(lambda: mon.budget.cost == baseline, 10)
        late = Service(
            "com.victronenergy.grid.late", identity=Identity("meter"), device_instance=30,
            address=bus_address,
        )  # fmt: skip
        late.add_path("/Ac/Power", 123.0, PathSpec("d"))
        async with late:  # a service that comes after the flood is watched as usual
            await until(lambda: mon.get("com.victronenergy.grid.late", "/Ac/Power") == 123.0)
        await until(lambda: mon.budget.cost == baseline)


async def test_total_budget_protects_paths_a_selection_declares(bus_address):
    limits = MonitorLimits(service_bytes=1 << 20, total_bytes=32 << 10, max_services=20)
    watch = {FLOOD: None, REAL: ["/Soc"]}
    async with (
        battery(bus_address) as real,
        open_monitor(bus_address, watch=watch, limits=limits) as mon,
        BusFlood(bus_address) as flood,
    ):
        await until(lambda: mon.service(REAL) is not None)
        await flood.paths(5_000)
        await until(lambda: mon.budget.ignored_paths > 0)
        assert mon.budget.cost <= limits.total_bytes
        real["/Soc"] = 12.5  # declared: kept whatever the flood did to the budget
        await until(lambda: mon.get(REAL, "/Soc") == 12.5)
        mon.watch_path(REAL, "/CustomName", "bank")  # declared later: kept too
        real["/CustomName"] = "house bank"
        await until(lambda: mon.get(REAL, "/CustomName") == "house bank")
        assert set(mon.service(REAL).values) == {"/Soc", "/CustomName"}


async def test_huge_values_are_kept_as_invalid(bus_address, caplog):
    limits = MonitorLimits(service_bytes=256 << 10, total_bytes=1 << 20, max_value_bytes=4096)
    async with (
        battery(bus_address) as real,
        open_monitor(bus_address, limits=limits) as mon,
    ):
        await until(lambda: mon.get(REAL, "/CustomName") == "bank")
        real["/CustomName"] = "x" * 5000
        await until(lambda: mon.get(REAL, "/CustomName") is None)
        real["/CustomName"] = "y" * 4000  # within the limit again
        await until(lambda: mon.get(REAL, "/CustomName") == "y" * 4000)
        cost = mon.service(REAL).cost
        real["/CustomName"] = "ok"
        await until(lambda: mon.get(REAL, "/CustomName") == "ok")
        assert mon.service(REAL).cost == cost - 3998  # the charge follows the value's size
        assert len(warnings_about(caplog, "kept as invalid")) == 1


async def test_burst_and_flood_together_lose_no_final_value(private_bus):
    address = private_bus.address
    async with (
        battery(address) as real,
        open_monitor(address, limits=LIMITS) as mon,
        BusFlood(address) as flood,
    ):
        await until(lambda: mon.service(REAL) is not None)
        paths = [f"/Burst/{i}" for i in range(100)]

        async def burst() -> None:
            for rnd in range(1, 201):
                for p in paths:
                    real[p] = float(rnd)  # per-item PropertiesChanged
                real.update(dict.fromkeys(paths[:10], rnd + 0.5))  # batched ItemsChanged
                await anyio.sleep(0)

        async with anyio.create_task_group() as tg:
            tg.start_soon(burst)
            tg.start_soon(flood.paths, 20_000)
        await until(
            lambda: all(
                mon.get(REAL, p) == (200.5 if i < 10 else 200.0) for i, p in enumerate(paths)
            ),
            15,
        )
        assert real.bus.connected
        assert mon.bus.connected
        assert mon.budget.cost <= LIMITS.total_bytes


async def test_signals_from_a_stranger_change_nothing(bus_address):
    """Signals with the BusItem shape from a connection that owns no watched name are ignored."""
    async with (
        battery(bus_address),
        open_monitor(bus_address, limits=LIMITS) as mon,
        BusFlood(bus_address) as stranger,
    ):
        await until(lambda: mon.service(REAL) is not None)
        cost = mon.budget.cost
        writer = writer_of(stranger.bus)
        for i in range(2000):
            writer.write(
                Message(
                    message_type=MessageType.SIGNAL,
                    path="/Soc",
                    interface="com.victronenergy.BusItem",
                    member="PropertiesChanged",
                    signature="a{sv}",
                    body=[{"Value": Variant("d", float(i))}],
                )
            )
        await writer.drained(empty=True)
        await settled(stranger.bus, mon.bus)
        assert mon.get(REAL, "/Soc") == 50.0
        assert mon.budget.cost == cost


# ----------------------------------------------------------------------------- the daemon

FLOOD_PATHS = 400_000
FLOOD_SERVICES = 600
FLOOD_ALLOWANCE_MB = 40.0
"""How far a flood may raise the daemon's peak resident set: the default budget (16 MiB of
estimated paths) plus what decoding one signal costs, with room for allocator slack."""


def exporter_config(mqtt_port: int) -> str:
    return f"""
[mqtt]
enabled = true
host = "127.0.0.1"
port = {mqtt_port}
reconnect_initial_s = 0.05
reconnect_max_s = 0.2
[mqtt_exporter]
enabled = true
rate_limit_s = 0.0
[[mqtt_exporter.exports]]
service = "{REAL}"
path = "/Soc"
topic = "site/soc"
"""


async def test_the_daemon_stays_small_and_current_under_floods(
    bus_address, mosquitto, tmp_path, capsys
):
    """``venus-ems run`` exports a watched value to MQTT while a local client floods the bus."""
    from aiomqtt import Client  # noqa: PLC0415
    from inputs_helpers import Daemon, daemon_config, wait_alive  # noqa: PLC0415

    received: list[str] = []

    async def subscribe(task_status=anyio.TASK_STATUS_IGNORED) -> None:
        async with Client("127.0.0.1", mosquitto.port) as client:
            await client.subscribe("site/soc")
            task_status.started()
            async for message in client.messages:  # one at a time, as they arrive
                received.append(bytes(message.payload).decode())  # noqa: PERF401

    config = daemon_config(tmp_path, exporter_config(mosquitto.port))
    async with battery(bus_address) as real, anyio.create_task_group() as tg:
        await tg.start(subscribe)
        with Daemon(tmp_path, bus_address, config) as d:
            real["/Soc"] = 1.5
            await wait_alive(d, lambda: received and received[-1] == "1.5", 30)
            steady = d.rss_mb()
            figures = {}
            for kind in ("paths", "services"):
                d.reset_peak()
                async with BusFlood(bus_address, prefix=f"{FLOOD}{kind}") as flood:
                    value = 10.0 if kind == "paths" else 20.0

                    async def keep_changing(base: float) -> None:
                        for i in range(100):
                            real["/Soc"] = base + i
                            await anyio.sleep(0.01)

                    async with anyio.create_task_group() as inner:
                        inner.start_soon(keep_changing, value)
                        if kind == "paths":
                            await flood.paths(FLOOD_PATHS, batch=1000)
                        else:
                            await flood.services(FLOOD_SERVICES, paths=40)
                    real["/Soc"] = value + 0.25  # the final value must come through
                    await wait_alive(d, lambda v=value: received[-1] == str(v + 0.25), 30)
                    # values that changed during the flood came through too (coalescing may
                    # skip some, never all)
                    during = {float(x) for x in received} & {value + i for i in range(100)}
                    assert len(during) > 10, kind
                    figures[kind] = (d.peak_mb(), d.rss_mb())
            after = d.rss_mb()
            log = d.log_text()
        tg.cancel_scope.cancel()
    assert "Traceback" not in log
    assert "bytes of paths: ignoring its new ones" in log  # one warning said what happened
    assert "services or" in log
    with capsys.disabled():
        print(f"\ndaemon steady RSS {steady:.1f} MB; after both floods {after:.1f} MB")
        for kind, (peak, rss) in figures.items():
            what = (
                f"{FLOOD_PATHS} never-seen paths"
                if kind == "paths"
                else (f"{FLOOD_SERVICES} new services x 40 paths")
            )
            print(f"  {what}: peak {peak:.1f} MB, after {rss:.1f} MB")
    for kind, (peak, _) in figures.items():
        assert peak < steady + FLOOD_ALLOWANCE_MB, (kind, peak, steady)
