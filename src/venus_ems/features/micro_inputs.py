"""What the micro-inverter core reads, built from the DTU's answers and the GX's D-Bus.

* :class:`DtuSnapshot`: the last successful read of the DTU (inverter readings and limit
  states, stamped when they arrived); a failed read keeps it, so ``dtu_at`` ages and the core
  goes safe after ``dtu_stale_s``.
* :func:`core_settings`: the core's settings from the configuration, the tunables in force and
  each inverter's nameplate (configured, else as the DTU reports it).
* :func:`grid_owners`: who else holds the grid (Victron's ESS mode and setpoint, our own
  ``[ess_control]`` tunables) for the one-owner rule (:mod:`venus_ems.control.micro_guard`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..control.micro_battery import BatteryRules
from ..control.micro_guard import GridOwners, ess_aim_w
from ..control.micro_model import InverterSample, InverterSettings, MicroSettings
from ..devices import InverterReading, LimitStatus
from ..runtime.config import MicroInverterConfig, MicroInverterControlConfig
from ..venus import SETTINGS_SERVICE, Monitor
from ..venus.names import HUB4, VENUSEMS

__all__ = [
    "DtuSnapshot",
    "Written",
    "core_settings",
    "default_dead_time_s",
    "grid_owners",
    "inverter_samples",
    "nameplate_of",
]

HUB4_MODE = "/Settings/CGwacs/Hub4Mode"
AC_SETPOINT = "/Settings/CGwacs/AcPowerSetPoint"
ESS_CONTROL = "/Settings/VenusEms/EssControl"
_ACTIVE = ("starting", "running", "backing_off")


@dataclass
class DtuSnapshot:
    """The last good answers of the DTU: readings and limit states per serial, when (s)."""

    readings: dict[str, InverterReading] = field(default_factory=dict)
    limits: dict[str, LimitStatus] = field(default_factory=dict)
    at: float | None = None
    error: str | None = None


def default_dead_time_s(model: str) -> float:
    """Seconds from a limit command to its full effect, by family (reference peers.md §6.2).

    HM with 1-2 inputs (HM-300..800): about 3-5 s; HM with 4 inputs (HM-1200/1500): 18-25 s;
    anything else (HMS, HMT, unknown): 15 s until measured.
    """
    if model.startswith("HM ") and model.endswith(("1-input", "2-input")):
        return 5.0
    if model.startswith("HM ") and model.endswith("4-input"):
        return 20.0
    return 15.0


def nameplate_of(inv: MicroInverterConfig, snap: DtuSnapshot) -> float | None:
    """An inverter's 100 % in W: configured, else what the DTU reports (None: unknown yet)."""
    if inv.max_power_w is not None:
        return inv.max_power_w
    status = snap.limits.get(inv.serial)
    if status is not None and status.max_power_w is not None:
        return status.max_power_w
    reading = snap.readings.get(inv.serial)
    return None if reading is None else reading.max_power_w


def core_settings(
    config: MicroInverterControlConfig,
    values: Mapping[str, float | str],
    nameplates: Mapping[str, float],
    models: Mapping[str, str],
) -> MicroSettings:
    """The core's settings (ValueError for values the core refuses); battery-fed inverters."""
    invs = []
    for inv in config.inverters:
        if inv.source != "battery":
            continue
        invs.append(
            InverterSettings(
                serial=inv.serial,
                max_power_w=nameplates[inv.serial],
                max_w=inv.max_w,
                min_pct=inv.min_pct,
                safe_pct=inv.safe_pct,
                priority=inv.priority,
                dead_time_s=inv.dead_time_s or default_dead_time_s(models.get(inv.serial, "")),
                learn_dead_time=inv.learn_dead_time,
            )
        )
    b = config.battery
    cap = float(values["total_cap_w"])
    full = float(values["full_soc_pct"])
    return MicroSettings(
        inverters=tuple(invs),
        target_w=float(values["target_w"]),
        down_band_w=config.down_band_w,
        up_band_w=config.up_band_w,
        up_delay_s=config.up_delay_s,
        max_increase_w=config.max_increase_w,
        total_cap_w=None if cap <= 0 else cap,
        stale_after_s=config.stale_input_s,
        dtu_stale_after_s=config.dtu_stale_s,
        meter_latency_s=1.0,
        max_failures=config.max_failures,
        restart_backoff_s=config.restart_backoff_s,
        rotate_s=config.rotate_s,
        battery=BatteryRules(
            stop_soc_pct=_opt(values["stop_soc_pct"]),
            start_soc_pct=_opt(values["start_soc_pct"]),
            stop_voltage_v=b.stop_voltage_v,
            start_voltage_v=b.start_voltage_v,
            seasonal=b.seasonal,
            full_soc_pct=None if full <= 0 else full,
            full_hysteresis_pct=b.full_hysteresis_pct,
            efficiency=b.efficiency,
            stale_after_s=max(config.stale_input_s, 30.0),
        ),
    )


