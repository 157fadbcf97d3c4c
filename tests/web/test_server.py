"""The dashboard over HTTP on the simulated GX: what it shows, live updates, writes, security."""

from __future__ import annotations

import json
import socket

import aiohttp
import anyio
import pytest
from web_support import PASSWORD, TARGET, client, web_config, web_site

from venus_ems.clock import RealClock, SteppedClock
from venus_ems.venus import DeviceInstance, Identity, PathSpec, Service, open_monitor
from venus_ems.web import WebServer
from venus_ems.web.auth import LoginLimiter
from venus_ems.web.state import clean

pytestmark = pytest.mark.anyio


async def _session(http: aiohttp.ClientSession, url: str) -> str:
    """Open the page (which hands out a session) and return the CSRF token."""
    async with http.get(url + "/") as r:
        assert r.status == 200
        assert "venus_ems_session" in r.cookies
        cookie = r.cookies["venus_ems_session"]
        assert cookie["httponly"]
        assert cookie["samesite"] == "Strict"
    async with http.get(url + "/api/session") as r:
        return (await r.json())["csrf"]


async def _event(resp: aiohttp.ClientResponse) -> dict:
    """The next server-sent event's data."""
    while True:
        line = await resp.content.readline()
        assert line, "stream ended"
        if line.startswith(b"data: "):
            return json.loads(line[6:])


async def test_state_shows_the_simulated_site_features_outputs_and_tunables(bus_address):
    async with web_site(bus_address) as site, client() as http:
        await _session(http, site.url)
        await site.run(3)
        async with http.get(site.url + "/api/state") as r:
            view = await r.json()
        soc = site.gx.site.battery.soc
        assert view["site"]["battery"]["soc_pct"] == pytest.approx(soc, abs=0.5)
        assert len(view["site"]["grid_phases_w"]) == 3
        solar = site.gx.site.solar
        assert solar is not None
        assert view["site"]["pv_w"] == pytest.approx(solar.output_w, rel=0.05)
        assert view["site"]["pv_w"] > 0
        features = {f["name"]: f for f in view["features"]}
        assert features["ess_control"]["state"] == "running"
        assert "zero export" in features["ess_control"]["reasons"]
        assert features["one_shot"]["state"] == "stopped"
        assert features["one_shot"]["decision"] == "done"
        (out,) = view["outputs"]
        assert (out["name"], out["owner"]) == ("ess.grid_setpoint", "ess_control")
        assert view["ess"]["owner"] == "ess_control"
        assert view["ess"]["setpoint_w"] == out["value"]
        classes = {d["class"] for d in view["devices"]}
        assert {"battery", "vebus", "solarcharger", "grid"} <= classes
        tunables = {t["path"]: t for t in view["tunables"]}
        assert tunables[TARGET]["value"] == 0.0
        assert (tunables[TARGET]["min"], tunables[TARGET]["max"]) == (-100_000.0, 100_000.0)
        assert tunables["/Settings/VenusEms/EssControl/GridTarget"]["kind"] == "text"


async def test_live_updates_follow_the_site_within_a_second(bus_address):
    async with web_site(bus_address) as site, client() as http:
        await _session(http, site.url)
        async with http.get(site.url + "/api/events") as events:
            assert events.headers["Content-Type"] == "text/event-stream"
            first = await _event(events)
            assert first["view"]["features"]
            seen = first["view"]["site"]["battery"]["soc_pct"]
            await site.run(30)  # half a minute of sun: the battery charges
            soc = site.gx.site.battery.soc
            assert soc != pytest.approx(seen, abs=1e-6)
            with anyio.fail_after(1.0):  # <= 1 s from the change to the page
                while True:
                    msg = await _event(events)
                    if msg["view"]["site"]["battery"]["soc_pct"] == pytest.approx(soc, abs=1e-3):
                        break
            assert msg["view"]["history_seq"] >= 2
        async with http.get(site.url + "/api/history") as r:
            hist = await r.json()
        assert hist["interval_s"] == 5.0
        assert len(hist["points"]) >= 6  # one point per 5 simulated s
        assert hist["points"][-1][2]["soc_pct"] == pytest.approx(soc, abs=0.1)


