"""``[surplus]`` (S1/S2): the solar surplus distributor and its switched consumers.

Powers in W (+ = drawn from the site), times in s, SoC in %. The battery reservation is either
``reservation_points`` (``[[soc, W], ...]``, SoC rising, W not rising) or ``reservation`` (an
es-ESS ``MinBatteryCharge`` formula over ``SOC``, evaluated safely and sampled at 0..100 %; it
must not rise with SoC and may not fail anywhere in 0..100 %).

Each ``[[surplus.consumer]]`` is one on/off load the distributor switches:

* ``driver = "shelly"``: a Shelly relay (gen1..gen3) at ``host`` (``channel``), its metered
  power when it has a meter;
* ``driver = "http"``: ``on_url``/``off_url`` (GET), ``status_url`` whose JSON field
  ``status_field`` (dotted path, e.g. ``relays.0.ison``) says on/off, optionally
  ``power_url``/``power_field`` for its draw;
* ``driver = "mqtt"``: ``command_topic`` with ``on_payload``/``off_payload``, ``state_topic``
  whose payload equals ``on_state`` when on, optionally ``power_topic`` (a number in W);
* ``when``: an optional expression over site values (``soc``, ``grid_w``, ``battery_w``,
  ``pv_w``, ``hour``, ``minute``) that must be true for the consumer to take surplus (a
  *scripted* consumer, checked by ``check-config``).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from ...control.expression import Expression, reservation_expression
from ...control.surplus_model import ReservationCurve
from .base import DeviceInstance, FeatureName, FeatureTable, Host, Items, PublishTopic, StrictModel
from .secrets import Secret

__all__ = ["SITE_NAMES", "SurplusConfig", "SurplusConsumerConfig", "when_expression"]

SITE_NAMES = frozenset({"soc", "grid_w", "battery_w", "pv_w", "hour", "minute"})
"""The names a consumer's ``when`` expression may use."""

_MAX_W = 100_000.0
_FIELD = re.compile(r"[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64}){0,7}")


def _check_url(url: str) -> str:
    """An http(s) URL without credentials in it."""
    if not re.fullmatch(r"https?://[^\s@]{1,500}", url):
        raise ValueError(
            "expected an http:// or https:// URL without spaces or credentials "
            "(use username and password)"
        )
    return url


def _check_field(path: str) -> str:
    if not _FIELD.fullmatch(path):
        raise ValueError("expected a dotted JSON field path such as relays.0.ison")
    return path


def when_expression(text: str) -> Expression:
    """A consumer's ``when`` condition over :data:`SITE_NAMES` (ValueError when invalid)."""
    return Expression(text, SITE_NAMES)


def _check_when(text: str) -> str:
    when_expression(text)
    return text


def _check_reservation(text: str) -> str:
    ReservationCurve.from_function(
        lambda soc: reservation_expression(text).evaluate({"SOC": soc, "soc": soc})
    )
    return text


def _pair(value: object) -> object:
    return tuple(value) if isinstance(value, list) else value


Point = Annotated[tuple[float, float], BeforeValidator(_pair)]
"""One ``[soc, W]`` point of the reservation curve."""
Url = Annotated[str, AfterValidator(_check_url)]
JsonField = Annotated[str, AfterValidator(_check_field)]
When = Annotated[str, AfterValidator(_check_when)]
ReservationFormula = Annotated[str, AfterValidator(_check_reservation)]


