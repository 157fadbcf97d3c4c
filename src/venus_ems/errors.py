"""The one error tree of venus-ems.

::

    EmsError
    ├── ConfigError (also ValueError)      bad configuration: refuse to start, name the key
    ├── CrashLoopError                     a feature kept crashing: the process exits non-zero
    ├── BusError                           D-Bus failures: connection lost, name taken, call failed
    │   └── ServiceNotFoundError           a watched service did not appear in time
    └── DeviceError                        an external device misbehaved; callers retry + mark stale
        ├── DeviceConnectionError          cannot reach the device
        │   └── DeviceTimeoutError         no answer in time
        ├── DeviceAuthError                credentials refused
        └── DeviceProtocolError            answer not understood (bad JSON, wrong shape, HTTP 5xx)

Callers handle ``DeviceError`` (retry with backoff, treat readings as missing) and ``BusError``
(reconnect): both are ``retryable``. A non-retryable error (``ConfigError``, ``DeviceAuthError``)
stops the feature that met it. Anything else is a bug: log it with a traceback, put outputs in
their safe state, restart a few times, then let the process exit non-zero (``CrashLoopError``;
see ``runtime/supervisor.py``). Third-party exceptions are mapped at the boundary with
``raise ... from err``.
"""

from __future__ import annotations

__all__ = [
    "BusError",
    "ConfigError",
    "CrashLoopError",
    "DeviceAuthError",
    "DeviceConnectionError",
    "DeviceError",
    "DeviceProtocolError",
    "DeviceTimeoutError",
    "EmsError",
    "ServiceNotFoundError",
]


class EmsError(Exception):
    """Root of every error venus-ems raises on purpose."""

    retryable: bool = False


class ConfigError(ValueError, EmsError):
    """The configuration is invalid; the message names the table, key and what was expected."""


class CrashLoopError(EmsError):
    """A feature crashed with a bug too often: the daemon stops so that it is restarted afresh."""


class BusError(EmsError):
    """A D-Bus operation failed (connection, name request, method call)."""

    retryable = True


class ServiceNotFoundError(BusError):
    """A D-Bus service did not appear within the allowed time."""


class DeviceError(EmsError):
    """An external device failed; the reading is missing, never zero."""

    retryable = True


class DeviceConnectionError(DeviceError):
    """The device cannot be reached (refused, unreachable, reset)."""


class DeviceTimeoutError(DeviceConnectionError):
    """The device did not answer within its timeout."""


class DeviceAuthError(DeviceError):
    """The device refused our credentials."""

    retryable = False


class DeviceProtocolError(DeviceError):
    """The device answered something we do not understand."""
