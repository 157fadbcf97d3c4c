"""A loopback server speaking the blueprint driver's API (plain helper module, no tests here).

It is built on the emulators' ``EmulatorServer``, so every fault mode (offline, slow, garbage,
truncated, http500, auth) works on it as on the Shelly emulators. Values are set by the test;
the energy counters are whatever the test puts in ``channels`` (Wh).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

from aiohttp import web

from venus_ems.sim.devices import EmulatorServer

__all__ = ["BlueprintChannel", "BlueprintDevice", "BlueprintState"]


@dataclass
class BlueprintChannel:
    """One CT channel as the device reports it: W (+ = import), V, Wh counters."""

    power_w: float
    voltage_v: float | None = 230.0
    energy_in_wh: float | None = 0.0
    energy_out_wh: float | None = 0.0


@dataclass
class BlueprintState:
    """Everything the device answers with; tests edit it between requests."""

    model: str = "BP-3"
    serial: str = "BP0001"
    firmware: str = "1.2.0"
    relays: int = 1
    channels: list[BlueprintChannel] = field(
        default_factory=lambda: [BlueprintChannel(1000.0), BlueprintChannel(-250.0)]
    )
    relay_on: bool = False
    stuck_relay: bool = False  # the relay ignores commands (a welded contact)
    meter_override: object = None  # a raw /api/meter document to send instead


class BlueprintDevice(EmulatorServer):
    """The blueprint meter on 127.0.0.1; ``password`` enables HTTP Basic (user ``admin``)."""

    open_paths = frozenset()

    def __init__(self, state: BlueprintState | None = None, *, password: str | None = None,
                 **kw: object) -> None:  # fmt: skip
        super().__init__(**kw)  # type: ignore[arg-type]
        self.state = state if state is not None else BlueprintState()
        self.password = password
        self.switch_count = 0

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/api/info", self._info)
        app.router.add_get("/api/meter", self._meter)
        app.router.add_get("/api/relay", self._relay)
        app.router.add_post("/api/relay", self._switch)

    async def check_auth(self, request: web.Request) -> web.StreamResponse | None:
        if self.password is None:
            return None
        want = "Basic " + base64.b64encode(f"admin:{self.password}".encode()).decode()
        if request.headers.get("Authorization") == want:
            return None
        return await self.challenge(request)

    async def _info(self, request: web.Request) -> web.Response:
        s = self.state
        return web.json_response(
            {
                "model": s.model,
                "serial": s.serial,
                "firmware": s.firmware,
                "channels": len(s.channels),
                "relays": s.relays,
            }
        )

    async def _meter(self, request: web.Request) -> web.Response:
        if self.state.meter_override is not None:
            return web.json_response(self.state.meter_override)
        doc = {
            "channels": [
                {k: v for k, v in vars(ch).items() if v is not None} for ch in self.state.channels
            ]
        }
        return web.json_response(doc)

    async def _relay(self, request: web.Request) -> web.Response:
        return web.json_response({"on": self.state.relay_on})

    async def _switch(self, request: web.Request) -> web.Response:
        try:
            on = json.loads(await request.read())["on"]
        except (ValueError, KeyError, TypeError):
            return web.Response(status=400, text="bad request")
        if not isinstance(on, bool):
            return web.Response(status=400, text="bad request")
        if not self.state.stuck_relay:
            self.state.relay_on = on
            self.switch_count += 1
        return web.json_response({"on": self.state.relay_on})
