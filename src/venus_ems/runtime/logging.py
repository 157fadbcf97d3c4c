"""Logging: a TRACE level, daily rotated files (14 kept) and secrets redacted everywhere.

Log files are created ``0600`` in directories created ``0700`` (a log may hold hostnames,
topics and device replies that are nobody else's business).

Every handler installed here carries a :class:`RedactionFilter` and a
:class:`RedactingFormatter`, so a registered secret (every config :class:`Secret` registers
itself) is replaced by ``***`` in the message, its format arguments, the traceback text and
the stack info before anything is written.
"""

from __future__ import annotations

import io
import logging
import logging.handlers
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from ..errors import ConfigError
from .config.secrets import MASK, known_secrets, register_secret
from .files import make_private_dir, open_private

__all__ = [
    "LOG_FILE_NAME",
    "TRACE",
    "RedactingFormatter",
    "RedactionFilter",
    "default_log_path",
    "level_number",
    "redact",
    "setup_logging",
]

TRACE = 5
"""Below DEBUG: every message on the wire (``log.log(TRACE, ...)``)."""
logging.addLevelName(TRACE, "TRACE")

LOG_FILE_NAME = "venus-ems.log"
_FORMAT = "%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s"
_DATEFMT = "%Y-%m-%d %H:%M:%S"
_MARK = "_venus_ems_handler"


# credentials inside a URL (scheme://user:password@host): aiohttp and others echo URLs
_USERINFO = re.compile(r"(?<=://)[^\s/?#@]+@")


def redact(text: str) -> str:
    """``text`` without secrets: registered ones and URL credentials become ``***``."""
    for secret in sorted(known_secrets(), key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    if "@" in text:
        text = _USERINFO.sub(MASK + "@", text)
    return text


class RedactionFilter(logging.Filter):
    """Render the record's message, traceback and stack once, with secrets replaced."""

    def __init__(self, formatter: logging.Formatter | None = None) -> None:
        """``formatter`` renders tracebacks (default: a plain Formatter)."""
        super().__init__()
        self._formatter = formatter or logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place (args merged into msg); never drops a record."""
        try:
            message = record.getMessage()
        except (TypeError, ValueError) as err:
            # a bad format string must not lose the record nor leak its arguments unredacted
            message = f"{record.msg!r} % {record.args!r} (bad log call: {err})"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class RedactingFormatter(logging.Formatter):
    """A Formatter whose final text is passed through :func:`redact` (the last line of defence)."""

    def format(self, record: logging.LogRecord) -> str:
        """Format, then redact."""
        return redact(super().format(record))


class _PrivateFileHandler(logging.handlers.TimedRotatingFileHandler):
    """Daily rotated log files, each created ``0600``."""

    def _open(self) -> io.TextIOWrapper:
        stream = open_private(
            Path(self.baseFilename), "a", encoding=self.encoding, errors=self.errors
        )
        assert isinstance(stream, io.TextIOWrapper)
        return stream


def level_number(level: str | int) -> int:
    """``"TRACE"``/``"debug"``/``10`` -> level number; ConfigError for an unknown name."""
    if isinstance(level, int):
        return level
    number = logging.getLevelName(level.upper())
    if not isinstance(number, int):
        raise ConfigError(
            f"unknown log level {level!r}: expected TRACE, DEBUG, INFO, WARNING, ERROR or CRITICAL"
        )
    return number


def default_log_path(data_root: Path = Path("/data")) -> Path:
    """``/data/log/venus-ems`` on a GX (``/data`` exists and is writable), else ``./log``."""
    if data_root.is_dir() and os.access(data_root, os.W_OK):
        return data_root / "log" / "venus-ems"
    return Path("log")


def _handler(handler: logging.Handler, level: int) -> logging.Handler:
    """Give ``handler`` our format, redaction and a marker so setup can replace it later."""
    formatter = RedactingFormatter(_FORMAT, _DATEFMT)
    handler.setFormatter(formatter)
    handler.addFilter(RedactionFilter(formatter))
    handler.setLevel(level)
    setattr(handler, _MARK, True)
    return handler


def setup_logging(
    level: str | int = "INFO",
    path: str | os.PathLike[str] | None = None,
    *,
    console: bool = True,
    to_file: bool = True,
    secrets: Iterable[str] = (),
    backups: int = 14,
    stream: TextIO | None = None,
) -> Path | None:
    """Configure the root logger; return the log file (or None); ConfigError if unwritable.

    Files go to ``path`` (default :func:`default_log_path`) as ``venus-ems.log``, rotated at
    local midnight, ``backups`` old files kept. Calling again replaces the handlers it made.
    """
    number = level_number(level)
    for value in secrets:
        register_secret(value)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(old)
        old.close()
    log_file: Path | None = None
    if to_file:
        directory = Path(path) if path is not None else default_log_path()
        log_file = directory / LOG_FILE_NAME
        try:
            make_private_dir(directory)
            file_handler = _PrivateFileHandler(
                log_file, when="midnight", backupCount=backups, encoding="utf-8"
            )
        except OSError as err:
            raise ConfigError(f"cannot write log files to {directory}: {err.strerror}") from err
        root.addHandler(_handler(file_handler, number))
    if console:
        root.addHandler(_handler(logging.StreamHandler(stream or sys.stderr), number))
    root.setLevel(number)
    return log_file
