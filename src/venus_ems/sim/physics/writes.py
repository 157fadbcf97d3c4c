"""Write API of a site (Venus services, device emulators); ValueError on bad input."""

from __future__ import annotations

import math
from dataclasses import fields
from typing import TYPE_CHECKING

from .multi import MODE_CHARGER_ONLY, MODE_INVERTER_ONLY, MODE_OFF, MODE_ON

if TYPE_CHECKING:
    from .battery import Battery
    from .ess import EssLoop, EssSettings
    from .ev import Car, EvCharger
    from .loads import Heater, Relay
    from .meter import GridMeter
    from .micro import MicroInverter
    from .multi import Multi
    from .pv import PvInverter, SolarCharger

__all__ = ["SETTING_PATHS", "SiteWrites"]

# localsettings path -> EssSettings field.
SETTING_PATHS: dict[str, str] = {
    "/Settings/CGwacs/Hub4Mode": "hub4_mode",
    "/Settings/CGwacs/AcPowerSetPoint": "ac_power_setpoint_w",
    "/Settings/CGwacs/MaxFeedInPower": "max_feed_in_power_w",
    "/Settings/CGwacs/MaxDischargePower": "max_discharge_power_w",
    "/Settings/CGwacs/MaxChargePower": "max_charge_power_w",
    "/Settings/CGwacs/OvervoltageFeedIn": "overvoltage_feed_in",
    "/Settings/CGwacs/PreventFeedback": "prevent_feedback",
    "/Settings/CGwacs/BatteryLife/MinimumSocLimit": "minimum_soc_limit",
    "/Settings/CGwacs/BatteryLife/State": "battery_life_state",
    "/Settings/CGwacs/BatteryLife/SocLimit": "battery_life_soc_limit",
    "/Settings/CGwacs/RunWithoutGridMeter": "run_without_grid_meter",
    "/Settings/SystemSetup/MaxChargeCurrent": "max_charge_current_a",
}

_ENUMS: dict[str, tuple[int, ...]] = {
    "hub4_mode": (1, 2, 3),
    "overvoltage_feed_in": (0, 1),
    "prevent_feedback": (0, 1),
    "battery_life_state": tuple(range(13)),
    "run_without_grid_meter": (0, 1, 2),
}
_PERCENT = ("minimum_soc_limit", "battery_life_soc_limit")
_MINUS_ONE_OR_POSITIVE = (
    "max_feed_in_power_w",
    "max_discharge_power_w",
    "max_charge_power_w",
    "max_charge_current_a",
)


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return float(value)


def _flag(value: object, what: str) -> bool:
    if value not in (0, 1, True, False):
        raise ValueError(f"{what} must be 0 or 1, got {value!r}")
    return bool(value)


