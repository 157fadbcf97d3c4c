"""One owner of the grid target: when micro-inverter control may regulate beside ESS (D38).

Two loops holding the same grid power against each other move energy in a circle: with ESS
aiming higher than the inverters, the Multi charges the battery from what the inverters feed
until one of them saturates (conversion losses both ways). With ESS aiming lower, the inverters
simply settle at their minimum and ESS regulates; they take over only when ESS cannot (SoC
floor, keep-charged, Multi off). So the inverters may run beside another grid regulator only
when that regulator's whole band lies ``margin_w`` below theirs:

    other aim + other dead band + margin <= micro target - micro down band

Other regulators: Victron's ESS in mode 1/2 (hub4control holds the grid at the hub4 override, or
at ``AcPowerSetPoint`` without one), and venus-ems's own ``[ess_control]`` in ``grid_target``
mode (checked by ``check-config`` on the configured values, and at run time on its tunables).
"""

from __future__ import annotations

from dataclasses import dataclass

from .grid_target import GridTargetKind, GridTargetSettings, target_band
from .reasons import Reason, ReasonCode, fmt_w

__all__ = ["GridOwners", "conflict", "ess_aim_w", "separated"]

ESS_REGULATING_MODES = (1, 2)
"""Hub4Mode values in which hub4control holds the grid at a setpoint."""


def separated(other_aim_w: float, other_band_w: float, low_edge_w: float, margin_w: float) -> bool:
    """True when the other regulator's band ends ``margin_w`` below ``low_edge_w`` (W)."""
    return other_aim_w + other_band_w + margin_w <= low_edge_w


def ess_aim_w(kind: str, target_w: float, cap_w: float | None, dead_band_w: float) -> float:
    """Where ``[ess_control]`` in grid_target mode holds the grid (W, + = import)."""
    settings = GridTargetSettings(
        kind=GridTargetKind(kind), target_w=target_w, cap_w=cap_w, dead_band_w=dead_band_w
    )
    return target_band(settings, None).aim_w


@dataclass(frozen=True, slots=True)
class GridOwners:
    """Who else may hold the grid now (None = unknown or not regulating).

    ``hub4_mode`` and ``ess_setpoint_w`` (the hub4 override, else ``AcPowerSetPoint``) describe
    Victron's ESS; ``own_aim_w``/``own_band_w`` our ``[ess_control]`` in grid_target mode.
    """

    hub4_mode: int | None = None
    ess_setpoint_w: float | None = None
    own_aim_w: float | None = None
    own_band_w: float = 0.0


def conflict(owners: GridOwners, low_edge_w: float, margin_w: float) -> Reason | None:
    """Why the inverters must hold off (another loop holds the grid too close), else None."""
    low = fmt_w(low_edge_w - margin_w)
    if owners.own_aim_w is not None and not separated(
        owners.own_aim_w, owners.own_band_w, low_edge_w, margin_w
    ):
        top = fmt_w(owners.own_aim_w + owners.own_band_w)
        text = f"ess_control holds the grid up to {top}: it must stay at or below {low}"
        return Reason(ReasonCode.HOLD_OFF, text, owners.own_aim_w)
    if (
        owners.hub4_mode in ESS_REGULATING_MODES
        and owners.ess_setpoint_w is not None
        and not separated(owners.ess_setpoint_w, 0.0, low_edge_w, margin_w)
    ):
        text = (
            f"Victron ESS (mode {owners.hub4_mode}) holds the grid at "
            f"{fmt_w(owners.ess_setpoint_w)}: set its grid setpoint to {low} or lower, "
            "or ESS mode 3"
        )
        return Reason(ReasonCode.HOLD_OFF, text, owners.ess_setpoint_w)
    return None
