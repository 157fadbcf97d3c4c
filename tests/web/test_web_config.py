"""``[web]``: loopback by default, no LAN without a password, hashes checked, hash-password."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from broker import free_port
from venus_ems.cli import main
from venus_ems.runtime.config import checked_config, parse_config
from venus_ems.runtime.passwords import hash_password, parse_hash, verify_password

HASH = hash_password("s3cret", log2_n=10)


def check(tmp_path, web: str, env=None) -> tuple[int, str]:
    path = tmp_path / "config.toml"
    path.write_text(f"schema_version = 1\n[web]\nenabled = true\n{web}")
    path.chmod(0o600)
    code, text, _ = checked_config(path, env=env or {})
    return code, text


def test_defaults_are_off_and_loopback():
    config, _ = parse_config("schema_version = 1\n")
    assert config.web.enabled is False
    assert config.web.host == "127.0.0.1"
    assert config.web.password_hash is None


def test_a_lan_bind_without_a_password_is_refused_by_check_config(tmp_path):
    for host in ("0.0.0.0", "192.168.1.20", "::"):
        code, text = check(tmp_path, f'host = "{host}"\n')
        assert code == 2, text
        assert "password_hash" in text
        assert "venus-ems hash-password" in text
    code, text = check(tmp_path, f'host = "0.0.0.0"\npassword_hash = "{HASH}"\n')
    assert code == 0, text
    assert "web: dashboard on http://0.0.0.0:8088/ (password)" in text
    for host in ("127.0.0.1", "localhost", "::1"):
        assert check(tmp_path, f'host = "{host}"\n')[0] == 0
    # a host name would be resolved to who knows what: only addresses
    assert check(tmp_path, 'host = "venus.local"\n')[0] == 2


def test_the_hash_comes_from_the_environment_and_is_never_echoed(tmp_path):
    code, text = check(
        tmp_path,
        'host = "0.0.0.0"\npassword_hash = { env = "WEB_HASH" }\n',
        env={"WEB_HASH": HASH},
    )
    assert code == 0, text
    bad = "scrypt$14$8$1$c2FsdHNhbHQ$" + "A" * 22 + "*not*a*secret*to*show"
    code, text = check(tmp_path, f'host = "0.0.0.0"\npassword_hash = "{bad}"\n')
    assert code == 2
    assert "secret*to*show" not in text
    code, text = check(tmp_path, 'password_hash = "plain text password"\n')
    assert code == 2
    assert "plain text password" not in text
    assert "hash-password" in text


def test_hashes_verify_and_their_cost_is_bounded():
    stored = parse_hash(HASH)
    assert verify_password("s3cret", stored)
    assert not verify_password("s3cret ", stored)
    assert not verify_password("", stored)
    assert not verify_password("x" * 2000, stored)  # refused before hashing
    assert hash_password("s3cret", log2_n=10) != HASH  # salted
    with pytest.raises(ValueError, match="at most 64"):
        parse_hash("scrypt$20$16$1$" + "QUFBQUFBQUFBQUFB" + "$" + "A" * 43)
    with pytest.raises(ValueError, match="out of range"):
        parse_hash("scrypt$9$8$1$QUFBQUFBQUFBQUFB$" + "A" * 43)
    with pytest.raises(ValueError, match=r"1\.\.1024 bytes"):
        hash_password("")


def test_hash_password_reads_stdin(tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "venus_ems.cli", "hash-password"],
        input="correct horse\n",
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    stored = parse_hash(res.stdout.strip())
    assert verify_password("correct horse", stored)
    code, text = check(tmp_path, f'host = "0.0.0.0"\npassword_hash = "{res.stdout.strip()}"\n')
    assert code == 0, text


def test_demo_web_option_only_on_loopback(capsys):
    assert main(["demo", "--web", "0.0.0.0:8088", "--seconds", "1"]) == 2
    assert "--web 0.0.0.0:8088" in capsys.readouterr().err


def test_venus_ems_run_serves_the_dashboard_and_stops_on_sigterm(tmp_path, private_bus):
    port = free_port()
    conf = tmp_path / "c.toml"
    conf.write_text(
        f'schema_version = 1\n[general]\nlog_path = "{tmp_path}/log"\nstate_dir = "{tmp_path}"\n'
        f"[settings_guard]\nenabled = true\n[web]\nenabled = true\nport = {port}\n"
    )
    conf.chmod(0o600)
    proc = subprocess.Popen(
        [sys.executable, "-m", "venus_ems.cli", "run", "--config", str(conf),
         "--bus", private_bus.address],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        page = ""
        while time.monotonic() < deadline and "settings_guard" not in page:
            page = _state(port)
            if not page:
                time.sleep(0.1)  # not listening yet: poll again
        assert '"name":"settings_guard"' in page
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _state(port: int) -> str:
    """The dashboard's /api/state after opening the page (which hands out the session)."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    try:
        opener.open(f"http://127.0.0.1:{port}/", timeout=2).read()
        return opener.open(f"http://127.0.0.1:{port}/api/state", timeout=2).read().decode()
    except OSError:
        return ""
