"""Logging: TRACE, daily rotation keeping 14 files, default path, secrets never written."""

from __future__ import annotations

import io
import logging
import logging.handlers
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from venus_ems.errors import ConfigError
from venus_ems.runtime.config import parse_config
from venus_ems.runtime.logging import (
    LOG_FILE_NAME,
    TRACE,
    default_log_path,
    level_number,
    redact,
    setup_logging,
)

SECRET = "s3cr3t-Pa55word"
ENV_SECRET = "env-token-42xyz"


@pytest.fixture
def restore_root() -> Iterator[None]:
    """Only our handlers on the root logger during the test; pytest's come back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    for h in handlers:
        root.removeHandler(h)
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)


def _file_handler() -> logging.handlers.TimedRotatingFileHandler:
    (h,) = [
        h
        for h in logging.getLogger().handlers
        if isinstance(h, logging.handlers.TimedRotatingFileHandler)
    ]
    return h


def test_trace_level_is_registered(tmp_path, restore_root):
    assert logging.getLevelName(TRACE) == "TRACE"
    assert level_number("trace") == TRACE == 5
    log_file = setup_logging("TRACE", tmp_path, console=False)
    assert log_file == tmp_path / LOG_FILE_NAME
    logging.getLogger("venus_ems.test").log(TRACE, "wire bytes %s", "01 02")
    logging.getLogger("venus_ems.test").debug("debug too")
    text = log_file.read_text()
    assert " TRACE venus_ems.test: wire bytes 01 02" in text
    assert "debug too" in text


def test_level_filters_and_unknown_level(tmp_path, restore_root):
    log_file = setup_logging("WARNING", tmp_path, console=False)
    logging.getLogger("x").info("not written")
    logging.getLogger("x").warning("written")
    assert log_file is not None
    text = log_file.read_text()
    assert "written" in text
    assert "not written" not in text
    with pytest.raises(ConfigError, match="unknown log level 'LOUD'"):
        setup_logging("LOUD", tmp_path, console=False)


def test_rotation_keeps_14_files(tmp_path, restore_root):
    setup_logging("INFO", tmp_path, console=False)
    handler = _file_handler()
    log = logging.getLogger("venus_ems.rotation")
    midnight = time.mktime((2026, 1, 1, 0, 0, 0, 0, 0, -1))
    for day in range(1, 21):
        # pretend midnight of day `day` has passed: the next record rotates the file
        handler.rolloverAt = int(midnight + day * 86400)
        log.info("record of day %d", day)
    rotated = sorted(p.name for p in tmp_path.iterdir() if p.name != LOG_FILE_NAME)
    assert len(rotated) == 14
    # the newest 14 days survive: each file is named after the day it covers
    assert rotated[0] == f"{LOG_FILE_NAME}.2026-01-07"
    assert rotated[-1] == f"{LOG_FILE_NAME}.2026-01-20"
    assert "record of day 20" in (tmp_path / LOG_FILE_NAME).read_text()
    assert "record of day 19" in (tmp_path / f"{LOG_FILE_NAME}.2026-01-20").read_text()


def test_rotation_count_is_configurable(tmp_path, restore_root):
    setup_logging("INFO", tmp_path, console=False, backups=3)
    handler = _file_handler()
    midnight = time.mktime((2026, 1, 1, 0, 0, 0, 0, 0, -1))
    for day in range(1, 8):
        handler.rolloverAt = int(midnight + day * 86400)
        logging.getLogger("r").info("day %d", day)
    assert len(list(tmp_path.iterdir())) == 4


def test_default_log_path(tmp_path):
    assert default_log_path(tmp_path) == tmp_path / "log" / "venus-ems"
    assert default_log_path(tmp_path / "no-such-dir") == Path("log")
    a_file = tmp_path / "file"
    a_file.write_text("")
    assert default_log_path(a_file) == Path("log")


def test_unwritable_log_path_is_a_config_error(tmp_path, restore_root):
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="cannot write log files"):
        setup_logging("INFO", blocker / "logs", console=False)


def test_setup_again_replaces_its_handlers(tmp_path, restore_root):
    stream = io.StringIO()
    setup_logging("INFO", tmp_path, stream=stream)
    setup_logging("INFO", tmp_path, stream=stream)
    logging.getLogger("once").warning("only once")
    assert stream.getvalue().count("only once") == 1
    assert (tmp_path / LOG_FILE_NAME).read_text().count("only once") == 1


class BoomError(Exception):
    pass


def test_secrets_never_reach_the_logs(tmp_path, restore_root):
    config, _ = parse_config(
        "schema_version = 1\n[mqtt]\nusername = 'u'\n"
        f"password = '{SECRET}'\n"
        "[[grid_meter]]\nname = 'g'\nhost = 'h'\npassword = { env = 'GRID_PW' }\n",
        env={"GRID_PW": ENV_SECRET},
    )
    stream = io.StringIO()
    log_file = setup_logging(
        "DEBUG", tmp_path, stream=stream, secrets=[*config.secret_values(), "extra-key-777"]
    )
    root = logging.getLogger()
    for foreign in [h for h in root.handlers if not hasattr(h, "_venus_ems_handler")]:
        root.removeHandler(foreign)  # pytest's capture handler would see the raw record
    log = logging.getLogger("venus_ems.secrets")
    log.info("format args: %s and %r", SECRET, {"token": ENV_SECRET})
    log.info("f-string: " + f"password={SECRET}")  # noqa: G003 - the careless style we must survive
    log.info("config repr: %r", config)
    log.info("config str: %s", config.mqtt)
    log.info("dump: %s", config.model_dump())
    log.info("extra %s", "extra-key-777")
    # wrong argument count: still written, still redacted
    log.info("bad call %s %s", SECRET)  # noqa: PLE1206
    try:
        raise BoomError(f"device rejected {SECRET} / {ENV_SECRET}")
    except BoomError:
        log.exception("with traceback")
    log.warning("stack", stack_info=True, extra={"note": SECRET})
    assert log_file is not None
    for text in (log_file.read_text(), stream.getvalue()):
        assert SECRET not in text
        assert ENV_SECRET not in text
        assert "extra-key-777" not in text
        assert "format args: *** and {'token': '***'}" in text
        assert "f-string: password=***" in text
        assert "BoomError: device rejected *** / ***" in text
        assert "bad call" in text
        assert "config repr: Config(" in text


def test_redact_prefers_longer_secrets(restore_root):
    setup_logging("INFO", to_file=False, console=False, secrets=["abc", "abcdef"])
    assert redact("xx abcdef yy abc") == "xx *** yy ***"
