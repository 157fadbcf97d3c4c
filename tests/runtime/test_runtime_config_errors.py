"""Every kind of config error is reported readably: table, key, value, expectation, line."""

from __future__ import annotations

import textwrap

import pytest

from venus_ems.errors import ConfigError
from venus_ems.runtime.config import InvalidConfigError, check_config, load_config, parse_config


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(InvalidConfigError) as info:
        parse_config(textwrap.dedent(text), env=env or {})
    assert isinstance(info.value, ConfigError)
    return [str(p) for p in info.value.problems]


def test_syntax_error_names_line_and_column():
    (p,) = problems(
        """\
        schema_version = 1
        [general]
        log_level = "INFO
        """
    )
    assert p.startswith("TOML syntax error:")
    assert "(line 3, column" in p


def test_unknown_key_is_an_error_with_a_suggestion():
    (p,) = problems(
        """\
        schema_version = 1
        [mqtt]
        enabled = false
        topic_prefx = "x"
        """
    )
    assert p == "mqtt.topic_prefx = \"x\": unknown key (did you mean 'topic_prefix'?) (line 4)"


def test_unknown_table_is_an_error():
    (p,) = problems("schema_version = 1\n[grid_meters]\nname = 'a'\n")
    assert p.startswith("grid_meters = { name = \"a\" }: unknown key (did you mean 'grid_meter'?)")


def test_wrong_type():
    (p,) = problems('schema_version = 1\n[mqtt]\nport = "1883"\n')
    assert p == 'mqtt.port = "1883": expected an integer (line 3)'


def test_bool_is_not_a_number_and_number_is_not_a_bool():
    ps = problems("schema_version = 1\n[general]\ndry_run = 1\nshutdown_timeout_s = true\n")
    assert ps == [
        "general.dry_run = 1: expected true or false (line 3)",
        "general.shutdown_timeout_s = true: expected a number (line 4)",
    ]


def test_out_of_range():
    ps = problems(
        """\
        schema_version = 1
        [[grid_meter]]
        name = "house"
        host = "10.0.0.5"
        poll_interval_s = 0.05
        [ess_control]
        mode3_refresh_s = 30
        """
    )
    assert ps == [
        "grid_meter[0].poll_interval_s = 0.05: expected a value >= 0.1 (line 5)",
        "ess_control.mode3_refresh_s = 30: expected a value <= 10.0 (line 7)",
    ]


def test_missing_required_key():
    (p,) = problems("schema_version = 1\n[[pv_meter]]\nname = 'roof'\n")
    assert p == "pv_meter[0].host: required key is missing (line 2)"


def test_bad_enum():
    (p,) = problems("schema_version = 1\n[ess_control]\nmode = 'zero'\n")
    assert p.startswith('ess_control.mode = "zero": expected one of ')
    assert "'grid_target'" in p
    assert "'soc_target'" in p
    assert p.endswith("(line 3)")


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("[ess_control]\nmethod = 'mode3'", "set allow_mode3 = true"),
        ("[ess_control]\nper_phase = true", 'needs method = "mode3"'),
        ("[output_limiter]\nlimit_w = 3000\nfloor_w = 3000", "floor_w (3000.0) must be <"),
        ("[output_limiter]\nenabled = true", "needs limit_w or phase_limits_w"),
        ("[output_limiter]\nphase_limits_w = [1000, 1000]", "needs 3 values"),
        (
            "[[grid_meter]]\nname='a'\nhost='h'\npoll_interval_s=1.0\nhold_s=1\ntimeout_s=2",
            "timeout_s (2.0) must be <= hold_s (1.0)",
        ),
        (
            "[[grid_meter]]\nname='a'\nhost='h'\nphases=1\n"
            "channels=[{channel=0, phase='L1'}, {channel=1, phase='L2'}]",
            "channels lists 2 entries but phases = 1",
        ),
        ("[mqtt]\ninsecure = true", "insecure = true has no effect without tls = true"),
        ("[mqtt]\npassword = 'x'", "password is set but username is not"),
        ("[[temperature]]\nname='t'\ntopic='a/b'\npayload='json'", "requires json_field"),
        (
            "[[mqtt_exporter.exports]]\nservice='com.victronenergy.grid'\nprefix='/Ac'\n"
            "topic='grid'",
            "the topic must end in '*'",
        ),
    ],
)
def test_bad_combinations(table, expected):
    (p,) = problems(f"schema_version = 1\n{table}\n")
    assert expected in p