def _opt(value: float | str) -> float | None:
    """Tunables store -1 for "not used"."""
    v = float(value)
    return None if v < 0 else v


@dataclass(frozen=True)
class Written:
    """What the writer of one inverter knows: the limit confirmed by read-back, failures."""

    confirmed_pct: int | None = None
    confirmed_at: float | None = None
    failures: int = 0


def inverter_samples(
    config: MicroInverterControlConfig,
    snap: DtuSnapshot,
    written: Mapping[str, Written],
    *,
    dry_run: bool = False,
) -> tuple[InverterSample, ...]:
    """What the core knows of each battery-fed inverter the DTU listed.

    In a dry run nothing reaches the DTU, so the limit it reports is left out (it would look
    like a lost limit) and ``written`` holds what the actuator would have written.
    """
    out = []
    for inv in config.inverters:
        reading = snap.readings.get(inv.serial)
        if inv.source != "battery" or reading is None:
            continue
        status = None if dry_run else snap.limits.get(inv.serial)
        w = written.get(inv.serial, Written())
        out.append(
            InverterSample(
                serial=inv.serial,
                reachable=reading.reachable,
                data_at=reading.data_at,
                ac_power_w=_non_negative(reading.ac_power_w),
                dc_power_w=_non_negative(reading.dc_power_w),
                limit_pct=None if status is None else _non_negative(status.limit_pct),
                limit_state=None if status is None else status.state,
                confirmed_pct=w.confirmed_pct,
                confirmed_at=w.confirmed_at,
                write_failures=w.failures,
            )
        )
    return tuple(out)


def _non_negative(value: float | None) -> float | None:
    """A reading below zero (a float32 -0.1 on a sleeping inverter) is none at all."""
    return None if value is None else max(value, 0.0)


def grid_owners(monitor: Monitor, *, own_band_w: float = 25.0) -> GridOwners:
    """Victron's ESS mode and setpoint (override first), our ``[ess_control]`` aim if it runs.

    Our own ESS control counts while its state on ``com.victronenergy.venusems`` is active and
    its ``Mode`` tunable is ``grid_target``; its dead band is not a tunable: ``own_band_w``.
    """
    mode = monitor.get_int(SETTINGS_SERVICE, HUB4_MODE)
    override = monitor.get_float(HUB4, "/Overrides/Setpoint")
    setpoint = override
    if setpoint is None:
        setpoint = monitor.get_float(SETTINGS_SERVICE, AC_SETPOINT)
    own = None
    running = monitor.get(VENUSEMS, "/Features/ess_control/State") in _ACTIVE
    if running and monitor.get(SETTINGS_SERVICE, f"{ESS_CONTROL}/Mode") == "grid_target":
        kind = monitor.get(SETTINGS_SERVICE, f"{ESS_CONTROL}/GridTarget")
        target = monitor.get_float(SETTINGS_SERVICE, f"{ESS_CONTROL}/TargetW")
        if isinstance(kind, str) and target is not None:
            caps = {"export_cap": "ExportCapW", "import_cap": "ImportCapW"}
            cap = None
            if kind in caps:
                cap = monitor.get_float(SETTINGS_SERVICE, f"{ESS_CONTROL}/{caps[kind]}")
            try:
                own = ess_aim_w(kind, target, cap, own_band_w)
            except ValueError:
                own = target
    return GridOwners(mode, setpoint, own, own_band_w if own is not None else 0.0)
