"""aiohttp is imported without its default CA bundle; TLS through our own context still works."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import textwrap

import anyio
import pytest
from aiohttp import web

CLIENT = textwrap.dedent(
    """
    import asyncio, os, sys
    from venus_ems.runtime.imports import defer_default_ca, tls_client_context
    env_before = dict(os.environ)
    assert defer_default_ca()
    import aiohttp, aiohttp.connector
    assert dict(os.environ) == env_before, "the CA variables were not restored"
    print("default CAs", aiohttp.connector._SSL_CONTEXT_VERIFIED.cert_store_stats()["x509_ca"])

    async def get(ssl):
        async with aiohttp.ClientSession() as session:
            try:
                async with session.get(sys.argv[1], ssl=ssl) as response:
                    return await response.text()
            except aiohttp.ClientConnectorCertificateError:
                return "certificate rejected"

    print("default context:", asyncio.run(get(True)))
    print("our context:", asyncio.run(get(tls_client_context(sys.argv[2]))))
    """
)


@pytest.mark.anyio
async def test_https_needs_our_context_and_the_default_one_trusts_nothing(tls_files):
    app = web.Application()

    async def hello(_: web.Request) -> web.Response:
        return web.Response(text="hello over TLS")

    app.router.add_get("/", hello)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls_files.server_cert, tls_files.server_key)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "localhost", 0, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    env = {**os.environ, "SSL_CERT_FILE": str(tls_files.ca_cert)}  # even a CA it would trust
    try:
        out = await _run(
            [sys.executable, "-c", CLIENT, f"https://localhost:{port}/", str(tls_files.ca_cert)],
            env,
        )
    finally:
        await runner.cleanup()
    assert out.splitlines() == [
        "default CAs 0",
        "default context: certificate rejected",
        "our context: hello over TLS",
    ]


async def _run(cmd: list[str], env: dict[str, str]) -> str:
    result = await anyio.run_process(cmd, env=env, check=False)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def test_nothing_happens_once_aiohttp_is_loaded():
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import aiohttp\nfrom venus_ems.runtime.imports import "
            "defer_default_ca\nprint(defer_default_ca())",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "False"
