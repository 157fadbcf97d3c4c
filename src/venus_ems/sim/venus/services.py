"""The Victron services of a simulated GX (venus-dbus.md §6), fed from a :class:`Site`.

``vebus``, ``battery``, ``solarcharger``, ``grid`` (the GX's own meter, absent when an external
meter is configured), ``pvinverter`` and ``hub4`` are published here; ``system`` lives in
:mod:`.system`. Writes go into the physics through the site's write API: a rejected value
answers SetValue with code 2 and changes nothing. Like mk2-dbus, the mode-3 setpoints
``/Hub4/L1..L3/AcPowerSetpoint`` are accepted but never echoed (no signal, GetValue keeps 0).

Fault knobs: ``unanswered`` (short names such as ``"hub4"`` whose SetValue calls never get a
reply, a hung process) and ``lost_mode3_writes`` (mode-3 setpoints answered 0 but never reaching
the Multi, as on a broken VE.Bus link).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from dbus_fast import Message, MessageType

from ...venus import Identity, PathSpec, Service
from ...venus.codec import SetResult, coerce_for_write, unwrap
from ...venus.names import BATTERY, GRID, HUB4, PVINVERTER, SOLARCHARGER, VEBUS, service_name
from ...venus.specs import add_grid_paths
from ..physics import Site, SiteState

__all__ = ["SimServices"]

_LOG = logging.getLogger(__name__)

W = PathSpec("d", "%.0F W")
V = PathSpec("d", "%.1F V")
A = PathSpec("d", "%.1F A")
HZ = PathSpec("d", "%.2F Hz")
KWH = PathSpec("d", "%.2F kWh")
PCT = PathSpec("d", "%.1F %%")
INT = PathSpec("i")
S = PathSpec("s")


def _writer(apply: Callable[[Any], None]) -> Callable[[str, Any], bool]:
    """An on_write callback that applies a value to the physics; False if it refuses it."""

    def on_write(path: str, value: Any) -> bool:
        try:
            apply(value)
        except (ValueError, TypeError) as err:
            _LOG.info("simulated GX refused %s = %r: %s", path, value, err)
            return False
        return True

    return on_write


class SimServices:
    """Declares the device services of a simulated GX and refreshes them from site states."""

    def __init__(self, site: Site, *, address: str, internal_meter: bool = True) -> None:
        """Build every service (nothing is on the bus until ``register``)."""
        self.site = site
        self.phases = n = site.phases
        self.unanswered: set[str] = set()
        self.lost_mode3_writes = False
        st = site.state()
        phs = range(1, n + 1)

        self.vebus = Service(
            service_name(VEBUS, "ttyS4"),
            identity=Identity(
                "MultiPlus-II 48/5000/70-50",
                product_id=0x2714,
                connection="VE.Bus",
                firmware_version=0x502,
                process_name="mk2-dbus (simulated)",
            ),
            device_instance=276,
            address=address,
        )
        vb = self.vebus
        for p in phs:
            for side in ("ActiveIn", "Out"):
                vb.add_path(f"/Ac/{side}/L{p}/P", None, W)
                vb.add_path(f"/Ac/{side}/L{p}/V", None, V)
                vb.add_path(f"/Ac/{side}/L{p}/I", None, A)
                vb.add_path(f"/Ac/{side}/L{p}/F", None, HZ)
            vb.add_path(f"/Hub4/L{p}/AcPowerSetpoint", 0.0, PathSpec("d", "%.0F W", writable=True))
        vb.add_path("/Ac/ActiveIn/P", None, W)
        vb.add_path("/Ac/Out/P", None, W)
        vb.add_path("/Ac/ActiveIn/ActiveInput", 0, INT)
        vb.add_path("/Ac/ActiveIn/Connected", 1, INT)
        vb.add_path(
            "/Ac/ActiveIn/CurrentLimit",
            32.0,
            PathSpec("d", "%.1F A", writable=True, min=0, max=100),
        )
        vb.add_path("/Ac/NumberOfPhases", n, INT)
        vb.add_path("/Ac/NumberOfAcInputs", 1, INT)
        for path, spec in (
            ("Voltage", V),
            ("Current", A),
            ("Power", W),
            ("Temperature", PathSpec("d", "%.0F C")),
        ):
            vb.add_path(f"/Dc/0/{path}", None, spec)
        vb.add_path("/Dc/0/MaxChargeCurrent", None, PathSpec("d", "%.0F A", writable=True))
        vb.add_path(
            "/Mode",
            st.multi.mode,
            PathSpec("i", writable=True),
            on_write=_writer(site.set_vebus_mode),
        )
        vb.add_path("/ModeIsAdjustable", 1, INT)
        vb.add_path("/State", st.multi.state, INT)
        vb.add_path("/Soc", None, PCT)
        vb.add_path("/Hub4/AssistantId", 5, INT)
        vb.add_path(
            "/Hub4/DisableCharge",
            0,
            PathSpec("i", writable=True),
            on_write=_writer(site.set_vebus_disable_charge),
        )
        vb.add_path(
            "/Hub4/DisableFeedIn",
            0,
            PathSpec("i", writable=True),
            on_write=_writer(site.set_vebus_disable_feed_in),
        )
        vb.add_path("/Bms/AllowToCharge", 1, INT)
        vb.add_path("/Bms/AllowToDischarge", 1, INT)
        vb.add_path("/VebusError", 0, INT)
        vb.add_handler(self._hang("vebus"))
        vb.add_handler(self._mode3_setpoint)

        self.battery = Service(
            service_name(BATTERY, "socketcan_can1"),
            identity=Identity(
                "Simulated LFP battery",
                product_id=0xB00A,
                connection="VE.Can",
                firmware_version="2.1",
                process_name="dbus-canbattery (simulated)",
            ),
            device_instance=512,
            address=address,
        )
        bt = self.battery
        bt.add_path("/Soc", None, PCT)
        bt.add_path("/Soh", 100.0, PCT)
        for path, spec in (
            ("Voltage", V),
            ("Current", A),
            ("Power", W),
            ("Temperature", PathSpec("d", "%.1F C")),
        ):
            bt.add_path(f"/Dc/0/{path}", None, spec)
        bt.add_path("/Info/MaxChargeCurrent", None, A)
        bt.add_path("/Info/MaxDischargeCurrent", None, A)
        bt.add_path("/Info/MaxChargeVoltage", None, V)
        bt.add_path("/Info/BatteryLowVoltage", None, V)
        bt.add_path("/Io/AllowToCharge", 1, INT)
        bt.add_path("/Io/AllowToDischarge", 1, INT)
        bt.add_path("/Capacity", None, PathSpec("d", "%.0F Ah"))
        bt.add_path("/InstalledCapacity", site.params.battery.capacity_ah, PathSpec("d", "%.0F Ah"))
        bt.add_path("/ConsumedAmphours", None, PathSpec("d", "%.1F Ah"))
        bt.add_path("/TimeToGo", None, PathSpec("d", "%.0F s"))  # a CAN BMS usually has none

        self.solarcharger: Service | None = None
        if site.solar is not None:
            sc = self.solarcharger = Service(
                service_name(SOLARCHARGER, "ttyS5"),
                identity=Identity(
                    "SmartSolar MPPT 150/100",
                    product_id=0xA058,
                    connection="VE.Direct",
                    firmware_version=0x163,
                    process_name="vedirect-interface (simulated)",
                ),
                device_instance=278,
                address=address,
            )
            sc.add_path("/Yield/Power", None, W)
            sc.add_path("/Pv/V", None, V)
            sc.add_path("/Dc/0/Voltage", None, V)
            sc.add_path("/Dc/0/Current", None, A)
            sc.add_path("/Load/I", None, A)
            sc.add_path("/State", None, INT)
            sc.add_path("/MppOperationMode", None, INT)
            sc.add_path("/Mode", 1, INT)
            sc.add_path("/ErrorCode", 0, INT)
            sc.add_path("/Yield/User", None, KWH)
            sc.add_path("/Link/NetworkMode", 0, PathSpec("i", writable=True))
            sc.add_path(
                "/Link/ChargeCurrent",
                None,
                PathSpec("d", "%.1F A", writable=True),
                on_write=_writer(site.set_solar_charge_current_limit),
            )

        self.grid: Service | None = None
        if internal_meter:
            gr = self.grid = Service(
                service_name(GRID, "cgwacs_ttyUSB0_mb1"),
                identity=Identity(
                    "Energy Meter ET340",
                    product_id=0xB002,
                    connection="Modbus RTU",
                    process_name="dbus-cgwacs (simulated)",
                ),
                device_instance=30,
                address=address,
            )
            add_grid_paths(
                gr,
                [f"L{p}" for p in phs],
                device_type=345,
                roles=("grid", "pvinverter", "genset", "acload"),
            )
            gr.add_path("/Serial", "SIM0000001", S)

        self.pvinverter: Service | None = None
        if site.pv_inverter is not None:
            pv = self.pvinverter = Service(
                service_name(PVINVERTER, "pv_sim"),
                identity=Identity(
                    "Fronius Symo 3.0-3-M (simulated)",
                    product_id=0xA142,
                    connection="SunSpec",
                    process_name="dbus-fronius (simulated)",
                ),
                device_instance=20,
                address=address,
            )
            pv.add_path("/Ac/Power", None, W)
            for p in phs:
                pv.add_path(f"/Ac/L{p}/Power", None, W)
            pv.add_path("/Ac/Energy/Forward", None, KWH)
            pv.add_path("/Position", 0, INT)
            pv.add_path("/StatusCode", None, INT)
            pv.add_path("/ErrorCode", 0, INT)
            rated = site.pv_inverter.params.rated_power_w
            pv.add_path("/Ac/MaxPower", rated, W)
            pv.add_path("/Ac/NumberOfPhases", n, INT)
            pv.add_path(
                "/Ac/PowerLimit",
                rated,
                PathSpec("d", "%.0F W", writable=True, min=0),
                on_write=_writer(site.set_pv_inverter_limit),
            )

        self.hub4 = Service(
            HUB4,
            identity=Identity("hub4control (simulated)", product_id=None, connection="internal"),
            device_instance=0,
            address=address,
        )
        hb = self.hub4
        hb.add_path(
            "/Overrides/Setpoint",
            None,
            PathSpec("d", "%.0F W", writable=True),
            on_write=_writer(site.set_hub4_setpoint_override),
        )
        hb.add_path(
            "/Overrides/MaxDischargePower",
            -1.0,
            PathSpec("d", "%.0F W", writable=True),
            on_write=_writer(site.set_hub4_max_discharge_override),
        )
        hb.add_path(
            "/Overrides/ForceCharge",
            0,
            PathSpec("i", writable=True),
            on_write=_writer(site.set_hub4_force_charge),
        )
        hb.add_path(
            "/Overrides/FeedInExcess",
            0,
            PathSpec("i", writable=True),
            on_write=_writer(site.set_hub4_feed_in_excess),
        )
        hb.add_path("/PvPowerLimiterActive", 0, INT)
        hb.add_handler(self._hang("hub4"))
        if self.pvinverter is not None:
            self.pvinverter.add_handler(self._hang("pvinverter"))

    def services(self) -> list[Service]:
        """Every device service, in registration order."""
        found = [self.vebus, self.battery, self.solarcharger, self.grid, self.pvinverter, self.hub4]
        return [s for s in found if s is not None]

    def by_short_name(self, short: str) -> Service:
        """``vebus``, ``battery``, ``solarcharger``, ``grid``, ``pvinverter`` or ``hub4``."""
        svc = {s.name.split(".")[2]: s for s in self.services()}.get(short)
        if svc is None:
            raise ValueError(f"this GX has no {short} service")
        return svc

    def _hang(self, short: str) -> Callable[[Message], Message | bool | None]:
        """A handler that swallows SetValue (no reply at all) while ``short`` is unanswered."""

        def handler(msg: Message) -> Message | bool | None:
            if short in self.unanswered and msg.member == "SetValue":
                _LOG.info("simulated %s does not answer SetValue %s", short, msg.path)
                return True
            return None

        return handler

    def _mode3_setpoint(self, msg: Message) -> Message | None:
        """The vebus ``/Hub4/Lx/AcPowerSetpoint``: accepted into the physics, never echoed."""
        path = msg.path or ""
        if msg.message_type is not MessageType.METHOD_CALL or msg.member != "SetValue":
            return None
        if not (path.startswith("/Hub4/L") and path.endswith("/AcPowerSetpoint")):
            return None
        code = SetResult.OK
        try:
            value = coerce_for_write("d", unwrap(msg.body[0]) if msg.body else None)
            if not isinstance(value, float):
                raise TypeError("a setpoint must be a number")
            if not self.lost_mode3_writes:
                self.site.set_vebus_setpoint(int(path[7]), value)
        except (ValueError, TypeError) as err:
            _LOG.info("simulated vebus refused %s: %s", path, err)
            code = SetResult.REJECTED
        return Message.new_method_return(msg, "i", [int(code)])

    def publish(self, st: SiteState) -> None:
        """Refresh every service from one snapshot (one ItemsChanged per service)."""
        n = self.phases
        m, b = st.multi, st.battery
        vb: dict[str, Any] = {}
        for i in range(n):
            p = i + 1
            vb[f"/Ac/ActiveIn/L{p}/P"] = m.acin_w[i]
            vb[f"/Ac/ActiveIn/L{p}/V"] = m.voltage_v[i] if m.grid_connected else None
            vb[f"/Ac/ActiveIn/L{p}/I"] = m.acin_current_a[i]
            vb[f"/Ac/ActiveIn/L{p}/F"] = m.frequency_hz if m.grid_connected else None
            vb[f"/Ac/Out/L{p}/P"] = m.acout_w[i]
            vb[f"/Ac/Out/L{p}/V"] = m.voltage_v[i]
            vb[f"/Ac/Out/L{p}/I"] = m.acout_current_a[i]
            vb[f"/Ac/Out/L{p}/F"] = m.frequency_hz
        vb["/Ac/ActiveIn/P"] = sum(m.acin_w)
        vb["/Ac/Out/P"] = sum(m.acout_w)
        vb["/Ac/ActiveIn/ActiveInput"] = 0 if m.grid_connected else 240
        vb["/Ac/ActiveIn/Connected"] = int(m.grid_connected)
        vb["/Dc/0/Voltage"] = m.dc_voltage_v
        vb["/Dc/0/Current"] = m.dc_current_a
        vb["/Dc/0/Power"] = m.dc_power_w
        vb["/Dc/0/Temperature"] = b.temperature_c
        vb["/Mode"] = m.mode
        vb["/State"] = m.state
        vb["/Soc"] = b.soc
        vb["/Hub4/DisableCharge"] = st.ess.disable_charge
        vb["/Hub4/DisableFeedIn"] = st.ess.disable_feed_in
        vb["/Bms/AllowToCharge"] = int(m.allow_to_charge)
        vb["/Bms/AllowToDischarge"] = int(m.allow_to_discharge)
        self.vebus.update(vb)

        self.battery.update(
            {
                "/Soc": b.soc,
                "/Dc/0/Voltage": b.voltage_v,
                "/Dc/0/Current": b.current_a,
                "/Dc/0/Power": b.power_w,
                "/Dc/0/Temperature": b.temperature_c,
                "/Info/MaxChargeCurrent": b.ccl_a,
                "/Info/MaxDischargeCurrent": b.dcl_a,
                "/Info/MaxChargeVoltage": b.cvl_v,
                "/Info/BatteryLowVoltage": b.low_voltage_v,
                "/Io/AllowToCharge": int(b.allow_charge),
                "/Io/AllowToDischarge": int(b.allow_discharge),
                "/Capacity": b.capacity_ah * b.soc / 100.0,
                "/ConsumedAmphours": -b.consumed_ah,
            }
        )
        sc = st.solar_charger
        if self.solarcharger is not None and sc is not None:
            self.solarcharger.update(
                {
                    "/Yield/Power": sc.pv_power_w,
                    "/Pv/V": sc.pv_voltage_v,
                    "/Dc/0/Voltage": sc.dc_voltage_v,
                    "/Dc/0/Current": sc.dc_current_a,
                    "/State": sc.state,
                    "/MppOperationMode": sc.mpp_operation_mode,
                    "/Yield/User": sc.yield_kwh,
                    "/Link/ChargeCurrent": sc.link_charge_current_a,
                }
            )
        g = st.grid
        if self.grid is not None:
            if g.meter_w is None or not g.meter_connected:
                gv: dict[str, Any] = {"/Ac/Power": None}
                for i in range(n):
                    gv |= {f"/Ac/L{i + 1}/{k}": None for k in ("Power", "Voltage", "Current")}
            else:
                gv = {"/Ac/Power": sum(g.meter_w), "/Ac/Frequency": g.frequency_hz}
                for i in range(n):
                    p = i + 1
                    gv[f"/Ac/L{p}/Power"] = g.meter_w[i]
                    gv[f"/Ac/L{p}/Voltage"] = g.voltage_v[i]
                    gv[f"/Ac/L{p}/Current"] = g.current_a[i]
                    gv[f"/Ac/L{p}/Energy/Forward"] = g.forward_kwh[i]
                    gv[f"/Ac/L{p}/Energy/Reverse"] = g.reverse_kwh[i]
                gv["/Ac/Energy/Forward"] = sum(g.forward_kwh)
                gv["/Ac/Energy/Reverse"] = sum(g.reverse_kwh)
            self.grid.update(gv)
        pvs = st.pv_inverter
        if self.pvinverter is not None and pvs is not None:
            pvv: dict[str, Any] = {
                "/Ac/Power": pvs.power_w,
                "/Ac/Energy/Forward": pvs.energy_kwh,
                "/Position": pvs.position,
                "/StatusCode": pvs.status_code,
                # dbus-fronius shows MaxPower again once a limit expired (or was never set)
                "/Ac/PowerLimit": (
                    pvs.rated_power_w if pvs.power_limit_w is None else pvs.power_limit_w
                ),
            }
            for i in range(n):
                pvv[f"/Ac/L{i + 1}/Power"] = pvs.phase_w[i]
            self.pvinverter.update(pvv)
        self.hub4.update(
            {
                "/Overrides/Setpoint": st.ess.overrides.setpoint_w,
                "/Overrides/MaxDischargePower": st.ess.overrides.max_discharge_power_w,
                "/Overrides/ForceCharge": st.ess.overrides.force_charge,
                "/Overrides/FeedInExcess": st.ess.overrides.feed_in_excess,
                "/PvPowerLimiterActive": int(st.ess.pv_power_limiter_active),
            }
        )
