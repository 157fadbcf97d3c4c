"""Import-time costs the daemon does not pay: aiohttp's default TLS contexts load no CA bundle.

``aiohttp.connector`` builds two ``SSLContext`` objects when it is imported and loads the
system's CA bundle into them (about 2 MB of RSS here), although the devices venus-ems talks to
over HTTP are on the LAN and never use TLS. :func:`defer_default_ca` makes that one import see
no CA file or directory (OpenSSL's ``SSL_CERT_FILE``/``SSL_CERT_DIR`` point nowhere while the
module runs, and are restored after), so those default contexts trust nothing: an ``https://``
request that relies on them fails verification instead of silently succeeding. Code that talks
TLS through aiohttp passes ``ssl=tls_client_context()``, which loads the CAs when first needed.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import os
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ssl

__all__ = ["defer_default_ca", "tls_client_context"]

_MODULE = "aiohttp.connector"
_NOWHERE = "/nonexistent/venus-ems-no-default-ca"


class _WithoutCa(importlib.abc.Loader):
    """Runs the wrapped loader with the OpenSSL CA locations pointing nowhere."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        saved = {k: os.environ.get(k) for k in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
        os.environ.update(dict.fromkeys(saved, _NOWHERE))
        try:
            self._loader.exec_module(module)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


class _Finder(importlib.abc.MetaPathFinder):
    """Finds ``aiohttp.connector`` like everyone else, then wraps its loader."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != _MODULE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is not None and spec.loader is not None:
            spec.loader = _WithoutCa(spec.loader)
        return spec


def defer_default_ca() -> bool:
    """Install the hook for the first import of aiohttp; False if aiohttp is already loaded."""
    if _MODULE in sys.modules:
        return False
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
    return True


@functools.cache
def tls_client_context(cafile: str | None = None) -> ssl.SSLContext:
    """A verifying client context with the system CAs (or ``cafile``), made on first use."""
    import ssl  # noqa: PLC0415

    return ssl.create_default_context(cafile=cafile)
