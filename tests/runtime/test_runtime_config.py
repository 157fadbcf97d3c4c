"""Valid configs, the annotated example, secrets from the environment, schema migration."""

from __future__ import annotations

import json
import re
import textwrap
import typing
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from venus_ems.runtime.config import (
    SCHEMA_VERSION,
    Config,
    InvalidConfigError,
    Problem,
    Secret,
    check_config,
    default_state_dir,
    known_secrets,
    load_config,
    loader,
    migrate,
    parse_config,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"

FULL = """\
schema_version = 1
[general]
log_level = "TRACE"
dry_run = true
[mqtt]
enabled = true
host = "broker.lan"
tls = true
username = "ems"
password = { env = "EMS_MQTT_PW" }
topic_prefix = "home/ems"
[[grid_meter]]
name = "house"
enabled = true
host = "10.0.0.5"
password = { env = "SHELLY_PW" }
metering = "net"
channels = [
  { channel = 0, phase = "L2" },
  { channel = 1, phase = "L1", invert = true },
  { channel = 2, phase = "L3" },
]
[[pv_meter]]
name = "balcony"
enabled = true
host = "10.0.0.6"
generation = 2
position = "ac-out"
phase = "L3"
password = "plain-pv-secret"
[[temperature]]
name = "fridge"
enabled = true
topic = "z2m/fridge"
payload = "json"
json_field = "temperature"
humidity_json_field = "humidity"
[mqtt_exporter]
enabled = true
ha_discovery = true
[[mqtt_exporter.exports]]
service = "com.victronenergy.grid"
prefix = "/Ac"
topic = "victron/grid*"
rate_limit_s = 0
[[mqtt_exporter.exports]]
service = "com.victronenergy.system"
path = "/Dc/Battery/Soc"
topic = "victron/soc"
payload = "json"
[time_to_go]
enabled = true
[ess_control]
enabled = true
grid_target = "export_cap"
export_cap_w = 800
method = "mode3"
allow_mode3 = true
per_phase = true
[output_limiter]
enabled = true
phase_limits_w = [3000, 3000, 2000]
floor_w = 500
"""
ENV = {"EMS_MQTT_PW": "mqtt-pw-from-env", "SHELLY_PW": "shelly-pw-from-env"}


def test_minimal_config_has_everything_disabled():
    config, notes = parse_config("schema_version = 1\n", env={})
    assert notes == []
    assert config.enabled_features() == []
    assert config.mqtt.topic_prefix == "venus-ems"
    assert config.mqtt.effective_port == 1883
    assert not config.mqtt.insecure
    assert config.general.log_backups == 14


def test_full_config():
    config, _ = parse_config(FULL, env=ENV)
    assert config.enabled_features() == [
        "grid_meter.house",
        "pv_meter.balcony",
        "temperature.fridge",
        "mqtt_exporter",
        "time_to_go",
        "ess_control",
        "output_limiter",
    ]
    grid = config.grid_meter[0]
    assert [(c.channel, c.phase, c.invert) for c in grid.channel_map] == [
        (0, "L2", False),
        (1, "L1", True),
        (2, "L3", False),
    ]
    assert config.mqtt.effective_port == 8883
    assert config.mqtt.password is not None
    assert config.mqtt.password.get_secret_value() == "mqtt-pw-from-env"
    assert config.mqtt.password.env == "EMS_MQTT_PW"
    exports = config.mqtt_exporter.exports
    assert exports[0].appends_path
    assert not exports[1].appends_path
    assert config.output_limiter.phase_limits_w == (3000.0, 3000.0, 2000.0)
    assert isinstance(config.grid_meter, tuple)


def test_default_channel_map_follows_phase_count():
    config, _ = parse_config(
        "schema_version = 1\n[[grid_meter]]\nname='em'\nhost='h'\nphases=1\n", env={}
    )
    assert [(c.channel, c.phase) for c in config.grid_meter[0].channel_map] == [(0, "L1")]


def test_secrets_never_in_repr_str_or_json():
    config, _ = parse_config(FULL, env=ENV)
    values = {"mqtt-pw-from-env", "shelly-pw-from-env", "plain-pv-secret"}
    assert config.secret_values() == values
    assert values <= known_secrets()  # registered for the log redaction filter
    for text in (repr(config), str(config), config.model_dump_json(), str(config.model_dump())):
        for value in values:
            assert value not in text
    assert "***" in config.model_dump_json()
    assert repr(config.pv_meter[0].password) == "Secret('***')"
    assert repr(config.mqtt.password) == "Secret(env='EMS_MQTT_PW')"


def test_secret_equality_and_hash():
    assert Secret("a") == Secret("a")
    assert Secret("a") != Secret("b")
    assert hash(Secret("a")) == hash(Secret("a"))
    assert str(Secret("a")) == "***"


def test_env_defaults_to_os_environ(monkeypatch):
    monkeypatch.setenv("VENUS_EMS_TEST_PW", "from-os-environ")
    text = "schema_version = 1\n[mqtt]\nusername='u'\npassword={ env = 'VENUS_EMS_TEST_PW' }\n"
    config, _ = parse_config(text)
    assert config.mqtt.password is not None
    assert config.mqtt.password.get_secret_value() == "from-os-environ"


def test_example_is_valid_and_all_disabled(tmp_path):
    code, text = check_config(EXAMPLE, env={})
    assert code == 0, text
    config = load_config(EXAMPLE, env={})
    assert config.enabled_features() == []
    assert config.schema_version == SCHEMA_VERSION
    # and every table has an example entry
    assert config.grid_meter
    assert config.pv_meter
    assert config.temperature
    assert config.mqtt_exporter.exports


def _fields(model: type[BaseModel], seen: set[type[BaseModel]]) -> set[str]:
    out: set[str] = set()
    seen.add(model)
    for name, field in model.model_fields.items():
        out.add(name)
        stack = [field.annotation]
        while stack:
            tp = stack.pop()
            stack.extend(typing.get_args(tp))
            if isinstance(tp, type) and issubclass(tp, BaseModel) and tp not in seen:
                out |= _fields(tp, seen)
    return out


def test_example_documents_every_option():
    text = EXAMPLE.read_text()
    keys = set(re.findall(r"^#?\s*([a-z0-9_]+)\s*=", text, flags=re.MULTILINE))
    keys |= set(re.findall(r"[{,]\s*([a-z_]+)\s*=", text))  # keys inside inline tables
    for header in re.findall(r"^\[\[?([a-z_.]+)\]\]?", text, flags=re.MULTILINE):
        keys |= set(header.split("."))
    missing = _fields(Config, set()) - keys
    assert not missing, f"config.example.toml does not mention {sorted(missing)}"


def test_migration_runs_in_order_and_does_not_touch_the_input():
    def v0_to_v1(doc):
        general = doc.setdefault("general", {})
        general["log_level"] = general.pop("loglevel")
        return doc

    raw_text = 'schema_version = 0\n[general]\nloglevel = "DEBUG"\n'
    config, notes = parse_config(raw_text, env={}, migrations={0: v0_to_v1}, current_version=1)
    assert config.general.log_level == "DEBUG"
    assert notes == ["migrated schema_version 0 -> 1 in memory"]
    raw = {"schema_version": 0, "general": {"loglevel": "DEBUG"}}
    doc, _ = migrate(raw, current=1, migrations={0: v0_to_v1})
    assert raw == {"schema_version": 0, "general": {"loglevel": "DEBUG"}}
    assert doc == {"schema_version": 1, "general": {"log_level": "DEBUG"}}


def test_migration_chain_and_gaps():
    steps = {
        0: lambda d: {**d, "a": 1},
        1: lambda d: {**d, "b": d["a"] + 1},
    }
    doc, notes = migrate({"schema_version": 0}, current=2, migrations=steps)
    assert doc == {"schema_version": 2, "a": 1, "b": 2}
    assert len(notes) == 2
    with pytest.raises(ValueError, match="no migration from schema_version 1 to 2"):
        migrate({"schema_version": 0}, current=2, migrations={0: steps[0]})


def test_check_config_reports_migration(tmp_path, monkeypatch):
    def v0_to_v1(doc):
        return doc

    monkeypatch.setattr(loader, "MIGRATIONS", {0: v0_to_v1})
    monkeypatch.setattr(
        loader,
        "parse_config",
        lambda text, **kw: parse_config(text, **{**kw, "migrations": {0: v0_to_v1}}),
    )
    path = tmp_path / "old.toml"
    path.write_text("schema_version = 0\n")
    code, text = check_config(path, env={})
    assert code == 0
    assert "note: migrated schema_version 0 -> 1 in memory; update the file" in text


def test_default_state_dir(tmp_path):
    assert default_state_dir(tmp_path) == tmp_path / "venus-ems" / "state"
    assert default_state_dir(tmp_path / "missing") == Path("state")


def test_config_is_immutable():
    config, _ = parse_config("schema_version = 1\n", env={})
    with pytest.raises(ValueError, match="frozen"):
        config.general.dry_run = True  # type: ignore[misc]


TOML_VALUES = st.recursive(
    st.none().map(lambda _: "true")
    | st.integers(-(2**40), 2**40).map(str)
    | st.floats(allow_nan=False, allow_infinity=False).map(repr)
    | st.text(max_size=20).map(json.dumps),
    lambda inner: st.lists(inner, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
    max_leaves=5,
)
KEYS = sorted(
    ["general." + k for k in ("log_level", "dry_run", "shutdown_timeout_s", "nope")]
    + ["mqtt." + k for k in ("port", "password", "topic_prefix", "tls", "ca_file")]
    + ["ess_control." + k for k in ("method", "mode3_refresh_s", "target_w")]
    + ["output_limiter." + k for k in ("phase_limits_w", "limit_w")]
)


@settings(max_examples=150, deadline=None)
@given(key=st.sampled_from(KEYS), value=TOML_VALUES)
def test_any_value_gives_a_config_or_a_readable_error(key, value):
    table, name = key.split(".")
    text = f"schema_version = 1\n[{table}]\n{name} = {value}\n"
    try:
        parse_config(text, env={})
        problems: tuple[Problem, ...] = ()
    except InvalidConfigError as err:
        problems = err.problems
        assert problems
    for problem in problems:
        assert str(problem).startswith(table) or problem.loc == ()
        assert "Input should be" not in str(problem)  # never a raw pydantic dump


def test_problem_lines_for_nested_arrays():
    text = textwrap.dedent(
        """\
        schema_version = 1
        [mqtt_exporter]
        enabled = false
        [[mqtt_exporter.exports]]
        service = "com.victronenergy.grid"
        path = "/Ac/Power"
        topic = "a"
        [[mqtt_exporter.exports]]
        service = "grid"
        path = "/Ac/Power"
        topic = "b"
        """
    )
    with pytest.raises(InvalidConfigError) as info:
        parse_config(text, env={})
    (problem,) = info.value.problems
    assert problem.key == "mqtt_exporter.exports[1].service"
    assert problem.line == 9
