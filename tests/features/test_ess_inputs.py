"""ESS readings on a real bus: the BMS limits come from the battery systemcalc uses.

One rule chooses the battery (``venus.active``) for the ESS core, the status line, time-to-go
and the settings guard: systemcalc's ``/Dc/Battery/BatteryService``, else its
``/ActiveBatteryService`` (class/instance), else the lowest DeviceInstance.
"""

from __future__ import annotations

import pytest

from venus_ems.clock import SteppedClock
from venus_ems.features.ess_inputs import InputTracker
from venus_ems.venus import Identity, PathSpec, Service, active_service, open_monitor
from venus_ems.venus.names import BATTERY, SYSTEM, service_name
from waiting import until

pytestmark = pytest.mark.anyio

BMS1 = service_name(BATTERY, "bms1")
BMS2 = service_name(BATTERY, "bms2")


def bms(address: str, name: str, instance: int, ccl_a: float) -> Service:
    svc = Service(name, identity=Identity("BMS"), device_instance=instance, address=address)
    svc.add_path("/Info/MaxChargeCurrent", ccl_a, PathSpec("d"))
    svc.add_path("/Info/MaxDischargeCurrent", 200.0, PathSpec("d"))
    return svc


def system(address: str, battery_service: str | None) -> Service:
    svc = Service(SYSTEM, identity=Identity("systemcalc"), device_instance=0, address=address)
    svc.add_path("/Dc/Battery/Soc", 60.0, PathSpec("d"))
    svc.add_path("/Dc/Battery/Power", -500.0, PathSpec("d"))
    svc.add_path("/Dc/Battery/BatteryService", battery_service, PathSpec("s"))
    svc.add_path("/ActiveBatteryService", f"{BATTERY}/512", PathSpec("s"))
    return svc


@pytest.mark.parametrize("battery_service", [BMS1, None], ids=["battery-service", "active"])
async def test_bms_limits_come_from_the_battery_systemcalc_uses(bus_address, battery_service):
    # bms2 has the lower instance; systemcalc uses bms1 (instance 512) either way
    async with (
        system(bus_address, battery_service),
        bms(bus_address, BMS1, 512, 80.0),
        bms(bus_address, BMS2, 256, 10.0),
        open_monitor(bus_address) as mon,
    ):  # fmt: skip
        await until(lambda: len(mon.services(BATTERY)) == 2 and mon.service(SYSTEM) is not None)
        assert active_service(mon, BATTERY) == BMS1
        tracker = InputTracker(SteppedClock())
        tracker.start()
        battery = tracker.battery(mon)
        assert battery is not None
        assert battery.ccl_a == 80.0  # not bms2's 10 A
        assert battery.power_w == -500.0
