"""venus-ems doctor: the checks on collected facts, and the whole report on a simulated GX."""

from __future__ import annotations

import sys

import anyio
import pytest
from gx_helpers import make_gx_root

from venus_ems.clock import RealClock
from venus_ems.daemon import run_daemon
from venus_ems.features import create_features
from venus_ems.install.checks import FAIL, NOTE, OK, WARN, Facts, all_checks
from venus_ems.install.doctor import collect
from venus_ems.install.service import SvStatus
from venus_ems.install.target import Target, VenusVersion
from venus_ems.runtime.config import load_config
from venus_ems.sim.venus.gx import SimulatedGx
from venus_ems.venus import Identity, PathSpec, Service, open_monitor
from waiting import until

SETTINGS = "com.victronenergy.settings"


def facts(**kw) -> Facts:
    base = {
        "target": Target(VenusVersion(3, 70), "einstein", "armv7l", (3, 12)),
        "config_path": "/data/venus-ems/config.toml",
        "services": {
            SETTINGS: {
                "/Settings/CGwacs/Hub4Mode": 1,
                "/Settings/CGwacs/BatteryLife/State": 2,
                "/Settings/Services/Bol": 1,
                "/Settings/DynamicEss/Mode": 0,
            },
            "com.victronenergy.hub4": {},
            "com.victronenergy.grid.cgwacs_ttyUSB0_mb1": {"/DeviceInstance": 30},
        },
    }
    base.update(kw)
    return Facts(**base)


def found(f: Facts) -> dict[str, tuple[str, str]]:
    return {c.title: (c.level, c.text) for c in all_checks(f)}


def with_settings(**values) -> dict:
    services = facts().services
    services[SETTINGS] = {**services[SETTINGS], **values}
    return services


def test_a_plain_gx_is_fine():
    report = found(facts())
    assert report["platform"][0] == OK
    assert report["ESS"] == (OK, report["ESS"][1])
    assert "Optimized (with BatteryLife)" in report["ESS"][1]
    assert report["DVCC"] == (OK, "on")
    assert report["grid meter"][0] == OK
    assert report["install"][0] == NOTE


@pytest.mark.parametrize(
    ("kw", "title", "level", "text"),
    [
        (
            {"services": with_settings(**{"/Settings/CGwacs/Hub4Mode": 3})},
            "ESS",
            WARN,
            "external control but no venus-ems mode-3 controller",
        ),
        ({"services": with_settings(**{"/Settings/Services/Bol": 0})}, "DVCC", NOTE, "off"),
        (
            {
                "services": {
                    **with_settings(**{"/Settings/Services/Bol": 0}),
                    "com.victronenergy.battery.bms": {"/Info/MaxChargeCurrent": 50},
                }
            },
            "DVCC",
            WARN,
            "off with a BMS present",
        ),
        (
            {
                "services": with_settings(**{"/Settings/DynamicEss/Mode": 1}),
                "enabled": ["ess_control"],
            },
            "Dynamic ESS",
            FAIL,
            "is on while ess_control",
        ),
        (
            {"services": with_settings(**{"/Settings/DynamicEss/Mode": 1})},
            "Dynamic ESS",
            NOTE,
            "is on",
        ),
        (
            {
                "services": {**facts().services, "com.victronenergy.opportunityloads": {}},
                "enabled": ["ess_control", "output_limiter"],
            },
            "Opportunity Loads",
            FAIL,
            "is on while ess_control",
        ),
        (
            {
                "enabled": ["grid_meter.house"],
                "services": {
                    **facts().services,
                    "com.victronenergy.grid.esESS_Shelly3EMGrid": {"/DeviceInstance": 40},
                },
            },
            "es-ESS",
            FAIL,
            "beside venus-ems grid_meter",
        ),
        (
            {
                "enabled": ["grid_meter.house"],
                "services": {
                    **facts().services,
                    "com.victronenergy.grid.venusems_house": {"/DeviceInstance": 40},
                },
            },
            "grid meter",
            FAIL,
            "another process publishes a grid meter too",
        ),
        ({"service_dirs": ["dbus-opendtu"]}, "dbus-opendtu", NOTE, "/service/dbus-opendtu"),
        (
            {"service_dirs": ["dbus-opendtu"], "enabled": ["micro_inverter_control"]},
            "dbus-opendtu",
            FAIL,
            "beside venus-ems micro_inverter_control",
        ),
        (
            {"service_dirs": ["dbus_water_heater"], "enabled": ["water_heater"]},
            "dbus_water_heater",
            FAIL,
            "beside venus-ems water_heater",
        ),
        (
            {"service_dirs": ["es-ESS"], "enabled": ["surplus"]},
            "es-ESS",
            FAIL,
            "beside venus-ems surplus",
        ),
        (
            {"services": {k: v for k, v in facts().services.items() if "grid" not in k}},
            "grid meter",
            WARN,
            "none on the bus",
        ),
        (
            {"config_error": "general.log_level = 'LOUD': expected one of ..."},
            "config",
            FAIL,
            "LOUD",
        ),
        (
            {
                "installed": "0.1.0 (0.1.0-abc) in /data/venus-ems",
                "integrity": ["x.py: missing"],
                "service": SvStatus(True, True, 12, 100, ""),
                "hook": None,
            },
            "install",
            FAIL,
            "x.py: missing",
        ),
        (
            {
                "installed": "0.1.0",
                "service": SvStatus(True, False, None, 3, "down 3 seconds"),
                "hook": "no line",
            },
            "service",
            FAIL,
            "down 3 seconds",
        ),
        (
            {"target": Target(VenusVersion(3, 50), None, "armv7l", (3, 8))},
            "platform",
            FAIL,
            "too old",
        ),
    ],
)
def test_what_is_wrong_is_named(kw, title, level, text):
    report = found(facts(**kw))
    assert report[title][0] == level
    assert text in report[title][1]


