"""Config inputs: hosts and ports validated, no credentials or control characters, warnings for
unsafe files and clear-text passwords, and which values localsettings overrides (D12)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from inputs_faults_support import daemon_config, running

from venus_ems.runtime.config import (
    check_config,
    config_warnings,
    is_local_host,
    parse_config,
)
from venus_ems.runtime.config.secrets import forget_secrets
from venus_ems.sim.venus import LocalSettings

EXAMPLE = Path(__file__).parents[2] / "config.example.toml"


@pytest.fixture(autouse=True)
def _no_secrets_left():
    yield
    forget_secrets()


def write(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "config.toml"
    path.write_text("schema_version = 1\n" + text, encoding="utf-8")
    path.chmod(mode)
    return path


def shelly(host: str) -> str:
    return f'[[grid_meter]]\nname = "house"\nhost = "{host}"\n'


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("admin:hunter2@192.168.1.50", "credentials do not belong in host"),
        ("hunter2@192.168.1.50", "credentials do not belong in host"),
        ("http://192.168.1.50", "without a scheme"),
        ("192.168.1.50/rpc", "without a path"),
        ("192.168.1.50:0", "port number 1..65535"),
        ("192.168.1.50:65536", "port number 1..65535"),
        ("192.168.1.50:99999999999999999999", "port number 1..65535"),
        ("192.168.1.50:8O", "port number 1..65535"),
        ("192.168.1.50:\uff18\uff10", "ASCII"),
        ("shelly\\u0000.local", "control characters"),
        ("shelly .local", "spaces"),
        ("300.1.1.1", "IPv4 address"),
        ("fe80::1", "brackets"),
        ("[fe80::zz]", "IPv6"),
        ("-shelly", "host name"),
        ("", "1 to 253 characters"),
        ("a" * 254, "1 to 253 characters"),
    ],
)
def test_bad_device_hosts_are_named_and_never_echo_a_password(tmp_path, host, why):
    code, text = check_config(write(tmp_path, shelly(host)))
    assert code == 2
    assert "grid_meter[0].host" in text
    assert why in text
    assert "hunter2" not in text.split("problem", 1)[1]


@pytest.mark.parametrize(
    "host", ["192.168.1.50", "192.168.1.50:8080", "shelly-pro-3em.local", "[fe80::1]:80", "x_y"]
)
def test_good_device_hosts_pass(tmp_path, host):
    assert check_config(write(tmp_path, shelly(host)))[0] == 0


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("u:s3cr3t@broker", "credentials do not belong in host"),
        ("broker:1883", "set port = ... instead"),
        ("[::1]:1883", "set port = ... instead"),
        ("mqtts://broker", "without a scheme"),
    ],
)
def test_bad_broker_hosts(tmp_path, host, why):
    code, text = check_config(write(tmp_path, f'[mqtt]\nhost = "{host}"\n'))
    assert code == 2
    assert "mqtt.host" in text
    assert why in text
    assert "s3cr3t" not in text.split("problem", 1)[1]  # (the file name holds the test id)


def test_broker_ipv6_in_brackets_is_kept_without_them():
    config, _ = parse_config('schema_version = 1\n[mqtt]\nhost = "[::1]"\n')
    assert config.mqtt.host == "::1"


@pytest.mark.parametrize(
    ("key", "table"),
    [
        ("custom_name", "grid_meter[0]"),
        ("password", "grid_meter[0]"),
        ("counter_file", "grid_meter[0]"),
    ],
)
@pytest.mark.parametrize("char", ["\\u0000", "\\n", "\\u001b[2J", "\\u007f", "\\u0085"])
def test_control_characters_are_refused_in_every_text(tmp_path, key, table, char):
    code, text = check_config(
        write(tmp_path, shelly("192.168.1.50") + f'{key} = "a{char}b"\nusername = "admin"\n')
    )
    assert code == 2
    assert f"{table}.{key}" in text
    assert "control characters" in text
    assert "\x1b" not in text
    assert "\x00" not in text
    assert len(text.splitlines()) == 2  # the head line and one problem: nothing split it


def test_control_characters_in_arrays_and_top_level_tables(tmp_path):
    code, text = check_config(
        write(tmp_path, '[general]\nlog_path = "/tmp/\\u0000"\n[settings_guard]\nfix = ["a\\n"]\n')
    )
    assert code == 2
    assert "general.log_path" in text
    assert "settings_guard.fix" in text


def test_a_world_readable_config_with_a_password_is_a_warning(tmp_path):
    text = '[mqtt]\nusername = "ems"\npassword = "hunter2"\n'
    code, out = check_config(write(tmp_path, text, 0o644))
    assert code == 0
    assert "warning:" in out
    assert "mqtt.password" in out
    assert "chmod 600" in out
    assert "hunter2" not in out
    assert "warning:" not in check_config(write(tmp_path, text, 0o600))[1]
    env = '[mqtt]\nusername = "ems"\npassword = { env = "P" }\n'
    assert "warning:" not in check_config(write(tmp_path, env, 0o644), env={"P": "x"})[1]
    group = check_config(write(tmp_path, text, 0o640))[1]
    assert "readable by its group" in group


@pytest.mark.parametrize(
    ("mqtt", "warned"),
    [
        ('host = "192.168.1.2"\nusername = "u"\npassword = "p"', True),
        ('host = "broker.example.org"\nusername = "u"\npassword = "p"', True),
        ('host = "localhost"\nusername = "u"\npassword = "p"', False),
        ('host = "127.0.0.5"\nusername = "u"\npassword = "p"', False),
        ('host = "::1"\nusername = "u"\npassword = "p"', False),
        ('host = "192.168.1.2"\nusername = "u"\npassword = "p"\ntls = true', False),
        ('host = "192.168.1.2"\nusername = "u"', False),
    ],
)
def test_a_password_in_clear_text_to_another_machine_is_a_warning(mqtt, warned):
    config, _ = parse_config(f"schema_version = 1\n[mqtt]\nenabled = true\n{mqtt}\n")
    warnings = config_warnings(config)
    assert any("clear text" in w for w in warnings) is warned
    assert all('= "p"' not in w for w in warnings)


def test_local_hosts():
    assert is_local_host("localhost")
    assert is_local_host("LOCALHOST.")
    assert is_local_host("gx.localhost")
    assert is_local_host("127.0.0.1")
    assert not is_local_host("192.168.1.2")
    assert not is_local_host("localhost.example.org")


def test_oversized_and_deeply_nested_files_are_problems_not_crashes(tmp_path):
    deep = "[general]\nx = " + "[" * 5000 + "]" * 5000 + "\n"
    code, text = check_config(write(tmp_path, deep))
    assert code == 2
    assert "nested too deeply" in text
    big = write(tmp_path, "# " + "x" * (2 << 20) + "\n")
    code, text = check_config(big)
    assert (code, "at most" in text) == (2, True)
    huge = write(tmp_path, "[mqtt]\nport = " + "9" * 5000 + "\n")
    assert check_config(huge)[0] == 2


# ----------------------------------------------------------------- localsettings overrides


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "venus_ems.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("DBUS_")},
    )


@pytest.mark.anyio
async def test_check_config_says_which_values_localsettings_overrides(tmp_path, bus_address):
    path = write(tmp_path, "[ess_control]\nenabled = true\ntarget_w = 30.0\nimport_cap_w = 500\n")
    settings = LocalSettings(address=bus_address)
    base = "/Settings/VenusEms/EssControl/"
    settings.add(base + "TargetW", 30.0, "f", -1e5, 1e5)
    settings.add(base + "ImportCapW", 500.0, "f", 0.0, 1e5)
    assert settings.set(base + "TargetW", 200.0) == 0
    async with settings:
        res = await anyio.to_thread.run_sync(cli, "check-config", str(path), "--bus", bus_address)
    assert res.returncode == 0, res.stderr
    lines = [line for line in res.stdout.splitlines() if line.startswith("localsettings")]
    assert lines == [
        "localsettings overrides [ess_control] target_w = 200.0 "
        "(config: 30.0, /Settings/VenusEms/EssControl/TargetW)"
    ]
    # no settings service on the bus: said, and still a valid config
    res = await anyio.to_thread.run_sync(cli, "check-config", str(path), "--bus", bus_address)
    assert res.returncode == 0
    assert "localsettings: not checked" in res.stdout
    res = await anyio.to_thread.run_sync(cli, "check-config", str(path), "--no-bus")
    assert "localsettings" not in res.stdout


def test_check_config_refuses_what_a_feature_refuses(tmp_path):
    path = write(tmp_path, "[ess_control]\nenabled = true\ntarget_w = -100.0\n")
    res = cli("check-config", str(path), "--no-bus")
    assert res.returncode == 2
    assert "[ess_control] target_w = -100.0: zero_export needs a target >= 0" in res.stderr


@pytest.mark.anyio
async def test_the_daemon_says_at_start_which_values_localsettings_overrides(bus_address):
    def stored(gx) -> None:
        base = "/Settings/VenusEms/EssControl/"
        gx.local_settings.add(base + "TargetW", 30.0, "f", -1e5, 1e5)
        assert gx.local_settings.set(base + "TargetW", 200.0) == 0

    config = daemon_config("[ess_control]\nenabled = true\ntarget_w = 30.0\n")
    async with running(bus_address, config, prepare=stored) as site:
        await site.until(lambda: site.status("/Features/ess_control/State") == "running")
        message = site.status("/Features/ess_control/Message")
        assert message == (
            "info: localsettings overrides the configuration: target_w = 200.0 (config: 30.0, "
            "/Settings/VenusEms/EssControl/TargetW) (change the setting over D-Bus or MQTT, "
            "not the TOML)"
        )
        assert site.features["ess_control"].tunables.values["target_w"] == 200.0
