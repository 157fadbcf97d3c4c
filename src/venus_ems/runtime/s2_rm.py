"""An S2 OMBC resource manager: offers one consumer to Victron's Opportunity Loads CEM.

Give it the consumer's service (before registration), a :class:`~venus_ems.control.ombc.OmbcPlan`
(one mode per power level), who it is (:class:`RmDetails`) and an :class:`OmbcDevice` that
switches the consumer. Run :meth:`OmbcResourceManager.run` in a task group. The protocol is
venus-platform.md §1.4: Handshake, ResourceManagerDetails, SelectControlType OMBC, then
SystemDescription, Status and PowerMeasurement; every CEM message is acked with a
ReceptionStatus; an instruction is acked at once, carried out at its execution time (unless a
min run/rest timer forbids it, then TEMPORARY_ERROR) and confirmed by an OMBC.Status.
Safe state: when the CEM leaves, stops controlling, misses its keep-alive or leaves a message
of ours unacknowledged for 5 s, and when the RM stops, the device is told to ``release`` (go
Off). Powers in W, + = drawn.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable
from typing import Protocol

import anyio
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectSendStream
from s2python.common import (
    ControlType,
    Handshake,
    HandshakeResponse,
    ReceptionStatus,
    ReceptionStatusValues,
    SelectControlType,
)
from s2python.ombc import OMBCInstruction

from ..clock import Clock
from ..control.ombc import OmbcMode, OmbcPlan, OmbcTimers
from ..venus import Service
from ..venus.s2 import S2Endpoint
from . import s2_messages as m
from .s2_messages import BadMessageError, RmDetails

__all__ = ["ACK_TIMEOUT_S", "MAX_DELAY_S", "OmbcDevice", "OmbcResourceManager", "RmDetails"]

_LOG = logging.getLogger(__name__)

ACK_TIMEOUT_S = 5.0  # a message of ours without ReceptionStatus ends the session
MAX_DELAY_S = 3600.0  # an instruction further in the future is refused
_OK = ReceptionStatusValues.OK
_Event = tuple[str, str, str]  # (kind, client id, text or reason)


class OmbcDevice(Protocol):
    """The consumer behind the RM."""

    def apply_level(self, power_w: float) -> Awaitable[None]:
        """Switch to ``power_w`` (one of the plan's levels); raise if the device refused."""
        ...

    def release(self, reason: str) -> Awaitable[None]:
        """The CEM no longer controls: go to the safe state (Off); must not raise."""
        ...


class OmbcResourceManager:
    """One consumer offered to a CEM as ``/S2/0/Rm`` on ``service`` (see the module doc)."""

    def __init__(
        self,
        service: Service,
        clock: Clock,
        device: OmbcDevice,
        plan: OmbcPlan,
        details: RmDetails,
        *,
        offered: bool = True,
    ) -> None:
        """Add ``/S2/0/Rm`` and ``/S2/0/Active`` to ``service``; ``offered``: Ready when running."""
        self.plan = plan
        self.details = details
        self._clock = clock
        self._device = device
        self.endpoint = S2Endpoint(service, clock, self)
        self._active_path = "/S2/0/Active"
        service.add_path(self._active_path, 0)
        self.service = service
        self.timers = OmbcTimers(plan)
        self.mode: OmbcMode = plan.off
        self.controlled = False  # a CEM selected OMBC in the current session
        self.measured_w: float | None = None
        self._sent_w: float | None = None
        self._pending: dict[str, tuple[float, str]] = {}  # our message id -> (sent at, type)
        self._session = 0
        self._instruction: anyio.CancelScope | None = None
        self._tx: MemoryObjectSendStream[_Event] | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self.switches = 0
        self.ack_timeout_s = ACK_TIMEOUT_S
        self.offered = offered

    # ----------------------------------------------------------------- API for the consumer

    def measured(self, power_w: float | None) -> None:
        """The consumer's measured draw (None = unknown: nothing is sent, never a fake 0)."""
        if power_w is not None and not math.isfinite(power_w):
            power_w = None
        self.measured_w = power_w
        if (
            self.controlled
            and power_w is not None
            and (self._sent_w is None or abs(power_w - self._sent_w) >= 1.0)
        ):
            self._send_power()

    def offer(self, ready: bool) -> None:
        """Offer the RM to CEMs (Ready) or withdraw it (a session ends: the device is released)."""
        self.offered = ready
        if self._tx is not None and self.endpoint.ready != ready:
            self.endpoint.set_ready(ready)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Offer the RM and serve CEMs until cancelled; the device is released on the way out."""
        tx, rx = anyio.create_memory_object_stream[_Event](64)
        self._tx = tx
        try:
            async with anyio.create_task_group() as tg, tx, rx:
                self._tg = tg
                tg.start_soon(self.endpoint.run)
                tg.start_soon(self._watch_acks)
                self.endpoint.set_ready(self.offered)
                task_status.started()
                async for kind, client_id, text in rx:
                    await self._event(kind, client_id, text)
        finally:
            self._tg = self._tx = None
            was = self.controlled
            self._stop_control()
            self.endpoint.set_ready(False)
            if was:
                with anyio.move_on_after(5.0, shield=True):
                    await self._device.release("resource manager stopped")

    # ----------------------------------------------------------------- S2Listener

    def s2_connected(self, client_id: str) -> None:
        """Queue the start of a session."""
        self._push(("connected", client_id, ""))

    def s2_message(self, client_id: str, text: str) -> None:
        """Queue a CEM message."""
        self._push(("message", client_id, text))

    def s2_disconnected(self, client_id: str, reason: str) -> None:
        """Queue the end of a session."""
        self._push(("disconnected", client_id, reason))

    def _push(self, event: _Event) -> None:
        if self._tx is None:
            return
        try:
            self._tx.send_nowait(event)
        except anyio.WouldBlock:
            _LOG.warning("%s: CEM floods the RM, dropping it", self.service.name)
            self.endpoint.drop("RM overloaded")
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass

    # ----------------------------------------------------------------- session

    async def _event(self, kind: str, client_id: str, text: str) -> None:
        if kind == "connected":
            self._session += 1
            self._pending.clear()
            self._send_tracked(*m.handshake(), "Handshake")
        elif kind == "disconnected":
            _LOG.info("%s: CEM %s left: %s", self.service.name, client_id, text)
            self._pending.clear()
            if self.controlled:
                self._stop_control()
                await self._release(f"CEM left: {text}")
        elif client_id == self.endpoint.client_id:
            await self._message(text)

    async def _message(self, text: str) -> None:
        try:
            msg = m.parse(text)
        except BadMessageError as bad:
            _LOG.info("%s: bad S2 message: %s", self.service.name, bad.text)
            self.endpoint.send(m.reception_status(bad.subject, bad.status, bad.text))
            return
        if isinstance(msg, ReceptionStatus):
            self._acked(msg)
            return
        mid = str(getattr(msg, "message_id", m.NIL_ID))
        if isinstance(msg, OMBCInstruction):
            self._instruction_received(mid, msg)
            return
        self._ack(mid)
        if isinstance(msg, HandshakeResponse):
            self._send_tracked(
                *m.resource_manager_details(self.details, controllable=True), "Details"
            )
        elif isinstance(msg, SelectControlType):
            await self._select(msg.control_type)
        elif not isinstance(msg, Handshake):
            _LOG.debug("%s: ignored %s", self.service.name, type(msg).__name__)

    def _ack(self, subject: str, value: ReceptionStatusValues = _OK, label: str = "") -> None:
        self.endpoint.send(m.reception_status(subject, value, label))

    def _acked(self, rs: ReceptionStatus) -> None:
        entry = self._pending.pop(str(rs.subject_message_id), None)
        if entry is not None and rs.status != _OK:
            _LOG.warning(
                "%s: CEM answered %s to our %s: %s",
                self.service.name,
                rs.status.value,
                entry[1],
                rs.diagnostic_label,
            )

    def _send_tracked(self, mid: str, text: str, kind: str) -> None:
        if self.endpoint.send(text):
            self._pending[mid] = (self._clock.monotonic(), kind)

    async def _watch_acks(self) -> None:
        while True:
            await self._clock.sleep(1.0)
            now = self._clock.monotonic()
            late = [k for t, k in self._pending.values() if now - t > self.ack_timeout_s]
            if late and self.endpoint.connected:
                _LOG.warning("%s: no ReceptionStatus for our %s", self.service.name, late[0])
                self._pending.clear()
                self.endpoint.drop("ReceptionStatus timeout")

    async def _select(self, control_type: ControlType) -> None:
        if control_type is ControlType.OPERATION_MODE_BASED_CONTROL:
            self.controlled = True
            self.service[self._active_path] = 1
            self._send_tracked(
                *m.system_description(self.plan, self.details, self._clock.now()), "Description"
            )
            self._send_tracked(*m.status(self.mode, None, None), "Status")
            self._sent_w = None
            if self.measured_w is not None:
                self._send_power()
        elif self.controlled:
            self._stop_control()
            await self._release(f"CEM selected {control_type.value}")

    def _stop_control(self) -> None:
        self.controlled = False
        if self._instruction is not None:
            self._instruction.cancel()
            self._instruction = None
        if self.service.registered:
            self.service[self._active_path] = 0

    async def _release(self, reason: str) -> None:
        await self._device.release(reason)
        self._switched(self.plan.off)

    def _switched(self, new: OmbcMode) -> OmbcMode:
        old, self.mode = self.mode, new
        if old.id != new.id:
            self.timers.switched(old.id, new.id, self._clock.monotonic())
            self.switches += 1
        return old

    def _send_power(self) -> None:
        if self.measured_w is None:
            return
        self._sent_w = self.measured_w
        self._send_tracked(
            *m.power_measurement(self.measured_w, self.details, self._clock.now()), "Power"
        )

    # ----------------------------------------------------------------- instructions

    def _instruction_received(self, mid: str, ins: OMBCInstruction) -> None:
        target = self.plan.mode(str(ins.operation_mode_id))
        refusal = None
        delay = (ins.execution_time - self._clock.now()).total_seconds()
        if not self.controlled:
            refusal = (ReceptionStatusValues.INVALID_CONTENT, "OMBC is not the selected control")
        elif target is None:
            refusal = (ReceptionStatusValues.INVALID_CONTENT, "unknown operation mode")
        elif delay > MAX_DELAY_S:
            refusal = (ReceptionStatusValues.INVALID_CONTENT, "execution time too far ahead")
        else:
            blocked = self.timers.blocked_by(self.mode.id, target.id, self._clock.monotonic())
            if blocked is not None and delay <= 0:
                refusal = (ReceptionStatusValues.TEMPORARY_ERROR, f"blocked by {blocked}")
        if refusal is not None or target is None:
            value, label = refusal or (ReceptionStatusValues.INVALID_CONTENT, "")
            self._ack(mid, value, label)
            return
        self._ack(mid)
        if self._instruction is not None:
            self._instruction.cancel()  # a newer instruction replaces one still waiting
        scope = anyio.CancelScope()
        self._instruction = scope
        if self._tg is not None:
            self._tg.start_soon(self._execute, scope, self._session, target, max(0.0, delay))

    async def _execute(
        self, scope: anyio.CancelScope, session: int, target: OmbcMode, delay: float
    ) -> None:
        with scope:
            if delay > 0:
                await self._clock.sleep(delay)
            if session == self._session and self.controlled:
                await self._switch(target)
        if self._instruction is scope:
            self._instruction = None

    async def _switch(self, target: OmbcMode) -> None:
        blocked = self.timers.blocked_by(self.mode.id, target.id, self._clock.monotonic())
        if blocked is None and target.id != self.mode.id:
            try:
                await self._device.apply_level(target.power_w)
            except Exception as err:  # noqa: BLE001 - the CEM learns it from the Status
                _LOG.warning("%s: cannot switch to %s: %s", self.service.name, target.label, err)
            else:
                old = self._switched(target)
                self._send_tracked(*m.status(target, old, self._clock.now()), "Status")
                return
        elif blocked is not None:
            _LOG.info("%s: %s blocked by %s", self.service.name, target.label, blocked)
        self._send_tracked(*m.status(self.mode, None, None), "Status")  # what really runs