async def test_a_tunable_write_reaches_localsettings_and_the_feature_verdict_is_returned(
    bus_address,
):
    async with web_site(bus_address) as site, client() as http:
        csrf = await _session(http, site.url)
        headers = {"X-CSRF-Token": csrf}

        async def post(path: str, value: object) -> tuple[int, dict]:
            body = {"path": path, "value": value}
            async with http.post(site.url + "/api/settings", json=body, headers=headers) as r:
                return r.status, await r.json()

        assert await post(TARGET, 150) == (200, {"ok": True, "value": 150.0})
        assert site.setting(TARGET) == 150.0  # in localsettings
        await site.run(3)
        assert site.gx.site.ess.overrides.setpoint_w == pytest.approx(150.0, abs=100)
        # refused by the feature (zero export needs a target >= 0): put back, and the answer says
        status, answer = await post(TARGET, -300)
        assert status == 409
        assert "zero_export needs a target >= 0" in answer["error"]
        assert answer["value"] == 150.0
        assert site.setting(TARGET) == 150.0
        # refused by localsettings (beyond its max), wrong type, not ours, not a setting
        status, answer = await post(TARGET, 1e9)
        assert (status, answer["ok"]) == (400, False)
        assert "-100000..100000" in answer["error"]
        assert (await post(TARGET, "lots"))[0] == 400
        assert (await post(TARGET, True))[0] == 400
        assert (await post("/Settings/CGwacs/AcPowerSetPoint", 5))[0] == 404
        assert (await post("/Settings/VenusEms/EssControl/Nope", 5))[0] == 404
        status, answer = await post("/Settings/VenusEms/EssControl/GridTarget", 7)
        assert status == 400
        assert answer["error"] == "expected a text of at most 256 printable characters"
        assert site.setting(TARGET) == 150.0


async def test_writes_need_the_csrf_token_and_a_same_site_origin(bus_address):
    async with web_site(bus_address) as site, client() as http:
        csrf = await _session(http, site.url)
        body = {"path": TARGET, "value": 99.0}
        for headers in ({}, {"X-CSRF-Token": "x" * 43}, {"X-CSRF-Token": ""}):
            async with http.post(site.url + "/api/settings", json=body, headers=headers) as r:
                assert r.status == 403
                assert "CSRF" in (await r.json())["error"]
        evil = {"X-CSRF-Token": csrf, "Origin": "http://evil.example"}
        async with http.post(site.url + "/api/settings", json=body, headers=evil) as r:
            assert r.status == 403
        assert site.setting(TARGET) == 0.0  # nothing was written
        # a page from elsewhere that rebinds its name to 127.0.0.1 gets nothing
        async with http.get(site.url + "/api/state", headers={"Host": "evil.example"}) as r:
            assert r.status == 421
        # bodies are bounded
        huge = {"X-CSRF-Token": csrf, "Content-Type": "application/json"}
        async with http.post(site.url + "/api/settings", data=b"x" * 5000, headers=huge) as r:
            assert r.status == 413


async def test_with_a_password_nothing_is_served_or_written_without_logging_in(bus_address):
    async with web_site(bus_address, password=True) as site, client() as http:
        async with http.get(site.url + "/", allow_redirects=False) as r:
            assert (r.status, r.headers["Location"]) == (303, "/login")
        for path in ("/api/state", "/api/events", "/api/history", "/api/session"):
            async with http.get(site.url + path) as r:
                assert r.status == 401, path
        body = {"path": TARGET, "value": 99.0}
        async with http.post(site.url + "/api/settings", json=body) as r:
            assert r.status == 401
        assert site.setting(TARGET) == 0.0
        # wrong password: refused; right one: a session with its own CSRF token
        async with http.post(site.url + "/login", data={"password": "guess"}) as r:
            assert r.status == 401
            assert "Wrong password" in await r.text()
        async with http.post(
            site.url + "/login", data={"password": PASSWORD}, allow_redirects=False
        ) as r:
            assert (r.status, r.headers["Location"]) == (303, "/")
        async with http.get(site.url + "/api/session") as r:
            csrf = (await r.json())["csrf"]
        async with http.post(
            site.url + "/api/settings", json=body, headers={"X-CSRF-Token": csrf}
        ) as r:
            assert r.status == 200
        assert site.setting(TARGET) == 99.0
        async with http.post(site.url + "/logout") as r:
            assert r.status == 403  # logging out is a write too
        async with http.post(site.url + "/logout", headers={"X-CSRF-Token": csrf}) as r:
            assert r.status == 200
        async with http.get(site.url + "/api/state") as r:
            assert r.status == 401


