"""The micro-inverter feature's outputs: one actuator per inverter, and its services on the GX.

Each inverter's limit is an output with its own actuator (``micro.<serial>``, see
:mod:`venus_ems.runtime.limit_output`): created once per daemon, since it must outlive restarts
of the feature to write the safe limit on shutdown or after a crash. Battery-fed inverters are
claimed with the core's ``SetInverterLimit`` commands (a ``resend`` re-asserts an unchanged
value); PV-fed ones with what is written to their ``/Ac/PowerLimit``, bounded by their part of
the total cap. The safe limit is ``safe_pct`` (battery-fed: the minimum; PV-fed: 100 %).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

import aiohttp

from ..control import SetInverterLimit
from ..devices import Connection, PowerLimiter
from ..devices.registry import open_device
from ..errors import ConfigError
from ..runtime.actuator import Actuator
from ..runtime.config import MicroInverterConfig, MicroInverterControlConfig
from ..runtime.limit_output import InverterLimitWriter, LimiterOpener, inverter_limit_actuator
from .claims import CommandHolder
from .micro_inputs import DtuSnapshot, Written
from .micro_pv import PvFedInverters
from .micro_services import MicroServices

if TYPE_CHECKING:
    from ..control.commands import Command
    from ..runtime.feature import FeatureContext

__all__ = ["MicroOutputs", "connection"]


def connection(config: MicroInverterControlConfig) -> Connection:
    """How to reach the configured DTU."""
    assert config.host is not None
    password = None if config.password is None else config.password.get_secret_value()
    return Connection(config.host, config.timeout_s, config.username, password)


class MicroOutputs:
    """Actuators, command holders and services of every configured inverter."""

    def __init__(self, config: MicroInverterControlConfig, feature: str) -> None:
        """Nothing exists until :meth:`prepare` (the nameplates must be known first)."""
        self.config = config
        self.feature = feature
        self.battery_fed = [i for i in config.inverters if i.source == "battery"]
        self.pv_fed = [i for i in config.inverters if i.source == "pv"]
        self.nameplates: dict[str, float] = {}
        self.actuators: dict[str, Actuator[Any]] = {}
        self.writers: dict[str, InverterLimitWriter] = {}
        self.holders = {
            i.serial: CommandHolder(feature, kinds=(SetInverterLimit,)) for i in config.inverters
        }
        self.services: MicroServices | None = None
        self.pv: PvFedInverters | None = None

    def _opener(self, ctx: FeatureContext) -> LimiterOpener:
        conn, driver, clock = connection(self.config), self.config.driver, ctx.clock

        async def opener(session: aiohttp.ClientSession) -> PowerLimiter:
            device = await open_device(driver, session, conn, clock=clock)
            if not isinstance(device, PowerLimiter):
                raise ConfigError(f"{device.identity.product_name} cannot limit inverters")
            return device

        return opener

    def _actuator(self, ctx: FeatureContext, inv: MicroInverterConfig, plate: float) -> None:
        default_safe = inv.min_pct if inv.source == "battery" else 100
        safe_pct = inv.safe_pct if inv.safe_pct is not None else default_safe
        name = f"micro.{inv.serial}"

        def make() -> Actuator[Any]:
            writer = InverterLimitWriter(
                self._opener(ctx), inv.serial, clock=ctx.clock, nameplate_w=plate
            )
            return inverter_limit_actuator(
                name,
                writer,
                ctx.clock,
                safe_w=safe_pct * plate / 100.0,
                claim_ttl_s=3.0 * self.config.stale_input_s,
                retry_s=5.0,
            )

        act = ctx.actuators.ensure(name, make)
        assert isinstance(act.writer, InverterLimitWriter)
        self.actuators[inv.serial] = act
        self.writers[inv.serial] = act.writer

    async def prepare(
        self,
        ctx: FeatureContext,
        stack: AsyncExitStack,
        nameplates: dict[str, float],
        on_limit: Callable[[], None],
    ) -> None:
        """Actuators and services once every nameplate is known; the services join ``stack``."""
        self.nameplates = nameplates
        for inv in self.config.inverters:
            self._actuator(ctx, inv, nameplates[inv.serial])
        stale = self.config.dtu_stale_s
        services = MicroServices(
            self.config, self.battery_fed, address=ctx.bus_address, stale_s=stale
        )
        pv = PvFedInverters(
            self.pv_fed, address=ctx.bus_address, clock=ctx.clock, stale_s=stale, on_limit=on_limit
        )
        for svc in [*services.services, *pv.services.values()]:
            await stack.enter_async_context(svc)
        self.services, self.pv = services, pv

    def apply(self, commands: Sequence[Command]) -> None:
        """Claim each battery-fed inverter's command; re-assert the ones to send again."""
        for inv in self.battery_fed:
            mine = [
                c for c in commands if isinstance(c, SetInverterLimit) and c.serial == inv.serial
            ]
            act = self.actuators[inv.serial]
            self.holders[inv.serial].apply(act, mine)
            if any(c.resend for c in mine):
                act.reassert()

    def written(self, *, dry_run: bool) -> dict[str, Written]:
        """Per inverter: the limit confirmed by read-back (in a dry run: the one logged)."""
        out = {}
        for serial, writer in self.writers.items():
            if not dry_run:
                out[serial] = Written(writer.confirmed_pct, writer.confirmed_at, writer.failures)
                continue
            act = self.actuators[serial]
            value, at = act.value, act.last_write_at
            pct = None if value is None else round(value * 100.0 / self.nameplates[serial])
            out[serial] = Written(pct, at)
        return out

    def _pv_share_w(self, serial: str, cap: float) -> float | None:
        """The PV-fed inverter's part of the total cap (None: the cap does not bind it)."""
        if cap <= 0:
            return None
        battery_min = sum(i.min_pct * self.nameplates[i.serial] / 100.0 for i in self.battery_fed)
        pv_total = sum(self.nameplates[i.serial] for i in self.pv_fed)
        share = max(cap - battery_min, 0.0) * self.nameplates[serial] / pv_total
        return None if share >= self.nameplates[serial] else share

    def pv_claims(self, cap: float) -> None:
        """A PowerLimit written on D-Bus, bounded by the cap, as the PV inverter's claim."""
        assert self.pv is not None
        for inv in self.pv_fed:
            act = self.actuators[inv.serial]
            wanted = (self.pv.requested_w(inv.serial), self._pv_share_w(inv.serial, cap))
            limits = [w for w in wanted if w is not None]
            if limits:
                act.claim(self.feature, min(*limits, self.nameplates[inv.serial]))
            else:
                act.release(self.feature)  # back to its safe limit (unlimited by default)

    def pv_output_w(self, snapshot: DtuSnapshot) -> float | None:
        """AC W of the PV-fed inverters now (None if one is unknown)."""
        total = 0.0
        for inv in self.pv_fed:
            reading = snapshot.readings.get(inv.serial)
            if reading is None or reading.ac_power_w is None:
                return None
            total += reading.ac_power_w
        return total

    def publish(self, snapshot: DtuSnapshot, now: float) -> None:
        """Refresh every service from the DTU's last answers and the limits in force."""
        assert self.services is not None
        assert self.pv is not None
        dtu_ok = snapshot.at is not None and now - snapshot.at <= self.config.dtu_stale_s
        limits: dict[str, float | None] = {s: act.value for s, act in self.actuators.items()}
        self.services.publish(snapshot, limits, self.nameplates, now, dtu_ok=dtu_ok)
        self.pv.publish(snapshot, self.nameplates, dtu_ok=dtu_ok)
