"""The driver registry: every entry loads, names are unique, unknown drivers and options fail."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from venus_ems.devices import Connection
from venus_ems.devices import registry as registry_module
from venus_ems.devices.registry import (
    DEFAULT_DRIVER,
    DRIVERS,
    SESSION_KINDS,
    load_opener,
    open_device,
    open_session,
    session_kind,
)
from venus_ems.errors import ConfigError
from venus_ems.runtime.config import GridMeterConfig, PvMeterConfig, parse_config
from venus_ems.runtime.config.report import InvalidConfigError

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("driver", sorted(DRIVERS))
def test_every_entry_loads_an_async_opener(driver):
    opener = load_opener(driver)
    assert inspect.iscoroutinefunction(opener)
    params = inspect.signature(opener).parameters
    assert list(params)[:2] == ["session", "conn"]
    assert params["clock"].kind is inspect.Parameter.KEYWORD_ONLY


def test_no_driver_name_is_listed_twice():
    # a dict literal silently keeps the last of two equal keys: check the source itself
    tree = ast.parse(Path(registry_module.__file__).read_text())
    (table,) = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", None) == "DRIVERS"
    ]
    keys = [
        key.value
        for node in ast.walk(table)
        if isinstance(node, ast.Dict)
        for key in node.keys
        if isinstance(key, ast.Constant)
    ]
    assert sorted(keys) == sorted(set(keys)) == sorted(DRIVERS)
    assert DEFAULT_DRIVER in DRIVERS


def test_every_session_kind_belongs_to_a_driver():
    assert set(SESSION_KINDS) <= set(DRIVERS)
    assert set(SESSION_KINDS.values()) <= {"http", "modbus"}
    assert session_kind("shelly") == "http"
    assert session_kind("heizstab") == "modbus"
    with pytest.raises(ConfigError, match="unknown device driver"):
        session_kind("nope")


async def test_open_session_gives_each_driver_its_kind_of_session():
    import aiohttp  # noqa: PLC0415
    from pymodbus.client.base import ModbusBaseClient  # noqa: PLC0415

    async with open_session("shelly", Connection("127.0.0.1:9")) as http:
        assert isinstance(http, aiohttp.ClientSession)
    assert http.closed
    async with open_session("heizstab", Connection("127.0.0.1:9")) as client:
        assert isinstance(client, ModbusBaseClient)
    with pytest.raises(ConfigError, match="transport"):
        async with open_session("heizstab", Connection("h", options={"transport": "x"})):
            pass


async def test_a_modbus_driver_refuses_an_http_session(session, clock):
    with pytest.raises(ConfigError, match="needs a Modbus client"):
        await open_device("heizstab", session, Connection("127.0.0.1:9", 0.2), clock=clock)


def test_unknown_or_broken_drivers_are_config_errors(monkeypatch):
    with pytest.raises(ConfigError, match=r"unknown device driver 'nope' \(known: blueprint, "):
        load_opener("nope")
    monkeypatch.setattr(registry_module, "DRIVERS", {"gone": "venus_ems.devices.gone:open"})
    with pytest.raises(ConfigError, match=r"'gone'.*cannot be loaded"):
        load_opener("gone")


@pytest.mark.parametrize("driver", sorted(DRIVERS))
async def test_every_driver_refuses_an_option_it_does_not_know(session, clock, driver):
    # checked before any request: the host is not even reachable
    conn = Connection("127.0.0.1:9", 0.2, options={"no_such_option": 1})
    with pytest.raises(ConfigError, match="no_such_option"):
        await open_device(driver, session, conn, clock=clock)


async def test_shelly_refuses_a_bad_generation(session, clock):
    for bad in (True, 3, "2"):
        conn = Connection("127.0.0.1:9", 0.2, options={"generation": bad})
        with pytest.raises(ConfigError, match="generation must be auto, 1 or 2"):
            await open_device("shelly", session, conn, clock=clock)


# --- the config names the driver; old configs keep working ------------------------------------


def test_configs_without_a_driver_use_shelly():
    cfg = GridMeterConfig.model_validate({"name": "g", "host": "10.0.0.2", "generation": 2})
    assert (cfg.driver, cfg.generation) == ("shelly", 2)
    assert PvMeterConfig.model_validate({"name": "p", "host": "10.0.0.3"}).driver == "shelly"


def test_the_config_accepts_registered_drivers_only():
    assert GridMeterConfig.model_validate({"name": "g", "host": "h", "driver": "blueprint"})
    text = 'schema_version = 1\n[[grid_meter]]\nname = "g"\nhost = "h"\ndriver = "modbus9"\n'
    with pytest.raises(InvalidConfigError) as err:
        parse_config(text)
    assert "grid_meter" in str(err.value)
    assert "driver" in str(err.value)
    assert ", ".join(sorted(DRIVERS)) in str(err.value)


def test_generation_belongs_to_the_shelly_driver():
    with pytest.raises(ValueError, match='generation is an option of driver = "shelly"'):
        PvMeterConfig.model_validate(
            {"name": "p", "host": "h", "driver": "blueprint", "generation": 1}
        )