async def test_failed_logins_are_rate_limited_per_client(bus_address):
    async with web_site(bus_address, password=True) as site, client() as http:
        for _ in range(5):
            async with http.post(site.url + "/login", data={"password": "guess"}) as r:
                assert r.status == 401
        async with http.post(site.url + "/login", data={"password": PASSWORD}) as r:
            assert r.status == 429  # even the right password waits
            assert 0 < int(r.headers["Retry-After"]) <= 300
        await site.human.advance(301.0)
        async with http.post(
            site.url + "/login", data={"password": PASSWORD}, allow_redirects=False
        ) as r:
            assert r.status == 303


def test_the_limiter_counts_everyone_and_forgets_old_failures():
    clock = SteppedClock()
    lim = LoginLimiter(clock, per_client=2, total=3, window_s=60.0, clients=2)
    lim.failed("a")
    lim.failed("a")
    assert lim.retry_after("a") == 60.0
    assert lim.retry_after("b") == 0.0
    lim.failed("b")  # the third failure anywhere: everybody waits
    assert lim.retry_after("c") == 60.0
    for name in "cdefg":  # memory stays bounded by ``clients``
        lim.failed(name)
    assert len(lim._failures) == 2


async def test_streams_are_limited(bus_address):
    async with web_site(bus_address, max_clients=1) as site, client() as http:
        await _session(http, site.url)
        async with http.get(site.url + "/api/events") as first:
            await _event(first)
            async with http.get(site.url + "/api/events") as second:
                assert second.status == 503


async def test_a_busy_port_does_not_stop_the_daemon_and_is_tried_again(bus_address, caplog):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = WebServer(web_config(port=port), RealClock())
        async with open_monitor(bus_address) as mon, anyio.create_task_group() as tg:
            await tg.start(server.run, mon)  # started although it could not listen
            assert server.port is None
            assert "cannot listen" in caplog.text
            taken.close()
            with anyio.fail_after(5):
                while server.port is None:
                    await anyio.sleep(0.05)
            async with client() as http, http.get(server.url) as r:
                assert r.status == 200
            tg.cancel_scope.cancel()


async def test_any_new_device_appears_and_hostile_values_stay_valid_json(bus_address):
    charger = Service(
        "com.victronenergy.evcharger.test_1",
        identity=Identity("Some charger", product_id=0xC024),
        device_instance=DeviceInstance("evcharger", 40, "test_ev"),
        address=bus_address,
    )
    charger.add_path("/Ac/Power", 7200.0, PathSpec("d"))
    charger.add_path("/Status", 2, PathSpec("i"))
    hostile = Service(
        "com.victronenergy.acload.hostile",
        identity=Identity("x" * 5000, product_id=0),
        device_instance=DeviceInstance("acload", 41, "hostile"),
        address=bus_address,
    )
    hostile.add_path("/Ac/Power", 1e308, PathSpec("d"))
    hostile.add_path("/CustomName", "<script>alert(1)</script>", PathSpec("s"))
    async with web_site(bus_address) as site, charger, hostile, client() as http:
        await _session(http, site.url)
        await site.run(2)
        async with http.get(site.url + "/api/state") as r:
            text = await r.text()

        def refuse(name: str) -> None:
            raise AssertionError(f"{name} in JSON")

        view = json.loads(text, parse_constant=refuse)  # strict JSON: no NaN, no Infinity
        devices = {d["service"]: d for d in view["devices"]}
        ev = devices["com.victronenergy.evcharger.test_1"]
        assert (ev["kind"], ev["title"]) == ("EV charger", "Some charger")
        assert ["power", 7200.0, "W"] in ev["values"]
        bad = devices["com.victronenergy.acload.hostile"]
        assert bad["title"] == "<script>alert(1)</script>"  # text for textContent, never HTML
        assert ["power", 1e308, "W"] in bad["values"]
        assert len(text) < 100_000


def test_snapshots_are_strict_json_whatever_the_bus_holds():
    deep: object = 1
    for _ in range(20):
        deep = [deep]
    out = clean({"a": float("nan"), "b": [float("inf"), -float("inf")], "s": "x" * 9000, "d": deep})
    assert out["a"] is None
    assert out["b"] == [None, None]
    assert len(out["s"]) == 501
    json.dumps(out, allow_nan=False)
