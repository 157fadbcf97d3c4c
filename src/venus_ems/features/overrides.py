"""Which configured values localsettings overrides (decision D12), for ``check-config``.

A tunable's value stored in localsettings by an earlier run (or written since over D-Bus or
MQTT) wins over the TOML. This reads the stored values of every enabled feature's tunables
over D-Bus, without starting anything, and says which configured values are not in force.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import anyio

from ..errors import BusError
from ..venus import SETTINGS_SERVICE, Value
from ..venus.bus import DBusCallError, call, connect
from ..venus.codec import unwrap
from .ess_tunables import Tunables

__all__ = ["configured_tunables", "localsettings_report"]

_BUS_ITEM = "com.victronenergy.BusItem"


def configured_tunables(features: Iterable[tuple[str, object]]) -> list[Tunables]:
    """The tunables of each feature (from :func:`~venus_ems.features.create_features`)."""
    out = []
    for _, feature in features:
        tunables = getattr(feature, "tunables", None)
        if isinstance(tunables, Tunables):
            out.append(tunables)
    return out


async def _stored(address: str | None, paths: list[str], timeout_s: float) -> dict[str, Value]:
    """Path -> value from localsettings (missing paths left out); BusError when unreachable."""
    out: dict[str, Value] = {}
    with anyio.fail_after(timeout_s):
        bus = await connect(address)
        try:
            for path in paths:
                try:
                    reply = await call(bus, SETTINGS_SERVICE, path, _BUS_ITEM, "GetValue")
                except DBusCallError as err:
                    if "ServiceUnknown" in err.name or "NameHasNoOwner" in err.name:
                        raise BusError(f"{SETTINGS_SERVICE} is not running") from err
                    continue  # not created yet: the configured value will be used
                out[path] = unwrap(reply[0]) if reply else None
        finally:
            bus.disconnect()
    return out


async def localsettings_report(
    features: Sequence[Tunables], address: str | None, *, timeout_s: float = 3.0
) -> list[str]:
    """Lines for check-config: the overridden values, or why they could not be read.

    Empty when ``features`` is. Never raises for an unreachable bus.
    """
    if not features:
        return []
    paths = [t.path(item) for t in features for item in t.items.values()]
    try:
        stored = await _stored(address, paths, timeout_s)
    except (BusError, TimeoutError) as err:
        reason = str(err) or "no answer"
        return [f"localsettings: not checked ({reason})"]
    lines: list[str] = []
    for t in features:
        values, problems = t.resolve(stored)
        lines.extend(f"localsettings: [{t.feature}] {text}" for _, text in problems)
        lines.extend(
            f"localsettings overrides [{t.feature}] {text}" for text in t.overrides(values)
        )
    if not lines:
        lines.append("localsettings: no configured value is overridden")
    return lines
