"""``com.victronenergy.system`` of the simulated GX, as dbus-systemcalc-py computes it.

Its grid values come from the grid meter systemcalc would choose: the ``com.victronenergy.grid``
service with the lowest DeviceInstance (the GX's own meter, or an external one such as our
Shelly bridge). Computed values go out as one ItemsChanged per second; ``/Control/*`` and
``/ActiveBatteryService`` as PropertiesChanged, as systemcalc does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...venus import Identity, PathSpec, Service
from ...venus.names import BATTERY, SYSTEM
from ..physics import SiteState

__all__ = ["SystemService"]

W = PathSpec("d", "%.0F W")
V = PathSpec("d", "%.2F V")
A = PathSpec("d", "%.1F A")
PCT = PathSpec("d", "%.0F %%")
INT = PathSpec("i")
S = PathSpec("s")


class SystemService:
    """The systemcalc service; ``publish(state, grid_w)`` once per simulated second."""

    def __init__(self, phases: int, *, address: str, vebus: str, battery: str) -> None:
        """Declare the paths for ``phases`` phases; ``vebus``/``battery`` are service names."""
        self.phases = phases
        self.service = svc = Service(
            SYSTEM,
            identity=Identity(
                "Venus GX (simulated)",
                product_id=0xC030,
                connection="local",
                process_name="dbus-systemcalc-py (simulated)",
            ),
            device_instance=0,
            address=address,
        )
        for p in range(1, phases + 1):
            for group in (
                "Grid",
                "ActiveIn",
                "Consumption",
                "ConsumptionOnInput",
                "ConsumptionOnOutput",
                "PvOnGrid",
                "PvOnOutput",
            ):
                svc.add_path(f"/Ac/{group}/L{p}/Power", None, W)
        for group in (
            "Grid",
            "Consumption",
            "ConsumptionOnInput",
            "ConsumptionOnOutput",
            "PvOnGrid",
            "PvOnOutput",
        ):
            svc.add_path(f"/Ac/{group}/NumberOfPhases", None, INT)
        svc.add_path("/Ac/Grid/ProductId", None, INT)
        svc.add_path("/Ac/Grid/DeviceType", None, INT)
        svc.add_path("/Ac/ActiveIn/Source", 1, INT)
        for path, spec in (
            ("Soc", PCT),
            ("Voltage", V),
            ("Current", A),
            ("Power", W),
            ("TimeToGo", PathSpec("d", "%.0F s")),
            ("ConsumedAmphours", PathSpec("d", "%.1F Ah")),
            ("Capacity", PathSpec("d", "%.0F Ah")),
        ):
            svc.add_path(f"/Dc/Battery/{path}", None, spec)
        svc.add_path("/Dc/Battery/State", None, INT)
        svc.add_path("/Dc/Battery/BatteryService", battery, S)
        svc.add_path("/Dc/Pv/Power", None, W)
        svc.add_path("/Dc/Pv/Current", None, A)
        svc.add_path("/Dc/Vebus/Power", None, W)
        svc.add_path("/Dc/System/Power", None, W)
        svc.add_path("/Dc/System/Current", None, A)
        svc.add_path("/Dc/System/MeasurementType", None, INT)
        svc.add_path("/VebusService", vebus, S)
        svc.add_path("/VebusInstance", 276, INT)
        svc.add_path("/ActiveBatteryService", f"{BATTERY}/512", S)
        svc.add_path("/Hub", 4, INT)
        svc.add_path("/SystemType", "ESS", S)
        svc.add_path("/SystemState/State", None, INT)
        svc.add_path("/Control/ActiveSocLimit", None, PCT)
        svc.add_path("/Control/EssState", None, INT)
        svc.add_path("/Control/Dvcc", 1, INT)
        svc.add_path("/Serial", "c0619ab00001", S)

    def publish(
        self,
        st: SiteState,
        grid_w: Sequence[float | None] | None,
        meter: tuple[int | None, int | None] = (None, None),
        dc_system: tuple[float, float] | None = None,
    ) -> None:
        """Refresh from a snapshot; ``grid_w`` per phase from the chosen meter (None = none).

        ``dc_system``: (W, A) summed over the dcsystem services on the bus, as systemcalc does
        (None: there are none; the values are then invalid).
        """
        n = self.phases
        b, m = st.battery, st.multi
        v: dict[str, Any] = {}
        for i in range(n):
            p = i + 1
            v[f"/Ac/Grid/L{p}/Power"] = None if grid_w is None else grid_w[i]
            v[f"/Ac/ActiveIn/L{p}/Power"] = m.acin_w[i]
            v[f"/Ac/Consumption/L{p}/Power"] = st.consumption_w[i]
            v[f"/Ac/ConsumptionOnInput/L{p}/Power"] = st.consumption_on_input_w[i]
            v[f"/Ac/ConsumptionOnOutput/L{p}/Power"] = st.consumption_on_output_w[i]
            v[f"/Ac/PvOnGrid/L{p}/Power"] = st.pv_on_grid_w[i]
            v[f"/Ac/PvOnOutput/L{p}/Power"] = st.pv_on_output_w[i]
        for group in (
            "Consumption",
            "ConsumptionOnInput",
            "ConsumptionOnOutput",
            "PvOnGrid",
            "PvOnOutput",
        ):
            v[f"/Ac/{group}/NumberOfPhases"] = n
        v["/Ac/Grid/NumberOfPhases"] = None if grid_w is None else n
        v["/Ac/Grid/ProductId"], v["/Ac/Grid/DeviceType"] = meter
        v["/Dc/Battery/Soc"] = b.soc
        v["/Dc/Battery/Voltage"] = b.voltage_v
        v["/Dc/Battery/Current"] = b.current_a
        v["/Dc/Battery/Power"] = b.power_w
        v["/Dc/Battery/State"] = 1 if b.power_w > 30 else 2 if b.power_w < -30 else 0
        v["/Dc/Battery/TimeToGo"] = b.time_to_go_s
        v["/Dc/Battery/ConsumedAmphours"] = -b.consumed_ah
        v["/Dc/Battery/Capacity"] = b.capacity_ah
        sc = st.solar_charger
        v["/Dc/Pv/Power"] = None if sc is None else sc.output_w
        v["/Dc/Pv/Current"] = None if sc is None else sc.dc_current_a
        v["/Dc/Vebus/Power"] = m.dc_power_w
        v["/Dc/System/Power"] = None if dc_system is None else dc_system[0]
        v["/Dc/System/Current"] = None if dc_system is None else dc_system[1]
        v["/Dc/System/MeasurementType"] = None if dc_system is None else 1
        v["/SystemState/State"] = st.system_state
        self.service.update(v)
        self.service["/Control/ActiveSocLimit"] = st.ess.active_soc_limit
        self.service["/Control/EssState"] = st.ess.settings.battery_life_state
