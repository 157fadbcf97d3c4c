"""S2 messages of an OMBC resource manager, built and parsed with s2-python (0.0.2-beta JSON).

Builders turn an :class:`~venus_ems.control.ombc.OmbcPlan` into the messages of
venus-platform.md §1.4; :func:`parse` bounds and checks what the CEM sends and says which
ReceptionStatus a bad message gets. Powers in W; timer durations go out in ms.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from s2python.common import (
    Commodity,
    CommodityQuantity,
    ControlType,
    Duration,
    EnergyManagementRole,
    Handshake,
    PowerMeasurement,
    PowerRange,
    PowerValue,
    ReceptionStatus,
    ReceptionStatusValues,
    ResourceManagerDetails,
    Role,
    RoleType,
    Timer,
    Transition,
)
from s2python.generated.gen_s2 import ID
from s2python.message import S2Message
from s2python.ombc import OMBCOperationMode, OMBCStatus, OMBCSystemDescription
from s2python.s2_parser import S2Parser
from s2python.s2_validation_error import S2ValidationError
from s2python.version import S2_VERSION

from ..control.ombc import OmbcMode, OmbcPlan

__all__ = [
    "NIL_ID",
    "S2_VERSION",
    "BadMessageError",
    "RmDetails",
    "handshake",
    "parse",
    "power_measurement",
    "reception_status",
    "resource_manager_details",
    "status",
    "system_description",
]

NIL_ID = "00000000-0000-0000-0000-000000000000"
_PHASES = {
    "L1": CommodityQuantity.ELECTRIC_POWER_L1,
    "L2": CommodityQuantity.ELECTRIC_POWER_L2,
    "L3": CommodityQuantity.ELECTRIC_POWER_L3,
    "3P": CommodityQuantity.ELECTRIC_POWER_3_PHASE_SYMMETRIC,
}


@dataclass(frozen=True)
class RmDetails:
    """Who the RM is: a stable resource id (UUID text), a name, and the phase it draws on.

    ``phase`` is ``L1``/``L2``/``L3`` or ``3P`` (symmetric, the CEM splits it in thirds);
    ValueError otherwise.
    """

    resource_id: str
    name: str
    phase: str = "L1"
    manufacturer: str = "venus-ems"
    model: str = "switched consumer"
    serial_number: str = ""
    firmware_version: str = ""
    instruction_processing_delay_ms: int = 500

    def __post_init__(self) -> None:
        """Check the phase and the id (ValueError)."""
        if self.phase not in _PHASES:
            raise ValueError(f"phase must be one of {sorted(_PHASES)}, got {self.phase!r}")
        uuid.UUID(self.resource_id)

    @property
    def quantity(self) -> CommodityQuantity:
        """The S2 commodity quantity of the phase."""
        return _PHASES[self.phase]


class BadMessageError(Exception):
    """A CEM message we cannot use; ``subject`` and ``status`` form the ReceptionStatus."""

    def __init__(self, subject: str, status: ReceptionStatusValues, text: str) -> None:
        """Keep what the answer needs."""
        super().__init__(text)
        self.subject = subject
        self.status = status
        self.text = text


def _id() -> uuid.UUID:
    return uuid.uuid4()


def parse(text: str) -> S2Message:
    """Parse one CEM message (already bounded in length); raises BadMessageError with the answer."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise BadMessageError(
            NIL_ID, ReceptionStatusValues.INVALID_DATA, "not valid JSON"
        ) from None
    if not isinstance(data, dict):
        raise BadMessageError(NIL_ID, ReceptionStatusValues.INVALID_DATA, "not a JSON object")
    mid = data.get("message_id")
    subject = mid if isinstance(mid, str) and 2 <= len(mid) <= 64 else NIL_ID
    try:
        return S2Parser.parse_as_any_message(data)
    except (S2ValidationError, ValueError, TypeError, AttributeError) as err:
        kind = data.get("message_type")
        raise BadMessageError(
            subject,
            ReceptionStatusValues.INVALID_MESSAGE,
            f"invalid {str(kind)[:40]} message: {str(err)[:200]}",
        ) from None


