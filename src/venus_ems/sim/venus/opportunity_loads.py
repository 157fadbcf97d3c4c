"""A small Opportunity Loads CEM for the simulated GX, following venus-platform.md §1.

It publishes ``com.victronenergy.opportunityloads`` (``/OperationalState`` 1 = Active,
``/BatteryReservation``) and drives the resource managers it is given over the real bus, as
Victron's CEM does: it adds its signal matches, calls ``Discover`` and ``Connect(id, keep
alive)``, acks every message with a ReceptionStatus, answers the RM's Handshake with a
HandshakeResponse, selects OMBC, learns the SystemDescription, and every ``interval_s`` runs
the :class:`~venus_ems.sim.ol_loop.OlLoop` on ``surplus()`` and sends at most one
OMBC.Instruction, re-sent until a Status confirms it and given up after the 7th send. It calls
``KeepAlive`` every keep-alive interval and drops an RM after two failed ones. Test knobs:
``keep_alive_paused``, :meth:`send_raw`, ``acks`` (ReceptionStatus seen per RM).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.abc import TaskStatus
from dbus_fast import Message, MessageFlag, MessageType
from dbus_fast.aio import MessageBus

from ...clock import Clock
from ...control.ombc import OmbcMode, OmbcPlan, OmbcTimer, OmbcTransition
from ...errors import BusError
from ...venus import PathSpec, Service
from ...venus.bus import add_match, call, connect
from ...venus.s2 import IFACE, OPPORTUNITY_LOADS, RM_PATH
from ..ol_loop import OlLoad, OlLoop

__all__ = ["OL_SERVICE", "CemRm", "SimOpportunityLoads"]

_LOG = logging.getLogger(__name__)

OL_SERVICE = OPPORTUNITY_LOADS
_MAX_SENDS = 7


@dataclass
class CemRm:
    """One resource manager as the simulated CEM tracks it."""

    service: str
    priority: int = 50
    primary: bool = False
    owner: str = ""
    connected: bool = False
    load: OlLoad | None = None
    details: dict[str, Any] | None = None
    power_w: float | None = None
    failed_keep_alives: int = 0
    acks: list[tuple[str, str]] = field(default_factory=list)  # (subject id, status)
    received: list[str] = field(default_factory=list)  # message types, in order
    disconnects: list[str] = field(default_factory=list)  # reasons from the RM


class SimOpportunityLoads:
    """The simulated CEM (see the module doc); run it in a task group with ``run``."""

    def __init__(
        self,
        address: str,
        clock: Clock,
        surplus: Callable[[], float],
        *,
        client_id: str = "ol",
        keep_alive_s: int = 30,
        interval_s: float = 5.0,
        reservation_w: float = 0.0,
    ) -> None:
        """``surplus()``: PV minus consumption (managed loads included) as the GX sees it, W."""
        self.address = address
        self.clock = clock
        self.surplus = surplus
        self.client_id = client_id
        self.keep_alive_s = keep_alive_s
        self.interval_s = interval_s
        self.reservation_w = reservation_w
        self.rms: dict[str, CemRm] = {}
        self.keep_alive_paused = False
        self.service = Service(OL_SERVICE, identity=None, device_instance=0, address=address)
        self.service.add_path("/OperationalState", 1, PathSpec("i"))
        self.service.add_path("/BatteryReservation", reservation_w, PathSpec("d", "%.0F W"))
        self._bus: MessageBus | None = None

    def add_rm(self, service: str, *, priority: int = 50, primary: bool = False) -> CemRm:
        """Manage the RM published by ``service``."""
        rm = CemRm(service, priority, primary)
        self.rms[service] = rm
        return rm

    # ----------------------------------------------------------------- lifecycle

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Publish the service, connect the RMs and control them until cancelled."""
        bus = await connect(self.address)
        self._bus = bus
        try:
            bus.add_message_handler(self._on_bus)
            for member in ("Message", "Disconnect"):
                await add_match(bus, f"type='signal',interface='{IFACE}',member='{member}'")
            async with self.service, anyio.create_task_group() as tg:
                tg.start_soon(self._keep_alive)
                task_status.started()
                while True:
                    for rm in self.rms.values():
                        if not rm.connected:
                            await self._connect(rm)
                    self._loop_once()
                    await self.clock.sleep(self.interval_s)
        finally:
            self._bus = None
            bus.disconnect()

    async def _connect(self, rm: CemRm) -> None:
        assert self._bus is not None
        try:
            owner = await call(
                self._bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                "org.freedesktop.DBus", "GetNameOwner", "s", [rm.service],
            )  # fmt: skip
            rm.owner = owner[0]  # before Connect: the RM's Handshake follows at once
            if not (await self._rm_call(rm, "Discover", "", []))[0]:
                return
            ok = await self._rm_call(rm, "Connect", "si", [self.client_id, self.keep_alive_s])
        except BusError as err:
            _LOG.debug("OL: %s not available: %s", rm.service, err)
            return
        rm.connected, rm.failed_keep_alives = bool(ok[0]), 0

    async def _rm_call(self, rm: CemRm, member: str, sig: str, body: list[Any]) -> list[Any]:
        assert self._bus is not None
        return await call(self._bus, rm.service, RM_PATH, IFACE, member, sig, body, timeout=2.0)

    async def _keep_alive(self) -> None:
        while True:
            await self.clock.sleep(self.keep_alive_s)
            if self.keep_alive_paused:
                continue
            for rm in list(self.rms.values()):
                if not rm.connected:
                    continue
                try:
                    ok = (await self._rm_call(rm, "KeepAlive", "s", [self.client_id]))[0]
                except BusError:
                    ok = False
                rm.failed_keep_alives = 0 if ok else rm.failed_keep_alives + 1
                if rm.failed_keep_alives >= 2:
                    self._lost(rm)

    def _lost(self, rm: CemRm) -> None:
        rm.connected, rm.load, rm.details, rm.power_w = False, None, None, None

    async def disconnect(self, service: str) -> None:
        """End the session with one RM (the CEM calls ``Disconnect``)."""
        rm = self.rms[service]
        if rm.connected:
            await self._rm_call(rm, "Disconnect", "s", [self.client_id])
            self._lost(rm)

    # ----------------------------------------------------------------- messages

    def send_raw(self, service: str, text: str) -> None:
        """Send any text as an S2 message to one RM (tests of bad input)."""
        rm = self.rms[service]
        self._send(rm, text)

    def _send(self, rm: CemRm, text: str) -> None:
        if self._bus is None:
            return
        self._bus.send(
            Message(
                destination=rm.service,
                path=RM_PATH,
                interface=IFACE,
                member="Message",
                signature="ss",
                body=[self.client_id, text],
                flags=MessageFlag.NO_REPLY_EXPECTED,
            )
        )

    def _send_msg(self, rm: CemRm, message_type: str, **fields: Any) -> str:
        mid = str(uuid.uuid4())
        self._send(rm, json.dumps({"message_type": message_type, "message_id": mid, **fields}))
        return mid

    def _ack(self, rm: CemRm, subject: str, status: str = "OK") -> None:
        self._send(
            rm,
            json.dumps(
                {"message_type": "ReceptionStatus", "subject_message_id": subject, "status": status}
            ),
        )

    def _on_bus(self, msg: Message) -> None:
        if msg.message_type is not MessageType.SIGNAL or msg.interface != IFACE:
            return
        if msg.path != RM_PATH or msg.signature != "ss" or msg.body[0] != self.client_id:
            return
        rm = next((r for r in self.rms.values() if r.owner and r.owner == msg.sender), None)
        if rm is None:
            return
        if msg.member == "Disconnect":
            rm.disconnects.append(msg.body[1])
            self._lost(rm)
            return
        try:
            data = json.loads(msg.body[1])
        except ValueError:
            return
        self._handle(rm, data)

    def _handle(self, rm: CemRm, data: dict[str, Any]) -> None:
        kind = str(data.get("message_type"))
        rm.received.append(kind)
        if kind == "ReceptionStatus":
            rm.acks.append((str(data.get("subject_message_id")), str(data.get("status"))))
            return
        mid = str(data.get("message_id"))
        if kind == "Handshake":
            self._ack(rm, mid)
            self._send_msg(rm, "HandshakeResponse", selected_protocol_version="0.0.2-beta")
        elif kind == "ResourceManagerDetails":
            types = data.get("available_control_types") or []
            self._ack(rm, mid, "OK" if types else "TEMPORARY_ERROR")
            rm.details = data
            if "OPERATION_MODE_BASED_CONTROL" in types:
                self._send_msg(rm, "SelectControlType", control_type="OPERATION_MODE_BASED_CONTROL")
        elif kind == "OMBC.SystemDescription":
            self._ack(rm, mid)
            plan = _plan_of(data)
            rm.load = OlLoad(rm.service, plan, rm.priority, rm.primary)
        elif kind == "OMBC.Status":
            load = rm.load
            mode = None if load is None else load.plan.mode(str(data["active_operation_mode_id"]))
            if load is None or mode is None:
                self._ack(rm, mid, "TEMPORARY_ERROR")
                return
            self._ack(rm, mid)
            load.confirmed(mode, self.clock.monotonic())
        elif kind == "PowerMeasurement":
            self._ack(rm, mid)
            rm.power_w = sum(float(v["value"]) for v in data.get("values", []))
        else:
            self._ack(rm, mid)

    # ----------------------------------------------------------------- control

    def _loop_once(self) -> None:
        active = [r for r in self.rms.values() if r.connected and r.load is not None]
        loads = [r.load for r in active if r.load is not None]
        if not loads:
            return
        drawn = sum(_drawn(r) for r in active)
        surplus = self.surplus() + drawn
        decision = OlLoop(loads).step(surplus, self.reservation_w, self.clock.monotonic())
        if decision is None:
            return
        load, mode = decision
        rm = self.rms[load.name]
        load.sends += 1
        if load.sends > _MAX_SENDS:
            _LOG.warning("OL: %s never confirmed %s, dropping it", rm.service, mode.label)
            self._lost(rm)
            return
        self.instruct(rm, mode)

    def instruct(self, rm: CemRm, mode: OmbcMode) -> str:
        """Send an OMBC.Instruction for ``mode`` to run now; returns its message id."""
        return self._send_msg(
            rm,
            "OMBC.Instruction",
            id=str(uuid.uuid4()),
            execution_time=self.clock.now().isoformat(),
            operation_mode_id=mode.id,
            operation_mode_factor=1.0,
            abnormal_condition=False,
        )


