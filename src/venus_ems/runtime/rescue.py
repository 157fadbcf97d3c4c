"""Outputs a killed run left are cleared even when the new config is refused.

``venus-ems run`` normally clears the output ledger's leftovers at start (runtime/leftovers.py),
after the config has loaded. A config that fails validation (an edit gone wrong, exit 2) would
leave a killed run's hub4 overrides or persisted caps in force until someone fixes it; so the
CLI calls :func:`clear_after_config_error` first. It reads only ``[general] state_dir`` and
``bus_address`` from the raw TOML when they are strings (else the defaults), and touches the bus
only if the ledger has entries.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import anyio

from ..clock import Clock
from ..errors import EmsError
from ..venus import open_monitor
from .config.general import default_state_dir
from .ledger import OutputLedger
from .leftovers import bus_id, clear_leftovers

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

__all__ = ["clear_after_config_error"]

_LOG = logging.getLogger(__name__)
_MAX_CONFIG = 1 << 20


def _raw_general(config_path: str) -> dict[str, object]:
    try:
        path = Path(config_path)
        if path.stat().st_size > _MAX_CONFIG:
            return {}
        general = tomllib.loads(path.read_text(encoding="utf-8")).get("general", {})
    except (OSError, ValueError, RecursionError):
        return {}
    return general if isinstance(general, dict) else {}


async def clear_after_config_error(
    config_path: str, bus: str | None, clock: Clock, *, timeout_s: float = 30.0
) -> dict[str, str]:
    """Settle the ledger's leftovers (what happened per output); {} if none or no bus (logged)."""
    general = _raw_general(config_path)
    state = general.get("state_dir")
    state_dir = Path(state) if isinstance(state, str) and state else default_state_dir()
    ledger_dir = state_dir / "outputs"
    try:
        if not any(ledger_dir.glob("*.json")):
            return {}
    except OSError:
        return {}
    configured = general.get("bus_address")
    address = bus or (configured if isinstance(configured, str) else None)
    try:
        with anyio.fail_after(timeout_s):
            async with open_monitor(address) as monitor:
                ledger = OutputLedger(ledger_dir, bus_id=await bus_id(monitor))
                outcome = await clear_leftovers(monitor, ledger, clock)
    except (EmsError, OSError, TimeoutError) as err:
        _LOG.error("config refused, and the last run's outputs could not be cleared: %s", err)
        return {}
    for name, what in outcome.items():
        _LOG.warning("config refused; output %s of the last run: %s", name, what)
    return outcome