def test_feature_states_come_from_the_status_service():
    status = {
        "/Version": "0.1.0",
        "/Features/ess_control/Name": "ess_control",
        "/Features/ess_control/State": "failed",
        "/Features/ess_control/LastError": "ConfigError: no vebus",
        "/Features/ess_control/Restarts": 0,
        "/Features/grid_meter_house/Name": "grid_meter.house",
        "/Features/grid_meter_house/State": "backing_off",
        "/Features/grid_meter_house/Restarts": 3,
    }
    f = facts(
        services={**facts().services, "com.victronenergy.venusems": status},
        enabled=["grid_meter.house", "ess_control", "time_to_go"],
    )
    report = found(f)
    assert report["feature ess_control"] == (FAIL, "failed: ConfigError: no vebus")
    assert report["feature grid_meter.house"] == (WARN, "backing_off, 3 restarts")
    assert report["features"] == (WARN, "config and daemon differ (time_to_go): restart")


CONFIG = """schema_version = 1
[general]
log_console = false
state_dir = "{state}"
[settings_guard]
enabled = true
[ess_control]
enabled = true
"""


@pytest.mark.anyio
async def test_doctor_on_a_simulated_gx_with_dynamic_ess_and_es_ess(bus_address, tmp_path):
    root = make_gx_root(tmp_path / "gx", "v3.70")
    (root / "service" / "es-ESS").mkdir()
    config_path = tmp_path / "config.toml"
    config_path.write_text(CONFIG.format(state=tmp_path / "state"))
    config = load_config(config_path)
    gx = SimulatedGx("summer-sunny", address=bus_address, clock=RealClock(), start_s=12 * 3600)
    es_ess = Service(
        "com.victronenergy.temperature.esESS_MqttTemperature_x",
        identity=Identity("es-ESS MqttTemperature"),
        device_instance=25,
        address=bus_address,
    )
    es_ess.add_path("/Temperature", 21.0, PathSpec("d"))
    async with anyio.create_task_group() as tg:
        await tg.start(gx.run)
        await tg.start(
            lambda task_status: run_daemon(
                config,
                bus_address=bus_address,
                features=create_features(config),
                task_status=task_status,
            )
        )
        async with es_ess, open_monitor(bus_address) as mon:
            assert await mon.set_value(SETTINGS, "/Settings/DynamicEss/Mode", 1) == 0
            reasons = "/Features/ess_control/Reasons"
            await until(
                lambda: "Dynamic ESS" in (mon.get("com.victronenergy.venusems", reasons) or ""),
                timeout=10,
            )
            f = await anyio.to_thread.run_sync(
                lambda: collect(root=root, config=config_path, bus_address=bus_address)
            )
            report = found(f)
            cli = await anyio.run_process(
                [
                    sys.executable,
                    "-m",
                    "venus_ems.cli",
                    "doctor",
                    "--root",
                    str(root),
                    "--config",
                    str(config_path),
                    "--bus",
                    bus_address,
                ],
                check=False,
            )
        tg.cancel_scope.cancel()
    assert report["platform"] == (
        OK,
        "Venus OS v3.70, einstein ("
        + f.target.uname
        + f"), Python {sys.version_info[0]}.{sys.version_info[1]}",
    )
    assert report["config"] == (OK, f"{config_path} valid; ess_control, settings_guard")
    assert report["ESS"][0] == OK
    assert report["Dynamic ESS"][0] == FAIL
    assert "ess_control" in report["Dynamic ESS"][1]
    assert report["es-ESS"] == (
        NOTE,
        "runs (/service/es-ESS, com.victronenergy.temperature.esESS_MqttTemperature_x)",
    )
    assert report["daemon"] == (OK, "venus-ems 0.1.0 on the bus")
    assert report["feature settings_guard"][0] == OK
    assert report["feature ess_control"] == (
        OK,
        "running: holding off (Dynamic ESS is active (mode 1): holding off, "
        "it owns the ESS overrides)",
    )
    out = cli.stdout.decode()
    assert cli.returncode == 1, out
    assert "FAIL  Dynamic ESS" in out
    assert out.strip().splitlines()[-1] == "venus-ems doctor: 1 failed, 0 warnings"