def _drawn(rm: CemRm) -> float:
    """What an RM draws: its measurement, else the power of its confirmed mode."""
    if rm.power_w is not None:
        return rm.power_w
    mode = None if rm.load is None else rm.load.mode
    return 0.0 if mode is None else mode.power_w


def _plan_of(data: dict[str, Any]) -> OmbcPlan:
    """The modes, transitions and timers of an OMBC.SystemDescription."""
    modes = tuple(
        OmbcMode(
            str(m["id"]),
            str(m.get("diagnostic_label", "")),
            sum(float(r["end_of_range"]) for r in m.get("power_ranges", [])),
        )
        for m in data["operation_modes"]
    )
    timers = tuple(
        OmbcTimer(str(t["id"]), str(t.get("diagnostic_label", "")), float(t["duration"]) / 1000)
        for t in data.get("timers", [])
    )
    transitions = tuple(
        OmbcTransition(
            str(t["id"]),
            str(t["from"]),
            str(t["to"]),
            tuple(str(x) for x in t.get("start_timers", [])),
            tuple(str(x) for x in t.get("blocking_timers", [])),
        )
        for t in data.get("transitions", [])
    )
    ordered = tuple(sorted(modes, key=lambda m: m.power_w))
    return OmbcPlan(ordered, transitions, timers)
