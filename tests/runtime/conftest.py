"""Fixtures for runtime tests: a real mosquitto (plain, TLS, with passwords) and MQTT settings."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from broker import TlsFiles, make_tls_files, openssl_available
from venus_ems.runtime.config.secrets import forget_secrets


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A test CA and a broker certificate for localhost (needs the openssl CLI)."""
    if not openssl_available():
        pytest.skip("openssl CLI not installed (apt-get install openssl)")
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(autouse=True)
def _fresh_secrets() -> Iterator[None]:
    """Each test starts with no registered secrets."""
    forget_secrets()
    yield
    forget_secrets()
