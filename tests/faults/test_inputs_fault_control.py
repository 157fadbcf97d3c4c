"""Faults a person injects into a running simulation: the HTTP control, ``venus-ems sim-fault``."""

from __future__ import annotations

import re
import subprocess
import sys

import aiohttp
import anyio
import pytest

from venus_ems.clock import RealClock
from venus_ems.sim.control import FaultControl, fault_request
from venus_ems.sim.devices import FAULT_MODES, StaticMeter, pro_3em

pytestmark = pytest.mark.anyio
CLI = [sys.executable, "-m", "venus_ems.cli"]
PATH = "/rpc/EM.GetStatus?id=0"


async def get_status(url: str) -> int | str:
    """HTTP status of a GET on a fresh connection, or the client error's name."""
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http,
            http.get(url) as resp,
        ):
            await resp.read()
            return resp.status
    except (aiohttp.ClientError, TimeoutError) as err:
        return type(err).__name__


async def test_control_lists_sets_and_refuses(tmp_path):
    clock = RealClock()
    async with (
        pro_3em(StaticMeter(3, clock=clock), clock=clock) as emu,
        FaultControl({"shelly": emu}) as control,
    ):
        status, state = await fault_request(control.url)
        assert status == 200
        assert state["modes"] == list(FAULT_MODES)
        assert state["devices"]["shelly"]["mode"] == "ok"
        assert state["devices"]["shelly"]["url"] == emu.url

        status, shown = await fault_request(control.url, "shelly", "http500", {"slow_s": 2})
        assert status == 200
        assert (shown["mode"], shown["slow_s"]) == ("http500", 2.0)
        assert emu.faults.mode == "http500"
        assert await get_status(emu.url + PATH) == 500

        # the control has its own port: a device taken offline can be brought back
        status, _ = await fault_request(control.url, "shelly", "offline")
        assert status == 200
        assert await get_status(emu.url + PATH) == "ClientConnectorError"
        status, _ = await fault_request(control.url, "shelly", "ok")
        assert await get_status(emu.url + PATH) == 200

        # a query string works as well as JSON (curl -X PUT '...?mode=deep_json&depth=50')
        async with aiohttp.ClientSession() as http:
            async with http.put(f"{control.url}/faults/shelly?mode=deep_json&depth=50") as resp:
                assert resp.status == 200
            assert (emu.faults.mode, emu.faults.depth) == ("deep_json", 50)
            # bad requests change nothing and say why
            for url, body, code, why in [
                ("/faults/nope", {"mode": "ok"}, 404, "no device 'nope'"),
                ("/faults/shelly", {"mode": "explode"}, 400, "not one of ok, offline"),
                ("/faults/shelly", {"mode": "ok", "depth": -1}, 400, "outside"),
                ("/faults/shelly", {"mode": "ok", "depth": "deep"}, 400, "must be a number"),
                ("/faults/shelly", {"mode": "ok", "speed": 3}, 400, "not one of slow_s"),
                ("/faults/shelly", {"mode": 5}, 400, "must be a string"),
                ("/faults/shelly", {"self": 5}, 400, "not one of slow_s"),
                ("/faults/shelly", [1, 2], 400, "JSON object"),
            ]:
                async with http.put(control.url + url, json=body) as resp:
                    assert resp.status == code, url
                    assert why in (await resp.json())["error"], body
            async with http.put(f"{control.url}/faults/shelly", data=b"[" * 3000) as resp:
                assert resp.status == 400  # a hostile body gets an error, not a crash
            async with http.put(f"{control.url}/faults/shelly", data=b"x" * 10_000) as resp:
                assert resp.status == 413  # and a large one is refused unread
        assert (emu.faults.mode, emu.faults.depth) == ("deep_json", 50)


async def test_a_person_injects_faults_into_a_running_sim(tmp_path):
    """``venus-ems sim`` prints its control URL; ``venus-ems sim-fault`` drives it."""
    with subprocess.Popen(
        [*CLI, "sim", "--duration", "600"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as proc:
        try:
            await drive(proc)
        finally:
            proc.terminate()
            proc.wait(10)


async def drive(proc: subprocess.Popen[str]) -> None:
    """Read the sim's banner, then inject faults with the CLI and see them on the device."""
    assert proc.stdout is not None
    lines: list[str] = []
    with anyio.fail_after(30):
        while not any("Fault control:" in line for line in lines):
            lines.append(await anyio.to_thread.run_sync(proc.stdout.readline))
    text = "".join(lines)
    control = re.search(r"Fault control: (http://\S+)/faults", text)[1]
    shelly = re.search(r"measuring the grid: (http://\S+)", text)[1]

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, "sim-fault", *args], check=False, capture_output=True, text=True, timeout=30
        )

    listed = cli("--control", control)
    assert listed.returncode == 0, listed.stderr
    assert '"shelly"' in listed.stdout
    assert '"chunked_flood"' in listed.stdout
    done = cli("--control", control, "shelly", "http500")
    assert done.returncode == 0, done.stderr
    assert '"mode": "http500"' in done.stdout
    assert await get_status(shelly + PATH) == 500
    done = cli("--control", control, "shelly", "ok", "--set", "slow_s=4")
    assert done.returncode == 0, done.stderr
    assert await get_status(shelly + PATH) == 200
    bad = cli("--control", control, "shelly", "explode")
    assert bad.returncode == 2
    assert "not one of" in bad.stderr
    assert cli("--control", control, "toaster", "ok").returncode == 2
    assert cli("shelly", "ok").returncode == 2  # no control URL
    assert cli("--control", control, "shelly", "ok", "--set", "slow_s").returncode == 2
    dead = cli("--control", "http://127.0.0.1:9", "shelly", "ok")
    assert dead.returncode == 1
    assert "no fault control" in dead.stderr