def test_cross_table_rules():
    ps = problems(
        """\
        schema_version = 1
        [[temperature]]
        name = "fridge"
        enabled = true
        topic = "sensors/fridge"
        """
    )
    assert ps == [
        "temperature.fridge enabled but [mqtt] enabled = false (these features use the MQTT broker)"
    ]


def test_duplicate_names():
    (p,) = problems(
        "schema_version = 1\n[[pv_meter]]\nname='a'\nhost='h'\n[[pv_meter]]\nname='a'\nhost='i'\n"
    )
    assert "[[pv_meter]] name 'a' is used more than once" in p


def test_unknown_env_var_names_the_key_and_variable():
    (p,) = problems(
        """\
        schema_version = 1
        [mqtt]
        username = "ems"
        password = { env = "EMS_MQTT_PASSWORD" }
        """
    )
    assert p == (
        'mqtt.password = { env = "EMS_MQTT_PASSWORD" }: environment variable '
        "EMS_MQTT_PASSWORD is not set (line 4)"
    )


def test_bad_secret_shape_never_shows_the_value():
    (p,) = problems("schema_version = 1\n[mqtt]\nusername = 'u'\npassword = 987654321\n")
    assert "987654321" not in p
    assert p == 'mqtt.password = ***: expected a string or { env = "NAME" } (line 4)'


@pytest.mark.parametrize("key", ["pasword", "passwd", "api_token", "secret"])
def test_misspelt_secret_key_never_shows_the_value(key):
    (p,) = problems(f"schema_version = 1\n[mqtt]\n{key} = 'hunter2-value'\n")
    assert "hunter2-value" not in p
    assert p.startswith(f"mqtt.{key} = ***: unknown key")


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("2", "schema_version = 2: schema_version 2 is newer than this venus-ems supports (1)"),
        ("0", "schema_version = 0: schema_version 0 is older than any supported version"),
        ('"1"', 'schema_version = "1": expected an integer'),
    ],
)
def test_schema_version_problems(version, expected):
    (p,) = problems(f"schema_version = {version}\n")
    assert p.startswith(expected)
    assert p.endswith("(line 1)")


def test_missing_schema_version():
    (p,) = problems("[general]\n")
    assert p == "schema_version: required key is missing (add schema_version = 1 at the top)"


def test_every_problem_is_listed_at_once():
    text = """\
        schema_version = 1
        [general]
        log_level = "LOUD"
        [mqtt]
        port = 0
        kepalive_s = 10
        [[grid_meter]]
        name = "1bad"
        """
    ps = problems(text)
    assert len(ps) == 5
    keys = [p.split(" ")[0].split(":")[0] for p in ps]
    assert keys == [
        "general.log_level",
        "mqtt.port",
        "mqtt.kepalive_s",
        "grid_meter[0].host",  # missing: reported at the [[grid_meter]] line
        "grid_meter[0].name",
    ]


def test_check_config_exit_codes_and_text(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("schema_version = 1\n[general]\nlog_levle = 'INFO'\n")
    code, text = check_config(bad)
    assert code == 2
    assert text.splitlines() == [
        f"{bad}: 1 problem",
        "  - general.log_levle = \"INFO\": unknown key (did you mean 'log_level'?) (line 3)",
    ]
    missing = tmp_path / "nope.toml"
    code, text = check_config(missing)
    assert code == 2
    assert "cannot read the file" in text
    good = tmp_path / "good.toml"
    good.write_text("schema_version = 1\n")
    code, text = check_config(good)
    assert code == 0
    assert "OK" in text
    assert "enabled: nothing" in text


def test_ca_file_must_exist(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f"schema_version = 1\n[mqtt]\nenabled = true\ntls = true\nca_file = '{tmp_path}/x.pem'\n"
    )
    with pytest.raises(InvalidConfigError, match=r"mqtt.ca_file = .*: file not found"):
        load_config(cfg)
