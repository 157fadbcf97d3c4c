"""When ESS lets a feature act: the ESS mode (``Hub4Mode``) and Dynamic ESS decide.

* Dynamic ESS active (``/Settings/DynamicEss/Mode`` > 0): it owns the hub4 overrides, so every
  feature holds off and gives the output back *without* writing a safe value
  (``EssGuard.abandon``).
* ``hub4_override`` (hub4 ``/Overrides/*``) needs ESS mode 1 or 2 (hub4control runs);
  ``mode3`` needs Hub4Mode 3 (external control), which only the user sets: venus-ems never
  writes that persisted setting.
* An unknown ESS mode holds off too.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .ess import EssMethod

__all__ = ["EssGuard", "ess_guard", "limiter_guard"]


@dataclass(frozen=True, slots=True)
class EssGuard:
    """Whether ESS lets a feature act now, and why not (``hold`` is None when it may)."""

    hub4_mode: int | None
    dess_mode: int | None
    hold: str | None

    @property
    def abandon(self) -> bool:
        """True when another owner (Dynamic ESS) has the output: give it up, write nothing."""
        return _dess_active(self.dess_mode)


def _dess_active(dess_mode: int | None) -> bool:
    """Dynamic ESS runs in every mode above 0 (0 = off; unknown = not running)."""
    return dess_mode is not None and dess_mode > 0


def ess_guard(hub4_mode: int | None, dess_mode: int | None, method: EssMethod) -> EssGuard:
    """Check the ESS mode against ``method`` and that Dynamic ESS is off."""
    hold: str | None = None
    if _dess_active(dess_mode):
        hold = f"Dynamic ESS is active (mode {dess_mode}): holding off, it owns the ESS overrides"
    elif hub4_mode is None:
        hold = "ESS mode unknown (no /Settings/CGwacs/Hub4Mode): holding off"
    elif method is EssMethod.MODE3 and hub4_mode != 3:
        hold = (
            f"method mode3 needs ESS mode 'External control' (Hub4Mode 3), the GX is in mode "
            f"{hub4_mode}: set it on the GX (venus-ems never writes it)"
        )
    elif method is EssMethod.HUB4_OVERRIDE and hub4_mode not in (1, 2):
        hold = (
            f"ESS is in external control (Hub4Mode {hub4_mode}): the hub4 override has no "
            "effect; use method mode3 or an ESS mode with phase compensation"
        )
    return EssGuard(hub4_mode, dess_mode, hold)


def limiter_guard(hub4_mode: int | None, dess_mode: int | None) -> EssGuard:
    """The output limiter acts through hub4control: ESS mode 1 or 2, Dynamic ESS off."""
    guard = ess_guard(hub4_mode, dess_mode, EssMethod.HUB4_OVERRIDE)
    if hub4_mode == 3:
        hold = "ESS mode 3 (external control): the Multi ignores MaxDischargePower; holding off"
        return replace(guard, hold=hold)
    return guard