def reception_status(subject: str, value: ReceptionStatusValues, label: str = "") -> str:
    """A ReceptionStatus for message ``subject`` (JSON)."""
    return ReceptionStatus(
        subject_message_id=uuid.UUID(subject) if _is_uuid(subject) else uuid.UUID(NIL_ID),
        status=value,
        diagnostic_label=label[:200] or None,
    ).to_json()


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def handshake() -> tuple[str, str]:
    """(message id, JSON) of the RM's Handshake."""
    mid = _id()
    msg = Handshake(
        message_id=mid, role=EnergyManagementRole.RM, supported_protocol_versions=[S2_VERSION]
    )
    return str(mid), msg.to_json()


def resource_manager_details(details: RmDetails, *, controllable: bool) -> tuple[str, str]:
    """(message id, JSON) of ResourceManagerDetails offering [NOT_CONTROLABLE, OMBC]."""
    mid = _id()
    types = [ControlType.NOT_CONTROLABLE]
    if controllable:
        types.append(ControlType.OPERATION_MODE_BASED_CONTROL)
    msg = ResourceManagerDetails(
        message_id=mid,
        resource_id=uuid.UUID(details.resource_id),
        name=details.name[:64],
        roles=[Role(role=RoleType.ENERGY_CONSUMER, commodity=Commodity.ELECTRICITY)],
        manufacturer=details.manufacturer,
        model=details.model,
        serial_number=details.serial_number or None,
        firmware_version=details.firmware_version or None,
        instruction_processing_delay=Duration.from_milliseconds(
            details.instruction_processing_delay_ms
        ),
        available_control_types=types,
        currency=None,
        provides_forecast=False,
        provides_power_measurement_types=[details.quantity],
    )
    return str(mid), msg.to_json()


def system_description(plan: OmbcPlan, details: RmDetails, at: datetime) -> tuple[str, str]:
    """(message id, JSON) of OMBC.SystemDescription: one mode per level, valid from ``at``."""
    mid = _id()
    q = details.quantity
    modes = [
        OMBCOperationMode(
            id=uuid.UUID(m.id),
            diagnostic_label=m.label,
            power_ranges=[
                PowerRange(start_of_range=m.power_w, end_of_range=m.power_w, commodity_quantity=q)
            ],
            abnormal_condition_only=False,
            running_costs=None,
        )
        for m in plan.modes
    ]
    transitions = [
        Transition(
            id=uuid.UUID(t.id),
            from_=uuid.UUID(t.from_id),
            to=uuid.UUID(t.to_id),
            start_timers=[uuid.UUID(x) for x in t.start_timers],
            blocking_timers=[uuid.UUID(x) for x in t.blocking_timers],
            transition_duration=None,
            transition_costs=None,
            abnormal_condition_only=False,
        )
        for t in plan.transitions
    ]
    timers = [
        Timer(
            id=uuid.UUID(t.id),
            diagnostic_label=t.label,
            duration=Duration.from_milliseconds(round(t.duration_s * 1000)),
        )
        for t in plan.timers
    ]
    msg = OMBCSystemDescription(
        message_id=mid, valid_from=at, operation_modes=modes, transitions=transitions, timers=timers
    )
    return str(mid), msg.to_json()


def status(mode: OmbcMode, previous: OmbcMode | None, at: datetime | None) -> tuple[str, str]:
    """(message id, JSON) of OMBC.Status naming the active mode."""
    mid = _id()
    msg = OMBCStatus(
        message_id=mid,
        active_operation_mode_id=ID(mode.id),
        operation_mode_factor=1.0,
        previous_operation_mode_id=None if previous is None else ID(previous.id),
        transition_timestamp=at,
    )
    return str(mid), msg.to_json()


def power_measurement(power_w: float, details: RmDetails, at: datetime) -> tuple[str, str]:
    """(message id, JSON) of a PowerMeasurement of ``power_w`` W on the RM's phase."""
    mid = _id()
    msg = PowerMeasurement(
        message_id=mid,
        measurement_timestamp=at,
        values=[PowerValue(commodity_quantity=details.quantity, value=float(power_w))],
    )
    return str(mid), msg.to_json()
