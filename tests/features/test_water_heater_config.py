"""[water_heater] configuration and its memory file: bad input is a clear error, nothing lost."""

from __future__ import annotations

import json

import pytest

from venus_ems.features.water_heater import build
from venus_ems.features.water_heater_store import HeaterMemory, load_memory, save_memory
from venus_ems.runtime.config import InvalidConfigError, parse_config
from venus_ems.runtime.config.water_heater import parse_window


def config(body: str):
    text = f"schema_version = 1\n[water_heater]\nenabled = true\n{body}\n"
    cfg, _ = parse_config(text)
    return cfg.water_heater


def test_defaults_and_connection_options():
    cfg = config('host = "/dev/ttyUSB0"')
    assert cfg.connection_options == {
        "unit": 33, "transport": "rtu", "baudrate": 9600, "parity": "N", "stopbits": 1,
    }  # fmt: skip
    assert config('host = "192.168.1.9:502"').connection_options == {
        "unit": 33,
        "transport": "tcp",
    }
    heater = build(config('host = "gw.local:8899"\ntransport = "rtu-over-tcp"'))
    assert heater.steps == tuple(500.0 * i for i in range(8))
    assert heater.settings.guard_c is None


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("", "needs host"),
        ('host = "/dev/../etc/passwd"', "serial device path"),
        ('host = "/dev/ttyUSB0"\ntransport = "tcp"', "needs host:port"),
        ('host = "10.0.0.2:502"\ntransport = "rtu"', "serial device path"),
        ('host = "/dev/ttyUSB0"\ntarget_c = 80\nmax_c = 70', "must be <= max_c"),
        ('host = "/dev/ttyUSB0"\ndaily_min_c = 80\nmax_c = 70', "must be <= max_c"),
        ('host = "/dev/ttyUSB0"\ndaily_window = "25:00-02:00"', "HH:MM-HH:MM"),
        ('host = "/dev/ttyUSB0"\ndaily_window = "17:00-17:00"', "empty"),
        ('host = "/dev/ttyUSB0"\nsteps_w = [500, 1000]', "start at 0"),
        ('host = "/dev/ttyUSB0"\nsteps_w = [0, 500]\non_w = 700', "one of steps_w"),
        ('host = "/dev/ttyUSB0"\nkeepalive_s = 290', "<= 150"),
        ('host = "/dev/ttyUSB0"\nmax_c = 99', "<= 95"),
        ('host = "/dev/ttyUSB0"\nmode = "boost"', "'off', 'auto' or 'on'"),
        ('host = "/dev/ttyUSB0"\nunknown_key = 1', "unknown_key"),
        ('host = "/dev/ttyUSB0"\nunit = 0', ">= 1"),
    ],
)
def test_bad_values_are_refused_with_the_reason(body, why):
    with pytest.raises(InvalidConfigError) as err:
        config(body)
    assert why in str(err.value)


def test_windows():
    assert parse_window("17:00-20:00") == (61200.0, 72000.0)
    assert parse_window("22:30-01:00") == (81000.0, 3600.0)


def test_memory_round_trip_and_configured_mode_wins_after_a_change(tmp_path):
    path = tmp_path / "state" / "water_heater.json"
    save_memory(path, HeaterMemory("off", "auto", 1.7e9, 739000))
    mem, problem = load_memory(path, "auto")
    assert (mem, problem) == (HeaterMemory("off", "auto", 1.7e9, 739000), "")
    mem, _ = load_memory(path, "on")  # the user changed the config since
    assert (mem.mode, mem.boost_until) == ("on", 1.7e9)


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        json.dumps({"mode": "turbo", "config_mode": "auto"}),
        json.dumps({"mode": "on", "config_mode": "auto", "boost_until": "soon"}),
        json.dumps({"mode": "on", "config_mode": "auto", "guard_met_day": True}),
        "[" * 5000,
    ],
)
def test_a_bad_memory_file_is_ignored_with_a_message(tmp_path, text):
    path = tmp_path / "water_heater.json"
    path.write_text(text)
    mem, problem = load_memory(path, "auto")
    assert mem == HeaterMemory("auto", "auto")
    assert problem
