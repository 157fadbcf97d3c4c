"""The S2 OMBC resource manager against the simulated Opportunity Loads CEM, on a real bus."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
import pytest
from dbus_fast import Message, MessageType

from venus_ems.clock import RealClock
from venus_ems.control.ombc import OmbcPlan
from venus_ems.runtime.s2_rm import OmbcResourceManager, RmDetails
from venus_ems.sim.venus.opportunity_loads import SimOpportunityLoads
from venus_ems.venus import Service
from venus_ems.venus.bus import DBusCallError, add_match, call, connect
from venus_ems.venus.s2 import IFACE, MAX_MESSAGE, RM_PATH
from waiting import until

pytestmark = pytest.mark.anyio
NAME = "com.victronenergy.acload.s2test"
LEVELS = (0.0, 1000.0, 2000.0, 3000.0)


@dataclass
class Heater:
    """The consumer behind the RM: records what it was told."""

    level_w: float = 0.0
    applied: list[tuple[float, float]] = field(default_factory=list)  # (t, W)
    released: list[str] = field(default_factory=list)
    refuse: bool = False
    clock: RealClock = field(default_factory=RealClock)

    async def apply_level(self, power_w: float) -> None:
        if self.refuse:
            raise OSError("relay does not answer")
        self.level_w = power_w
        self.applied.append((self.clock.monotonic(), power_w))

    async def release(self, reason: str) -> None:
        self.level_w = 0.0
        self.released.append(reason)


@dataclass
class Rig:
    heater: Heater
    rm: OmbcResourceManager
    cem: SimOpportunityLoads
    service: Service
    surplus: list[float]
    rm_scope: anyio.CancelScope


@asynccontextmanager
async def rig(
    bus_address: str,
    *,
    surplus_w: float = 0.0,
    min_on_s: float = 0.0,
    min_off_s: float = 0.0,
    keep_alive_s: int = 1,
    with_cem: bool = True,
) -> AsyncIterator[Rig]:
    clock = RealClock()
    heater = Heater()
    plan = OmbcPlan.for_levels(NAME, LEVELS, min_on_s=min_on_s, min_off_s=min_off_s)
    service = Service(NAME, identity=None, device_instance=40, address=bus_address)
    details = RmDetails(str(uuid.uuid5(uuid.NAMESPACE_DNS, NAME)), "Water heater")
    rm = OmbcResourceManager(service, clock, heater, plan, details)
    surplus = [surplus_w]
    cem = SimOpportunityLoads(
        bus_address,
        clock,
        lambda: surplus[0] - heater.level_w,
        keep_alive_s=keep_alive_s,
        interval_s=0.1,
    )
    cem.add_rm(NAME)
    rm_scope = anyio.CancelScope()

    async def run_rm(*, task_status: anyio.abc.TaskStatus[None]) -> None:
        with rm_scope:
            await rm.run(task_status=task_status)

    async with service, anyio.create_task_group() as tg:
        await tg.start(run_rm)
        if with_cem:
            await tg.start(cem.run)
        try:
            yield Rig(heater, rm, cem, service, surplus, rm_scope)
        finally:
            tg.cancel_scope.cancel()


def rm_of(r: Rig):
    return r.cem.rms[NAME]


async def test_cem_connects_selects_ombc_and_switches_the_heater(bus_address):
    async with rig(bus_address, surplus_w=2300.0) as r:
        await until(lambda: r.heater.level_w == 2000.0)
        cem_rm = rm_of(r)
        await until(lambda: cem_rm.load is not None and cem_rm.load.mode.power_w == 2000.0)
        assert r.service[RM_PATH] == "CEM: ol"
        assert r.service["/S2/0/Active"] == 1
        # documented order: Handshake, details, description, status (then measurements)
        kinds = [k for k in cem_rm.received if k != "ReceptionStatus"]
        assert kinds[:4] == [
            "Handshake",
            "ResourceManagerDetails",
            "OMBC.SystemDescription",
            "OMBC.Status",
        ]
        assert cem_rm.details is not None
        assert cem_rm.details["available_control_types"] == [
            "NOT_CONTROLABLE",
            "OPERATION_MODE_BASED_CONTROL",
        ]
        # every CEM message was acked OK, and every message of ours was acked
        assert cem_rm.acks
        assert all(status == "OK" for _, status in cem_rm.acks)
        await until(lambda: not r.rm._pending)
        r.rm.measured(1985.0)  # the heater's meter reads a little under its rating
        await until(lambda: cem_rm.power_w == 1985.0)
        # the heater ran exactly one switch: Off -> 2000 W (the CEM keeps it there)
        await anyio.sleep(0.5)
        assert [w for _, w in r.heater.applied] == [2000.0]


async def test_min_run_time_holds_the_heater_on_until_the_timer_expires(bus_address):
    async with rig(bus_address, surplus_w=1200.0, min_on_s=1.5) as r:
        await until(lambda: r.heater.level_w == 1000.0)
        on_at = r.heater.applied[-1][0]
        r.surplus[0] = -500.0
        await until(lambda: r.heater.level_w == 0.0, timeout=5)
        off_at = r.heater.applied[-1][0]
        assert off_at - on_at >= 1.5


async def test_rm_refuses_an_instruction_that_breaks_min_rest(bus_address):
    async with rig(bus_address, surplus_w=0.0, min_off_s=30.0) as r:
        cem_rm = rm_of(r)
        await until(lambda: cem_rm.load is not None)
        # a CEM ignoring the timers: on, then at once off, then on again
        assert cem_rm.load is not None
        plan = cem_rm.load.plan
        r.rm.timers.switched(plan.modes[1].id, plan.off.id, r.rm._clock.monotonic())
        mid = r.cem.instruct(cem_rm, plan.modes[2])
        await until(lambda: any(s == mid for s, _ in cem_rm.acks))
        assert dict(cem_rm.acks)[mid] == "TEMPORARY_ERROR"
        await anyio.sleep(0.2)
        assert r.heater.applied == []


async def test_bad_cem_messages_get_a_clear_reception_status_and_lose_nothing(bus_address):
    async with rig(bus_address, surplus_w=0.0) as r:
        cem_rm = rm_of(r)
        await until(lambda: cem_rm.load is not None)
        n = len(cem_rm.acks)
        r.cem.send_raw(NAME, "{not json")
        r.cem.send_raw(NAME, "[1, 2]")
        r.cem.send_raw(NAME, "[" * 30_000 + "]" * 30_000)  # within the size bound, too deep
        r.cem.send_raw(NAME, "[" * 100_000 + "]" * 100_000)  # too long: refused by the endpoint
        bad_id = str(uuid.uuid4())
        r.cem.send_raw(NAME, json.dumps({"message_type": "OMBC.Instruction", "message_id": bad_id}))
        unknown = str(uuid.uuid4())
        r.cem.send_raw(
            NAME,
            json.dumps(
                {
                    "message_type": "OMBC.Instruction",
                    "message_id": unknown,
                    "id": str(uuid.uuid4()),
                    "execution_time": "2026-01-01T00:00:00+00:00",
                    "operation_mode_id": str(uuid.uuid4()),
                    "operation_mode_factor": 1.0,
                    "abnormal_condition": False,
                }
            ),
        )
        await until(lambda: len(cem_rm.acks) >= n + 5)
        got = cem_rm.acks[n:]
        nil = "00000000-0000-0000-0000-000000000000"
        assert got[:3] == [(nil, "INVALID_DATA")] * 3
        assert (bad_id, "INVALID_MESSAGE") in got
        assert (unknown, "INVALID_CONTENT") in got
        # the session survived: a valid instruction still works
        r.surplus[0] = 3100.0
        await until(lambda: r.heater.level_w == 3000.0)
        assert r.service[RM_PATH] == "CEM: ol"


async def test_oversized_message_and_bad_arguments_are_refused_on_the_bus(bus_address):
    async with rig(bus_address, with_cem=False):
        bus = await connect(bus_address)
        try:
            assert await call(bus, NAME, RM_PATH, IFACE, "Connect", "si", ["x", 5]) == [True]
            with pytest.raises(DBusCallError, match="InvalidArgs"):
                await call(
                    bus, NAME, RM_PATH, IFACE, "Message", "ss", ["x", "a" * (MAX_MESSAGE + 1)]
                )
            with pytest.raises(DBusCallError, match="InvalidArgs"):
                await call(bus, NAME, RM_PATH, IFACE, "Connect", "s", ["x"])
            with pytest.raises(DBusCallError, match="InvalidArgs"):
                await call(bus, NAME, RM_PATH, IFACE, "Connect", "si", ["y" * 500, 5])
            with pytest.raises(DBusCallError, match="UnknownMethod"):
                await call(bus, NAME, RM_PATH, IFACE, "Explode", "", [])
        finally:
            bus.disconnect()


async def test_second_cem_is_refused_while_one_is_connected(bus_address):
    async with rig(bus_address) as r:
        await until(lambda: r.service[RM_PATH] == "CEM: ol")
        bus = await connect(bus_address)
        try:
            assert await call(bus, NAME, RM_PATH, IFACE, "Discover", "", []) == [True]
            assert await call(bus, NAME, RM_PATH, IFACE, "Connect", "si", ["other", 30]) == [False]
            assert await call(bus, NAME, RM_PATH, IFACE, "KeepAlive", "s", ["other"]) == [False]
        finally:
            bus.disconnect()
        assert r.service[RM_PATH] == "CEM: ol"


async def test_missed_keep_alive_drops_the_cem_and_releases_the_heater(bus_address):
    async with rig(bus_address, surplus_w=1500.0, keep_alive_s=1) as r:
        await until(lambda: r.heater.level_w == 1000.0)
        await anyio.sleep(2.5)  # keep-alives flow: still connected
        assert r.service[RM_PATH] == "CEM: ol"
        r.cem.keep_alive_paused = True
        await until(lambda: r.heater.released, timeout=5)
        assert r.heater.level_w == 0.0
        assert r.heater.released == ["CEM left: KeepAlive missed"]
        assert "KeepAlive missed" in rm_of(r).disconnects
        assert r.service["/S2/0/Active"] == 0
        r.cem.keep_alive_paused = False  # the CEM comes back and takes over again
        await until(lambda: r.heater.level_w == 1000.0, timeout=5)


async def test_cem_disconnect_releases_the_heater(bus_address):
    async with rig(bus_address, surplus_w=1500.0, keep_alive_s=30) as r:
        await until(lambda: r.heater.level_w == 1000.0)
        r.cem.interval_s = 60.0  # no reconnection during the check
        await r.cem.disconnect(NAME)
        await until(lambda: r.heater.released)
        assert r.heater.level_w == 0.0
        assert r.service[RM_PATH] == "Ready"


async def test_stopping_the_rm_releases_the_heater_and_tells_the_cem(bus_address):
    async with rig(bus_address, surplus_w=1500.0, keep_alive_s=30) as r:
        await until(lambda: r.heater.level_w == 1000.0)
        r.cem.interval_s = 60.0
        r.rm_scope.cancel()
        await until(lambda: r.heater.released)
        assert r.heater.level_w == 0.0
        assert r.heater.released == ["resource manager stopped"]
        await until(lambda: "Not ready" in rm_of(r).disconnects)
        assert r.service[RM_PATH] is None


async def test_rm_without_acks_ends_the_session(bus_address):
    async with rig(bus_address, with_cem=False) as r:
        r.rm.ack_timeout_s = 1.0
        bus = await connect(bus_address)
        signals: list[list[str]] = []

        def on(msg: Message) -> None:
            if msg.message_type is MessageType.SIGNAL and msg.interface == IFACE:
                signals.append([msg.member or "", *msg.body])

        bus.add_message_handler(on)
        try:
            await add_match(bus, f"type='signal',interface='{IFACE}'")
            assert await call(bus, NAME, RM_PATH, IFACE, "Connect", "si", ["mute", 30]) == [True]
            await until(lambda: any(s[0] == "Message" for s in signals))
            handshake = json.loads(next(s for s in signals if s[0] == "Message")[2])
            assert handshake["message_type"] == "Handshake"
            assert handshake["supported_protocol_versions"] == ["0.0.2-beta"]
            await until(lambda: ["Disconnect", "mute", "ReceptionStatus timeout"] in signals, 4)
            assert r.service[RM_PATH] == "Ready"
        finally:
            bus.disconnect()


async def test_unknown_client_calls_get_a_disconnect_signal(bus_address):
    async with rig(bus_address, with_cem=False):
        bus = await connect(bus_address)
        signals: list[list[str]] = []
        bus.add_message_handler(
            lambda msg: (
                signals.append([msg.member or "", *msg.body])
                if msg.message_type is MessageType.SIGNAL and msg.interface == IFACE
                else None
            )
        )
        try:
            await add_match(bus, f"type='signal',interface='{IFACE}'")
            await call(bus, NAME, RM_PATH, IFACE, "Message", "ss", ["stranger", "{}"])
            await until(lambda: ["Disconnect", "stranger", "Not connected"] in signals)
        finally:
            bus.disconnect()


async def test_cem_deselecting_ombc_releases_the_heater(bus_address):
    async with rig(bus_address, surplus_w=1500.0, keep_alive_s=30) as r:
        await until(lambda: r.heater.level_w == 1000.0)
        r.cem.interval_s = 60.0
        r.cem._send_msg(rm_of(r), "SelectControlType", control_type="NOT_CONTROLABLE")
        await until(lambda: r.heater.released)
        assert r.heater.released == ["CEM selected NOT_CONTROLABLE"]
        assert r.heater.level_w == 0.0
        assert r.service["/S2/0/Active"] == 0
        assert r.service[RM_PATH] == "CEM: ol"  # still connected, just not controlling


async def test_a_failing_device_is_reported_with_the_mode_that_really_runs(bus_address):
    async with rig(bus_address, surplus_w=0.0) as r:
        cem_rm = rm_of(r)
        await until(lambda: cem_rm.load is not None)
        r.heater.refuse = True
        r.surplus[0] = 1500.0
        await until(lambda: cem_rm.received.count("OMBC.Status") >= 3)
        assert cem_rm.load is not None
        assert cem_rm.load.mode.power_w == 0.0  # never confirmed: the CEM re-sends, then gives up
        assert r.heater.applied == []
