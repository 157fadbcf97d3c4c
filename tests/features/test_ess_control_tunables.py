"""Runtime tunables of ESS grid control: localsettings over D-Bus and MQTT, validated."""

from __future__ import annotations

import anyio
import pytest
from test_ess_control_support import SETTINGS, daemon_config, running

from venus_ems.errors import ConfigError
from venus_ems.features import create_features
from venus_ems.features.ess_control import EssControl, build
from venus_ems.features.ess_tunables import Tunable
from venus_ems.runtime.config import EssControlConfig, parse_config
from venus_ems.venus import SettingsClient

pytestmark = pytest.mark.anyio
EV_DAY = {"scenario": "ev-charging", "start_s": 10.5 * 3600}
BASE = "/Settings/VenusEms/EssControl/"


async def test_grid_target_is_tunable_over_dbus_and_bad_values_are_put_back(bus_address):
    feat = EssControl(EssControlConfig(enabled=True))
    async with running(bus_address, [("ess_control", feat)], **EV_DAY) as site:
        ess, mon = site.gx.site.ess, site.mon
        await site.until(lambda: ess.overrides.setpoint_w == 25.0, 5)
        assert mon.get(SETTINGS, BASE + "GridTarget") == "zero_export"
        assert mon.get(SETTINGS, BASE + "TargetW") == 0.0
        # "export at most 300 W": an export cap, regulating at -300 W
        assert await mon.set_value(SETTINGS, BASE + "ExportCapW", 300.0) == 0
        assert await mon.set_value(SETTINGS, BASE + "TargetW", -300.0) == 0  # refused: zero export
        await site.run(2)
        assert mon.get(SETTINGS, BASE + "TargetW") == 0.0  # put back
        assert "zero_export needs a target >= 0" in site.status("/Features/ess_control/Message")
        assert await mon.set_value(SETTINGS, BASE + "GridTarget", "export_cap") == 0
        assert await mon.set_value(SETTINGS, BASE + "TargetW", -300.0) == 0
        await site.until(lambda: ess.overrides.setpoint_w == -275.0, 5)  # the band stays in the cap
        # unknown kinds and out-of-range numbers change nothing
        assert await mon.set_value(SETTINGS, BASE + "GridTarget", "lots") == 0
        await site.run(2)
        assert mon.get(SETTINGS, BASE + "GridTarget") == "export_cap"
        assert "expected one of" in site.status("/Features/ess_control/Message")
        assert await mon.set_value(SETTINGS, BASE + "TargetW", 1e9) == -1  # localsettings' max
        await site.run(3)
        assert near(ess.overrides.setpoint_w, -275.0)  # the aim, or a trim of it
        assert feat.settings.grid_target.cap_w == 300.0


async def test_stored_values_survive_a_restart(bus_address):
    first = EssControl(EssControlConfig(enabled=True))
    async with running(bus_address, [("ess_control", first)], **EV_DAY) as site:
        assert await site.mon.set_value(SETTINGS, BASE + "TargetW", 200.0) == 0
        await site.until(lambda: first.settings.grid_target.target_w == 200.0, 5)
        # a second daemon on the same GX (localsettings kept the value) starts with it
        second = EssControl(EssControlConfig(enabled=True))
        await second.tunables.start(_Ctx(site), _NoTasks())
        assert second.tunables.values["target_w"] == 200.0


