"""Files and secrets: logs and state created 0600 in 0700 directories whatever the umask,
unsafe configs warned about at start, and secrets redacted on D-Bus, MQTT and in the log."""

from __future__ import annotations

import io
import json
import logging
import logging.handlers
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import pytest
from anyio.abc import TaskStatus
from inputs_faults_support import mqtt_toml, retained_when

from venus_ems.clock import SteppedClock
from venus_ems.daemon import run_daemon
from venus_ems.errors import DeviceConnectionError
from venus_ems.features.counters import CounterFile, EnergyCounters
from venus_ems.runtime.config import parse_config
from venus_ems.runtime.config.secrets import forget_secrets, register_secret
from venus_ems.runtime.feature import FeatureContext
from venus_ems.runtime.logging import LOG_FILE_NAME, redact, setup_logging
from venus_ems.venus import open_monitor
from waiting import until

STATUS_SERVICE = "com.victronenergy.venusems"
SECRET = "Pa55-w0rd-xyz"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextmanager
def umask(value: int) -> Iterator[None]:
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def root_logger() -> Iterator[None]:
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


@pytest.fixture(autouse=True)
def _no_secrets_left() -> Iterator[None]:
    forget_secrets()
    yield
    forget_secrets()


def test_log_files_are_private_even_with_a_permissive_umask(tmp_path, root_logger):
    directory = tmp_path / "log" / "venus-ems"
    with umask(0):
        log_file = setup_logging("INFO", directory, console=False)
        assert log_file is not None
        logging.getLogger("venus_ems.test").info("hello")
        assert mode(log_file) == 0o600
        assert mode(directory) == mode(directory.parent) == 0o700
        (handler,) = [
            h
            for h in logging.getLogger().handlers
            if isinstance(h, logging.handlers.TimedRotatingFileHandler)
        ]
        handler.doRollover()  # midnight: the new file is private too, the old one stays so
        logging.getLogger("venus_ems.test").info("after midnight")
    files = sorted(directory.iterdir())
    assert len(files) == 2
    assert all(mode(f) == 0o600 for f in files)
    assert "after midnight" in log_file.read_text()


def test_an_existing_readable_log_file_is_tightened(tmp_path, root_logger):
    old = tmp_path / LOG_FILE_NAME
    old.write_text("old line\n")
    old.chmod(0o644)
    tmp_path.chmod(0o755)
    setup_logging("INFO", tmp_path, console=False)
    assert mode(old) == 0o600
    assert mode(tmp_path) == 0o755  # a directory that existed is left as it was (may be shared)
    assert old.read_text().startswith("old line")


def test_counter_files_are_private(tmp_path):
    path = tmp_path / "state" / "deep" / "grid_meter_house.json"
    with umask(0):
        CounterFile(path).save(EnergyCounters(values={"import": 1.5}))
        CounterFile(path).save(EnergyCounters(values={"import": 2.5}))
    assert mode(path) == 0o600
    assert mode(path.parent) == mode(path.parent.parent) == 0o700
    assert CounterFile(path).load().counters is not None


def test_redact_masks_url_credentials_and_registered_secrets():
    register_secret(SECRET)
    text = f"GET http://admin:{SECRET}@10.0.0.5/rpc failed; mqtts://u:p@h:8883 too; {SECRET}"
    assert redact(text) == "GET http://***@10.0.0.5/rpc failed; mqtts://***@h:8883 too; ***"
    assert redact("user@example.org wrote") == "user@example.org wrote"  # not a URL


class Leaky:
    """A feature whose error texts hold a secret and a URL with credentials."""

    name = "leaky"

    async def run(self, ctx: FeatureContext, *, task_status: TaskStatus[None]) -> None:
        ctx.report("polling", [f"http://admin:{SECRET}@10.0.0.5"])
        task_status.started()
        ctx.message("warning", f"login with {SECRET} refused")
        raise DeviceConnectionError(f"GET http://admin:{SECRET}@10.0.0.5/status: refused")


@pytest.mark.anyio
async def test_secrets_never_reach_dbus_mqtt_or_the_log(bus_address, mosquitto, root_logger):
    log = io.StringIO()
    config, _ = parse_config(
        "schema_version = 1\n[general]\nlog_console = false\n"
        + mqtt_toml(mosquitto.port)
        + f'username = "ems"\npassword = "{SECRET}"\n'
    )
    setup_logging("DEBUG", to_file=False, stream=log, secrets=config.secret_values())
    clock = SteppedClock()
    async with open_monitor(bus_address) as mon, anyio.create_task_group() as tg:
        await tg.start(
            lambda task_status: run_daemon(
                config,
                bus_address=bus_address,
                clock=clock,
                features=[("leaky", Leaky())],
                task_status=task_status,
            )
        )
        base = "/Features/leaky/"
        await until(lambda: mon.get(STATUS_SERVICE, base + "LastError"), timeout=10)
        retained = await retained_when(
            mosquitto.port,
            "venus-ems/#",
            lambda r: "venus-ems/leaky/ServiceMessages" in r and "venus-ems/features/leaky" in r,
        )
        on_dbus = [mon.get(STATUS_SERVICE, base + p) for p in ("LastError", "Message", "Reasons")]
        tg.cancel_scope.cancel()
    texts = [*map(str, on_dbus), *(p.decode() for p in retained.values()), log.getvalue()]
    assert all(SECRET not in t for t in texts), texts
    assert all("admin:" not in t for t in texts), texts
    assert "http://***@10.0.0.5/status" in on_dbus[0]
    feature = json.loads(retained["venus-ems/features/leaky"])
    assert "***" in feature["last_error"]
    assert "Traceback" in log.getvalue()  # the traceback was logged, redacted


def test_the_log_at_start_warns_about_an_unsafe_config(tmp_path, bus_address):
    logs = tmp_path / "logs"
    path = tmp_path / "config.toml"
    path.write_text(
        "schema_version = 1\n"
        f'[general]\nlog_path = "{logs}"\nlog_console = false\n'
        "[mqtt]\nenabled = true\n"
        'host = "192.0.2.1"\nconnect_timeout_s = 0.5\n'  # TEST-NET: nobody answers
        f'username = "ems"\npassword = "{SECRET}"\n'
    )
    path.chmod(0o644)
    proc = subprocess.Popen(
        [sys.executable, "-m", "venus_ems.cli", "run", "--config", str(path), "--bus", bus_address],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    log = logs / LOG_FILE_NAME
    try:
        anyio.run(until, lambda: log.exists() and "venus-ems running" in log.read_text(), 20.0)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    text = log.read_text()
    assert proc.returncode == 0, err
    assert "config.toml holds mqtt.password and is readable by all users" in text
    assert "mqtt.password is sent in clear text to 192.0.2.1:1883" in text
    assert SECRET not in text
    assert mode(log) == 0o600
    assert mode(logs) == 0o700
