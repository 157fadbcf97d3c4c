"""es-ESS's MQTT contract for the surplus distributor, so existing consumer scripts keep working.

Under ``es_ess_prefix`` (default ``es-ESS/SolarOverheadDistributor``):

* consumers *request* on ``<prefix>/Requests/<key>/<Field>`` (plain text): ``IsAutomatic``
  (true/false), ``Consumption`` (W, its draw), ``Request`` (W, its maximum), ``StepSize`` (W),
  ``Minimum`` (W, first grant), ``Priority`` (integer, lower first), ``PriorityShift``,
  ``IgnoreBatReservation`` (true/false), ``CustomName``, ``VRMInstanceID`` (the instance of its
  acload, sent before ``Request``); ``IsScriptedConsumer`` and es-ESS's NPC keys are accepted
  and ignored. A key becomes a seat on the consumer board (continuous: ``Minimum`` first, then
  ``StepSize`` up to ``Request``) and a ``com.victronenergy.acload.venusems_surplus_<key>``
  (draw, allowance, reason, runtime and energy counted from its ``Consumption``, kept in
  ``<state_dir>/surplus/request-<key>.json``) once its ``Request`` is known; its request
  *expires* when nothing arrives for ``request_max_age_s`` (es-ESS kept a dead script's last
  request forever);
* the distributor publishes ``<prefix>/Requests/<key>/Allowance`` (W, QoS 1, not retained)
  for every seat, ``<prefix>/Requests/<key>/Energy/{runtimeToday,runtimeYesterday,
  runtimeTotal}`` (s) and ``…/{energyToday,energyYesterday,energyTotal}`` (Wh) (retained; for
  our switched consumers and the request keys), and ``<prefix>/Calculations/{OverheadAvailable,
  OverheadAssigned,OverheadRemaining}``, ``…/Battery/{Power,Soc,Reservation}``,
  ``…/Grid/TotalFeedIn`` and ``<prefix>/LastUpdateTime`` (epoch s).

Bad input — a key that is not 1-32 letters, digits, ``_`` or ``-``, a name already used by
another consumer, a value that is not a finite number in range, more than
:data:`MAX_REQUESTERS` keys — is rejected with a rate-limited service message and changes
nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import anyio

from ..control import surplus as core
from ..errors import DeviceError
from ..runtime.complaints import Complaints
from ..runtime.config import SurplusConfig
from ..runtime.consumers import ConsumerBoard, ConsumerHandle, ConsumerSpec
from ..runtime.mqtt.payload import parse_number, payload_text, quote
from ..venus import Service
from .surplus_consumer import ConsumerRunner, consumer_service
from .surplus_stats import ConsumerStats

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

    from ..runtime.feature import FeatureContext
    from ..runtime.mqtt.topics import MqttMessage

__all__ = ["MAX_REQUESTERS", "Requester", "SurplusMqtt"]

MAX_REQUESTERS = 32
_KEY = re.compile(r"[A-Za-z0-9_-]{1,32}")
_NUMBERS = {
    "Consumption": (0.0, 100_000.0),
    "Request": (0.0, 100_000.0),
    "StepSize": (0.0, 100_000.0),
    "Minimum": (0.0, 100_000.0),
    "Priority": (0.0, 1000.0),
    "PriorityShift": (0.0, 1000.0),
}
_FLAGS = ("IsAutomatic", "IgnoreBatReservation")
_TEXTS = ("CustomName", "VRMInstanceID")
_FIRST_INSTANCE = 100
_IGNORED = frozenset(
    {
        "IsScriptedConsumer",
        "IsHttpConsumer",
        "IsMqttConsumer",
        "OnUrl",
        "OffUrl",
        "StatusUrl",
        "PowerUrl",
        "OnTopic",
        "OnValue",
        "OffTopic",
        "OffValue",
        "StatusTopic",
        "PowerTopic",
        "OnKeywordRegex",
        "PowerExtractRegex",
        "Allowance",
    }
)


class Requester:
    """The fields one es-ESS request key has sent so far."""

    def __init__(self, key: str) -> None:
        """Nothing known yet."""
        self.key = key
        self.numbers: dict[str, float] = {}
        self.flags: dict[str, bool] = {"IsAutomatic": False, "IgnoreBatReservation": False}
        self.custom_name = key
        self.instance: int | None = None
        self.handle: ConsumerHandle | None = None
        self.service: Service | None = None
        self.stats: ConsumerStats | None = None

    def spec(self) -> ConsumerSpec | None:
        """The board spec, once ``Request`` is known (ValueError when inconsistent)."""
        request = self.numbers.get("Request")
        if request is None:
            return None
        minimum = min(self.numbers.get("Minimum", 0.0), request)
        step = self.numbers.get("StepSize", 0.0)
        return ConsumerSpec(
            name=self.key,
            priority=int(self.numbers.get("Priority", 100.0)),
            priority_shift=self.numbers.get("PriorityShift", 0.0),
            min_w=minimum,
            max_w=request,
            step_w=step,
            ignore_reservation=self.flags["IgnoreBatReservation"],
        )


def _flag(text: str) -> bool:
    return text.strip().lower() == "true"


class SurplusMqtt:
    """Subscribes to the request topics and publishes the distribution (see the module doc)."""

    def __init__(self, config: SurplusConfig, ctx: FeatureContext, board: ConsumerBoard) -> None:
        """``ctx.mqtt`` must be set."""
        assert ctx.mqtt is not None
        self.config = config
        self.ctx = ctx
        self.link = ctx.mqtt
        self.board = board
        self.prefix = config.es_ess_prefix
        self.requesters: dict[str, Requester] = {}
        self.complaints = Complaints(ctx.clock, lambda text: ctx.message("warning", text))
        self._filter = f"{self.prefix}/Requests/+/+"

    async def start(self, tg: TaskGroup) -> None:
        """Subscribe to the request topics (when enabled)."""
        if self.config.es_ess_requests:
            await self.link.subscribe(self._filter, self.on_request)

    def all_stats(self) -> list[tuple[str, ConsumerStats]]:
        """The counters of every request key (saved by the feature with its own)."""
        return [(k, r.stats) for k, r in self.requesters.items() if r.stats is not None]

    async def stop(self) -> None:
        """Unsubscribe and leave the board with every requester."""
        if self.config.es_ess_requests:
            await self.link.unsubscribe(self._filter, self.on_request)
        for r in self.requesters.values():
            if r.handle is not None:
                r.handle.leave()
            if r.service is not None:
                await r.service.close()
        self.requesters.clear()

    def reject(self, text: str, key: str) -> None:
        """One rate-limited complaint (``key`` from a fixed set)."""
        self.complaints.reject(f"es-ESS request rejected: {text}", key)

    async def on_request(self, msg: MqttMessage) -> None:
        """One ``Requests/<key>/<Field>`` message."""
        parts = msg.topic[len(self.prefix) + 1 :].split("/")
        if len(parts) != 3:
            return
        _, key, name = parts
        if name in _IGNORED:
            return
        if not _KEY.fullmatch(key):
            self.reject(f"consumer key {quote(key)}: expected 1-32 letters, digits, _ or -", "key")
            return
        if name not in _NUMBERS and name not in _FLAGS and name not in _TEXTS:
            self.reject(f"{key}: unknown field {quote(name)}", "field")
            return
        try:
            text = payload_text(msg.payload, limit=64)
            value: float | bool
            if name in _TEXTS:
                self.text_field(key, name, text)
                return
            if name in _FLAGS:
                value = _flag(text)
            else:
                value = parse_number(text) if text.strip() else 100.0  # es-ESS: empty = 100
                lo, hi = _NUMBERS[name]
                if not lo <= value <= hi:
                    raise DeviceError(f"{value:g} is outside {lo:g}..{hi:g}")
        except DeviceError as err:
            self.reject(f"{key}/{name}: {err}", "value")
            return
        r = self.apply(key, name, value)
        if r is not None and r.handle is not None and r.service is None:
            await self.add_service(r)

    def text_field(self, key: str, name: str, text: str) -> None:
        """``CustomName`` (display) or ``VRMInstanceID`` (its acload's instance), when known."""
        r = self.requesters.get(key) or self._new(key)
        if r is None:
            return
        self.requesters[key] = r
        text = text.strip()
        if name == "CustomName":
            if not text or not text.isprintable():
                self.reject(f"{key}/CustomName: expected printable text", "value")
                return
            r.custom_name = text
            if r.service is not None:
                r.service["/CustomName"] = text
        elif text.isdigit() and int(text) <= 999:
            r.instance = int(text)
        else:
            self.reject(f"{key}/VRMInstanceID: expected 0..999", "value")

    async def add_service(self, r: Requester) -> None:
        """Publish the requester as an acload (its VRMInstanceID preferred)."""
        index = len([x for x in self.requesters.values() if x.service is not None])
        svc = consumer_service(
            r.key,
            custom_name=r.custom_name,
            connection="MQTT es-ESS request",
            instance=r.instance if r.instance is not None else _FIRST_INSTANCE + index,
            request_w=r.numbers.get("Request"),
            priority=int(r.numbers.get("Priority", 100.0)),
            address=self.ctx.bus_address,
        )
        r.service = svc
        path = self.ctx.state_dir / "surplus" / f"request-{r.key}.json"
        r.stats, problem = await anyio.to_thread.run_sync(ConsumerStats.load, path)
        if problem:
            self.ctx.message("warning", problem)
        try:
            await svc.register()
        except Exception as err:  # noqa: BLE001 - a service that cannot register is reported
            r.service = None
            self.reject(f"{r.key}: its D-Bus service did not register: {err}", "service")

    def _new(self, key: str) -> Requester | None:
        """A new requester, unless there are too many or the name is taken (rejected)."""
        if len(self.requesters) >= MAX_REQUESTERS:
            self.reject(f"{key}: more than {MAX_REQUESTERS} request keys", "full")
            return None
        if any(s.spec.name == key for s in self.board.consumers()):
            self.reject(f"{key}: the name is taken by another consumer", "taken")
            return None
        return Requester(key)

    def apply(self, key: str, name: str, value: float | bool) -> Requester | None:
        """Take one valid field (a new requester joins the board once it has a Request)."""
        r = self.requesters.get(key) or self._new(key)
        if r is None:
            return None
        old = (dict(r.numbers), dict(r.flags))
        if isinstance(value, bool):
            r.flags[name] = value
        else:
            r.numbers[name] = float(value)
        try:
            spec = r.spec()
        except ValueError as err:
            r.numbers, r.flags = old
            self.reject(f"{key}/{name}: {err}", "spec")
            return None
        self.requesters[key] = r
        now = self.ctx.clock.monotonic()
        if spec is not None:
            if r.handle is None:
                try:
                    r.handle = self.board.join(spec)
                except ValueError as err:
                    self.requesters.pop(key, None)
                    self.reject(f"{key}: {err}", "taken")
                    return None
            elif r.handle.spec != spec:
                r.handle.spec = spec
        if r.handle is not None:
            draw = r.numbers.get("Consumption")
            r.handle.report(draw, now, ready=r.flags["IsAutomatic"])
            if r.service is not None:
                r.service.update({"/Surplus/Request": r.numbers.get("Request"), "/Ac/Power": draw})
        return r

    def publish_distribution(
        self, d: core.Distribution, site: core.Site, runners: Mapping[str, ConsumerRunner]
    ) -> None:
        """The allowances, figures and counters in es-ESS's layout."""
        p, link = self.prefix, self.link
        for name, alloc in d.allocations.items():
            if _KEY.fullmatch(name):
                link.publish(f"{p}/Requests/{name}/Allowance", f"{alloc.power_w:g}", qos=1)
            r = self.requesters.get(name)
            if r is not None and r.service is not None:
                draw = r.numbers.get("Consumption")
                values: dict[str, Any] = {
                    "/Surplus/Allowance": alloc.power_w,
                    "/Surplus/Reason": alloc.reason[:200],
                    "/Ac/Power": draw,
                    "/Ac/L1/Power": draw,
                    "/State": int(r.flags["IsAutomatic"]),
                }
                st = r.stats
                if st is not None:  # counted from what the script reports it draws
                    st.advance(bool(draw), draw or 0.0, self.ctx.clock.monotonic())
                    values |= {
                        "/Ac/Energy/Forward": st.energy_total_wh / 1000.0,
                        "/Surplus/RuntimeToday": st.runtime_today_s,
                        "/Surplus/RuntimeYesterday": st.runtime_yesterday_s,
                        "/Surplus/RuntimeTotal": st.runtime_total_s,
                        "/Surplus/EnergyToday": st.energy_today_wh / 1000.0,
                        "/Surplus/EnergyYesterday": st.energy_yesterday_wh / 1000.0,
                        "/Surplus/EnergyTotal": st.energy_total_wh / 1000.0,
                    }
                r.service.update(values)
        figures: dict[str, Any] = {
            "Calculations/OverheadAvailable": d.surplus_w,
            "Calculations/OverheadAssigned": d.assigned_w,
            "Calculations/OverheadRemaining": d.remaining_w if d.surplus_w is not None else None,
            "Calculations/Battery/Power": site.battery_w,
            "Calculations/Battery/Soc": site.soc,
            "Calculations/Battery/Reservation": d.reservation_w,
            "Calculations/Grid/TotalFeedIn": None if site.grid_w is None else -site.grid_w,
            "LastUpdateTime": int(self.ctx.clock.now().timestamp()),
        }
        for path, value in figures.items():
            link.publish(f"{p}/{path}", "" if value is None else f"{value:g}", qos=1)
        stats = {name: runner.stats for name, runner in runners.items()}
        stats.update((k, r.stats) for k, r in self.requesters.items() if r.stats is not None)
        for name, st in stats.items():
            energy = {
                "runtimeToday": st.runtime_today_s,
                "runtimeYesterday": st.runtime_yesterday_s,
                "runtimeTotal": st.runtime_total_s,
                "energyToday": st.energy_today_wh,
                "energyYesterday": st.energy_yesterday_wh,
                "energyTotal": st.energy_total_wh,
            }
            for key, v in energy.items():
                link.publish(f"{p}/Requests/{name}/Energy/{key}", f"{v:.0f}", retain=True, qos=1)
