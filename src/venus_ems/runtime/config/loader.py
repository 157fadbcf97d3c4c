"""Read, migrate and validate ``config.toml``; every problem is reported, not just the first."""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .advice import config_warnings
from .migrate import MIGRATIONS, Migration, migrate
from .model import SCHEMA_VERSION, Config
from .report import InvalidConfigError, Problem, locate_keys, problems_from_errors

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 on older images
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

__all__ = [
    "EXIT_INVALID",
    "EXIT_OK",
    "MAX_CONFIG_CHARS",
    "check_config",
    "checked_config",
    "load_config",
    "parse_config",
]

_LOG = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_INVALID = 2
MAX_CONFIG_CHARS = 1 << 20
"""Largest config file read (characters); a real one is a few kilobytes."""

_TOML_POS = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


def parse_config(
    text: str,
    *,
    source: str = "<config>",
    env: Mapping[str, str] | None = None,
    migrations: Mapping[int, Migration] = MIGRATIONS,
    current_version: int = SCHEMA_VERSION,
) -> tuple[Config, list[str]]:
    """Return ``(config, migration notes)`` from TOML text; InvalidConfigError lists problems."""
    if len(text) > MAX_CONFIG_CHARS:
        problem = Problem((), f"file of {len(text)} characters (at most {MAX_CONFIG_CHARS})")
        raise InvalidConfigError(source, [problem])
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise InvalidConfigError(source, [_syntax_problem(err)]) from err
    except ValueError as err:  # tomllib lets int()'s digit limit through
        raise InvalidConfigError(source, [Problem((), f"TOML value not accepted: {err}")]) from None
    except RecursionError:
        problem = Problem((), "TOML syntax error: arrays or inline tables nested too deeply")
        raise InvalidConfigError(source, [problem]) from None
    lines = locate_keys(text)
    try:
        data, notes = migrate(raw, current=current_version, migrations=migrations)
    except KeyError:
        hint = f"required key is missing (add schema_version = {current_version} at the top)"
        raise InvalidConfigError(source, [Problem(("schema_version",), hint)]) from None
    except (TypeError, ValueError) as err:
        problem = Problem(
            ("schema_version",), str(err), raw["schema_version"], lines.get(("schema_version",))
        )
        raise InvalidConfigError(source, [problem]) from None
    context: dict[str, Any] = {"env": os.environ if env is None else env}
    try:
        config = Config.model_validate(data, context=context)
    except ValidationError as err:
        problems = problems_from_errors(Config, err.errors(), lines)
        raise InvalidConfigError(source, problems) from None
    return config, notes


def _syntax_problem(err: tomllib.TOMLDecodeError) -> Problem:
    """A TOML syntax error with its line and column."""
    text = str(err)
    m = _TOML_POS.search(text)
    if m is None:
        return Problem((), f"TOML syntax error: {text}")
    message = text[: m.start()]
    return Problem((), f"TOML syntax error: {message}", line=int(m[1]), column=int(m[2]))


def _file_problems(config: Config) -> list[Problem]:
    """Problems only the file system can show (files named by the config must exist)."""
    ca_file = config.mqtt.ca_file
    if ca_file is not None and not os.access(ca_file, os.R_OK):
        return [Problem(("mqtt", "ca_file"), "file not found or not readable", ca_file)]
    return []


def _load(path: str | os.PathLike[str], env: Mapping[str, str] | None) -> tuple[Config, list[str]]:
    """Read and validate the file; InvalidConfigError on any problem."""
    source = os.fspath(path)
    try:
        with Path(path).open(encoding="utf-8") as f:
            text = f.read(MAX_CONFIG_CHARS + 1)  # bounded: the path may name a device file
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise InvalidConfigError(source, [Problem((), f"cannot read the file: {reason}")]) from err
    config, notes = parse_config(text, source=source, env=env)
    problems = _file_problems(config)
    if problems:
        raise InvalidConfigError(source, problems)
    return config, notes


def load_config(path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None) -> Config:
    """Load ``path`` (secrets from ``env``, default os.environ); InvalidConfigError if invalid."""
    config, notes = _load(path, env)
    for note in notes:
        _LOG.warning("%s: %s; update the file to schema_version %d", path, note, SCHEMA_VERSION)
    return config


def check_config(
    path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None
) -> tuple[int, str]:
    """``venus-ems check-config``: ``(0, summary)`` or ``(2, every problem)``."""
    code, text, _ = checked_config(path, env=env)
    return code, text


def checked_config(
    path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None
) -> tuple[int, str, Config | None]:
    """Like :func:`check_config`, also returning the config when it is valid."""
    try:
        config, notes = _load(path, env)
    except InvalidConfigError as err:
        return EXIT_INVALID, str(err), None
    features = config.enabled_features()
    out = [f"{os.fspath(path)}: OK (schema_version {SCHEMA_VERSION})"]
    out.extend(f"note: {note}; update the file" for note in notes)
    out.append("enabled: " + (", ".join(features) if features else "nothing (all disabled)"))
    mqtt = config.mqtt
    if mqtt.enabled:
        tls = "plain"
        if mqtt.tls:
            tls = "TLS, certificate NOT verified" if mqtt.insecure else "TLS, verified"
        out.append(f"mqtt: {mqtt.host}:{mqtt.effective_port} ({tls}), prefix {mqtt.topic_prefix}")
    else:
        out.append("mqtt: disabled")
    web = config.web
    if web.enabled:
        guard = "password" if web.password_hash is not None else "no password, loopback only"
        out.append(f"web: dashboard on http://{web.host}:{web.port}/ ({guard})")
    if config.general.dry_run:
        out.append("dry_run: writes are logged, not made")
    out.extend(f"warning: {text}" for text in config_warnings(config, path))
    return EXIT_OK, "\n".join(out), config