class SiteWrites:
    """Mixin with every write a GX or device would accept; the site's time stamps them."""

    time: float
    phases: int
    battery: Battery
    multi: Multi
    ess: EssLoop
    meter: GridMeter
    solar: SolarCharger | None
    pv_inverter: PvInverter | None
    micros: dict[str, MicroInverter]
    ev: EvCharger | None
    heater: Heater | None
    relays: dict[str, Relay]
    dc_system_w: float | None

    # --- ESS settings, hub4 overrides, vebus ---------------------------------------------
    def set_ess_setting(self, key: str, value: object) -> None:
        """Write one EssSettings field (or its ``/Settings/...`` path); ValueError if invalid."""
        key = SETTING_PATHS.get(key, key)
        names = {f.name for f in fields(self.ess.settings)}
        if key not in names:
            raise ValueError(f"unknown ESS setting {key!r}")
        v = _number(value, key)
        if key in _ENUMS and v not in _ENUMS[key]:
            raise ValueError(f"{key} must be one of {_ENUMS[key]}, got {value!r}")
        if key in _PERCENT and not 0 <= v <= 100:
            raise ValueError(f"{key} must be in 0..100 %, got {value!r}")
        if key in _MINUS_ONE_OR_POSITIVE and v < 0 and v != -1:
            raise ValueError(f"{key} must be -1 (no limit) or >= 0, got {value!r}")
        setattr(self.ess.settings, key, int(v) if key in _ENUMS else v)

    def ess_settings(self) -> EssSettings:
        """The live settings object (read it; write through :meth:`set_ess_setting`)."""
        return self.ess.settings

    def _override(self, name: str, value: float | int | None) -> None:
        """Set one hub4 override, stamped now (its timeout, if any, starts again)."""
        setattr(self.ess.overrides, name, value)
        self.ess.override_written_at[name] = self.time

    def set_hub4_setpoint_override(self, watts: float | None) -> None:
        """hub4 ``/Overrides/Setpoint`` W (+ = import); None = use AcPowerSetPoint."""
        self._override("setpoint_w", None if watts is None else _number(watts, "setpoint"))

    def set_hub4_max_discharge_override(self, watts: float) -> None:
        """hub4 ``/Overrides/MaxDischargePower`` W, -1 = no limit."""
        v = _number(watts, "MaxDischargePower")
        if v < 0 and v != -1:
            raise ValueError(f"MaxDischargePower must be -1 or >= 0, got {watts!r}")
        self._override("max_discharge_power_w", v)

    def set_hub4_force_charge(self, on: object) -> None:
        """hub4 ``/Overrides/ForceCharge`` 0/1."""
        self._override("force_charge", int(_flag(on, "ForceCharge")))

    def set_hub4_feed_in_excess(self, value: object) -> None:
        """hub4 ``/Overrides/FeedInExcess``: 0 follow settings, 1 restrict, 2 allow."""
        if value not in (0, 1, 2):
            raise ValueError(f"FeedInExcess must be 0, 1 or 2, got {value!r}")
        self._override("feed_in_excess", int(_number(value, "FeedInExcess")))

    def restart_hub4(self) -> None:
        """hub4control restarted: every override is back to its default (they are not persisted)."""
        self.ess.reset_overrides()

    def set_vebus_setpoint(self, phase: int, watts: float) -> None:
        """The vebus ``/Hub4/L<phase>/AcPowerSetpoint`` W (+ = import at AC-in), stamped now."""
        if phase not in range(1, self.phases + 1):
            raise ValueError(f"phase must be 1..{self.phases}, got {phase!r}")
        self.ess.vebus.setpoints_w[phase - 1] = _number(watts, "AcPowerSetpoint")
        self.ess.vebus.written_at[phase - 1] = self.time

    def set_vebus_disable_charge(self, on: object) -> None:
        """The vebus ``/Hub4/DisableCharge`` 0/1."""
        self.ess.vebus.disable_charge = int(_flag(on, "DisableCharge"))

    def set_vebus_disable_feed_in(self, on: object) -> None:
        """The vebus ``/Hub4/DisableFeedIn`` 0/1."""
        self.ess.vebus.disable_feed_in = int(_flag(on, "DisableFeedIn"))

    def set_vebus_mode(self, mode: object) -> None:
        """The vebus ``/Mode``: 1 charger only, 2 inverter only, 3 on, 4 off."""
        if mode not in (MODE_CHARGER_ONLY, MODE_INVERTER_ONLY, MODE_ON, MODE_OFF):
            raise ValueError(f"vebus mode must be 1..4, got {mode!r}")
        self.multi.mode = int(_number(mode, "mode"))

    # --- PV -------------------------------------------------------------------------------
    def set_pv_inverter_limit(self, watts: float | None) -> None:
        """The pvinverter ``/Ac/PowerLimit`` W (None = release); expires if not refreshed."""
        if self.pv_inverter is None:
            raise ValueError("this site has no PV inverter")
        v = None if watts is None else _number(watts, "PowerLimit")
        if v is not None and v < 0:
            raise ValueError(f"PowerLimit must be >= 0, got {watts!r}")
        self.pv_inverter.set_limit(v, self.time)

    def set_solar_charge_current_limit(self, amps: float | None) -> None:
        """The solarcharger ``/Link/ChargeCurrent`` A (None = no DVCC limit)."""
        if self.solar is None:
            raise ValueError("this site has no solar charger")
        v = None if amps is None else _number(amps, "ChargeCurrent")
        if v is not None and v < 0:
            raise ValueError(f"ChargeCurrent must be >= 0, got {amps!r}")
        self.solar.link_charge_current_a = v

    # --- micro-inverters --------------------------------------------------------------------
    def _micro(self, serial: str) -> MicroInverter:
        try:
            return self.micros[serial]
        except KeyError:
            raise ValueError(f"no micro-inverter with serial {serial!r}") from None

    def set_micro_limit(self, serial: str, value: float, *, relative: bool = False) -> None:
        """Queue a limit (W, or % when ``relative``) that applies after the dead time and ramps."""
        mi = self._micro(serial)
        v = _number(value, "limit_value")
        if not 0 <= v <= 2250:
            raise ValueError(f"limit_value must be in 0..2250, got {value!r}")
        if relative and v > 100:
            raise ValueError(f"relative limit must be in 0..100 %, got {value!r}")
        mi.command_limit(v, relative=relative, now=self.time)

    def set_micro_power(self, serial: str, on: bool) -> None:
        """Queue switching an inverter on/off (applies after the dead time)."""
        self._micro(serial).command_power(_flag(on, "power"), self.time)

    def restart_micro(self, serial: str) -> None:
        """Queue a restart: off for ``restart_s``, back at the persistent limit."""
        self._micro(serial).command_restart(self.time)

    def set_micro_reachable(self, serial: str, reachable: bool) -> None:
        """Fault knob (radio loss): an unreachable inverter keeps producing but fails commands."""
        self._micro(serial).reachable = _flag(reachable, "reachable")

    def set_micro_refuse_limits(self, serial: str, refuse: bool) -> None:
        """Fault knob: the inverter answers but refuses every limit command (``Failure``)."""
        self._micro(serial).refuse_limits = _flag(refuse, "refuse")

    # --- consumers ------------------------------------------------------------------------
    def _ev(self) -> EvCharger:
        if self.ev is None:
            raise ValueError("this site has no EV charger")
        return self.ev

    def set_ev_current(self, amps: float) -> None:
        """EV charging current A (clamped to the charger's range)."""
        self._ev().set_current(_number(amps, "current"))

    def set_ev_phases(self, phases: int) -> None:
        """EV charging phases 1 or 3 (pauses charging while switching)."""
        self._ev().set_phases(phases, self.time)

    def set_ev_enabled(self, on: bool) -> None:
        """Start (True) or stop (False) EV charging."""
        self._ev().enabled = _flag(on, "start/stop")

    def ev_plug_in(self, energy_kwh: float, taper: tuple[tuple[float, float], ...] = ()) -> None:
        """A car arrives wanting ``energy_kwh``; ``taper`` = (delivered kWh, car max W) steps."""
        self._ev().plug_in(_number(energy_kwh, "energy_kwh"), taper)

    def ev_plug_in_car(self, car: Car) -> None:
        """A car arrives (battery, SoC, on-board charger, taper: see ``physics.ev.Car``)."""
        self._ev().plug_in_car(car)

    def ev_unplug(self) -> None:
        """The car leaves."""
        self._ev().unplug()

    def set_heater_power(self, watts: float) -> float:
        """Switch the heater coils to the largest level <= ``watts``; returns that level W."""
        if self.heater is None:
            raise ValueError("this site has no heater")
        return self.heater.set_power(_number(watts, "heater power"))

    def set_heater_coil(self, index: int, on: bool) -> None:
        """Switch one heater coil (0-based)."""
        if self.heater is None:
            raise ValueError("this site has no heater")
        if index not in range(len(self.heater.coils)):
            raise ValueError(f"heater coil index must be 0..{len(self.heater.coils) - 1}")
        self.heater.set_coil(index, _flag(on, "coil"))

    def set_relay(self, name: str, on: bool) -> None:
        """Switch a relay load on or off."""
        if name not in self.relays:
            raise ValueError(f"no relay named {name!r}")
        self.relays[name].on = _flag(on, "relay")

    # --- meter and faults -----------------------------------------------------------------
    def set_meter_connected(self, on: bool) -> None:
        """External grid meter on/off; the true grid power stays readable either way."""
        self.meter.connected = _flag(on, "meter connected")

    def set_dc_system(self, watts: float | None) -> None:
        """Set the GX's ``/Dc/System/Power`` W (+ = consuming) as DVCC uses it; None = no GX."""
        self.dc_system_w = None if watts is None else _number(watts, "dc_system")

    def feed_external_meter(self, readings_w: list[float] | None) -> None:
        """The ESS loop regulates on this meter's reading per phase W (None = meter offline)."""
        self.meter.feed_external(readings_w)

    def set_battery_fault(
        self,
        *,
        allow_charge: bool | None = None,
        allow_discharge: bool | None = None,
        ccl_a: float | None = None,
        dcl_a: float | None = None,
    ) -> None:
        """Override BMS outputs (None = the BMS decides again)."""
        b = self.battery
        b.allow_charge_override = allow_charge
        b.allow_discharge_override = allow_discharge
        b.ccl_override_a = None if ccl_a is None else _number(ccl_a, "ccl_a")
        b.dcl_override_a = None if dcl_a is None else _number(dcl_a, "dcl_a")