async def test_mqtt_set_topics_are_validated_and_stored(bus_address, mosquitto):
    config = daemon_config(
        f"[mqtt]\nenabled = true\nhost = '{mosquitto.host}'\nport = {mosquitto.port}\n"
    )
    feat = EssControl(EssControlConfig(enabled=True))
    async with running(bus_address, [("ess_control", feat)], config=config, **EV_DAY) as site:
        ess = site.gx.site.ess
        await site.until(lambda: ess.overrides.setpoint_w == 25.0, 5)
        await pub(mosquitto.port, "venus-ems/ess_control/set/target_w", b"120")
        await site.until(lambda: ess.overrides.setpoint_w == 120.0, 20)
        assert site.mon.get(SETTINGS, BASE + "TargetW") == 120.0  # stored in localsettings
        for bad in (b"lots", b"-50", b'{"value": "x"}', b"\xff"):
            await pub(mosquitto.port, "venus-ems/ess_control/set/target_w", bad)
        await pub(mosquitto.port, "venus-ems/ess_control/set/nonsense", b"1")
        await site.run(10)
        assert near(ess.overrides.setpoint_w, 120.0)
        assert site.mon.get(SETTINGS, BASE + "TargetW") == 120.0
        assert feat.settings.grid_target.target_w == 120.0
        # an import cap below the 120 W target is refused (with the reason) until both fit
        await pub(mosquitto.port, "venus-ems/ess_control/set/import_cap_w", b'{"value": 100}')
        await site.until(lambda: site.mon.get(SETTINGS, BASE + "ImportCapW") == 100.0, 20)
        await pub(mosquitto.port, "venus-ems/ess_control/set/grid_target", b'"import_cap"')
        await site.until(
            lambda: "imports more than cap_w" in site.status("/Features/ess_control/Message"), 20
        )
        assert feat.settings.grid_target.kind.value == "zero_export"
        await pub(mosquitto.port, "venus-ems/ess_control/set/target_w", b"80")
        await pub(mosquitto.port, "venus-ems/ess_control/set/grid_target", b"import_cap")
        await site.until(lambda: feat.settings.grid_target.cap_w == 100.0, 20)
        await site.until(lambda: ess.overrides.setpoint_w == 75.0, 5)  # 25 W under the cap
        assert "import cap 100 W" in site.status("/Features/ess_control/Reasons")


def test_configured_values_the_core_refuses_are_config_errors():
    with pytest.raises(ConfigError, match="zero_export needs a target >= 0"):
        build(EssControlConfig(enabled=True, target_w=-100.0))
    with pytest.raises(ConfigError, match="soc_target_pct"):
        build(EssControlConfig(enabled=True, soc_target_pct=99.0))
    config, _ = parse_config("schema_version = 1\n[ess_control]\nenabled = true\n")
    ((name, feature),) = create_features(config)
    assert name == "ess_control"
    assert isinstance(feature, EssControl)


@pytest.mark.parametrize(
    ("raw", "ok"),
    [("12.5", 12.5), ('{"value": 3}', 3.0), ("nan", None), ("true", None), ("1e9", None)],
)
def test_tunable_payloads(raw, ok):
    t = Tunable("target_w", "TargetW", 0.0, -1000.0, 1000.0)
    if ok is None:
        with pytest.raises(ValueError, match="target_w"):
            t.parse_text(raw)
    else:
        assert t.parse_text(raw) == ok
    choice = Tunable("grid_target", "GridTarget", "fixed", choices=("fixed", "zero_export"))
    assert choice.parse_text("zero_export") == choice.parse_text('"zero_export"') == "zero_export"


def near(setpoint: float | None, aim: float) -> bool:
    """The override core aims, then trims a steady offset by at most 100 W."""
    return setpoint is not None and abs(setpoint - aim) <= 100.0


async def pub(port: int, topic: str, payload: bytes) -> None:
    """Publish with Debian's mosquitto_pub (an independent client)."""
    await anyio.run_process(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-t", topic, "-s"],
        input=payload,
    )


class _NoTasks:
    def start_soon(self, *args) -> None:
        raise AssertionError("nothing to put back")


class _Ctx:
    """The parts of a feature context the tunables use, on the site's monitor."""

    def __init__(self, site) -> None:
        self.monitor = site.mon
        self.settings = SettingsClient(site.mon)
        self.mqtt = None
        self.messages: list[str] = []

    def message(self, level: str, text: str) -> None:
        self.messages.append(text)