class SurplusConsumerConfig(StrictModel):
    """One switched consumer (see the module doc); ``power_w`` is what it draws when on."""

    name: FeatureName
    enabled: bool = True
    driver: Literal["shelly", "http", "mqtt"] = "shelly"
    custom_name: str | None = Field(default=None, min_length=1, max_length=64)
    power_w: float = Field(gt=0.0, le=_MAX_W)
    priority: int = Field(default=50, ge=0, le=1000)
    priority_shift: float = Field(default=0.0, ge=0.0, le=1000.0)
    min_on_s: float = Field(default=60.0, ge=0.0, le=86_400.0)
    min_off_s: float = Field(default=60.0, ge=0.0, le=86_400.0)
    ignore_reservation: bool = False
    safe_state: Literal["off", "on"] = "off"
    when: When | None = None
    poll_interval_s: float = Field(default=5.0, ge=0.5, le=300.0)
    timeout_s: float = Field(default=3.0, ge=0.1, le=30.0)
    device_instance: DeviceInstance | None = None
    # shelly
    host: Host | None = None
    channel: int = Field(default=0, ge=0, le=7)
    generation: Literal["auto", 1, 2] = "auto"
    username: str | None = Field(default=None, min_length=1, max_length=64)
    password: Secret | None = None
    # http
    on_url: Url | None = None
    off_url: Url | None = None
    status_url: Url | None = None
    status_field: JsonField | None = None
    power_url: Url | None = None
    power_field: JsonField | None = None
    # mqtt
    command_topic: PublishTopic | None = None
    on_payload: str = Field(default="on", max_length=256)
    off_payload: str = Field(default="off", max_length=256)
    state_topic: PublishTopic | None = None
    on_state: str = Field(default="on", max_length=256)
    power_topic: PublishTopic | None = None

    @model_validator(mode="after")
    def _driver_keys(self) -> SurplusConsumerConfig:
        """Each driver has the keys it needs and none of the others'."""
        need = {
            "shelly": ("host",),
            "http": ("on_url", "off_url", "status_url", "status_field"),
            "mqtt": ("command_topic", "state_topic"),
        }[self.driver]
        missing = [k for k in need if getattr(self, k) is None]
        if missing:
            raise ValueError(f'driver = "{self.driver}" needs {", ".join(missing)}')
        foreign = {
            "shelly": ("on_url", "off_url", "status_url", "power_url", "command_topic"),
            "http": ("host", "command_topic", "state_topic", "power_topic"),
            "mqtt": ("host", "on_url", "off_url", "status_url", "power_url"),
        }[self.driver]
        extra = [k for k in foreign if getattr(self, k) is not None]
        if extra:
            raise ValueError(f'{", ".join(extra)} do not apply to driver = "{self.driver}"')
        if (self.power_url is None) != (self.power_field is None):
            raise ValueError("power_url and power_field go together")
        if self.password is not None and self.username is None:
            raise ValueError("password needs username")
        return self


class SurplusConfig(FeatureTable):
    """The solar surplus distributor (S1) and its switched consumers (S2)."""

    feature = "venus_ems.features.surplus:build"

    interval_s: float = Field(default=60.0, ge=1.0, le=600.0)
    reservation: ReservationFormula | None = None
    reservation_points: Items[Point] | None = None
    hysteresis_w: float = Field(default=500.0, ge=0.0, le=10_000.0)
    settle_s: float = Field(default=10.0, ge=0.0, le=300.0)
    borrow_s: float = Field(default=300.0, ge=0.0, le=3600.0)
    request_max_age_s: float = Field(default=120.0, ge=5.0, le=3600.0)
    stale_input_s: float = Field(default=15.0, ge=1.0, le=300.0)
    es_ess_topics: bool = True
    es_ess_prefix: PublishTopic = "es-ESS/SolarOverheadDistributor"
    es_ess_requests: bool = True
    consumer: Items[SurplusConsumerConfig] = ()

    @model_validator(mode="after")
    def _consistent(self) -> SurplusConfig:
        """One reservation form; consumer names unique; the curve valid."""
        if self.reservation is not None and self.reservation_points is not None:
            raise ValueError("set reservation or reservation_points, not both")
        names = [c.name for c in self.consumer]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"[[surplus.consumer]] name {dupes[0]!r} is used more than once")
        self.reservation_curve()  # ValueError for a bad curve
        return self

    @property
    def grant_max_age_s(self) -> float:
        """A consumer follows a grant at most this old (three distribution intervals), s."""
        return 3.0 * self.interval_s + 5.0

    def reservation_curve(self) -> ReservationCurve:
        """The battery reservation by SoC (ValueError when the form is invalid)."""
        if self.reservation_points is not None:
            return ReservationCurve(tuple((float(s), float(w)) for s, w in self.reservation_points))
        if self.reservation is not None:
            expr = reservation_expression(self.reservation)
            return ReservationCurve.from_function(
                lambda soc: expr.evaluate({"SOC": soc, "soc": soc})
            )
        return ReservationCurve()
