"""What every Shelly driver offers, whatever its generation: meter, power meter, relays."""

from __future__ import annotations

from abc import ABC, abstractmethod

import aiohttp

from ...clock import Clock
from ...errors import ConfigError
from ..base import DeviceIdentity, MeterReading, PowerReading
from .fields import ShellyInfo

__all__ = ["ShellyDevice"]


class ShellyDevice(ABC):
    """A detected Shelly: implements ``PhaseMeter``, ``PowerMeter`` and ``Switch``.

    Capabilities depend on the model; asking for one it lacks raises ConfigError (the
    configuration points at the wrong device). Device failures raise DeviceError subclasses.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        info: ShellyInfo,
        *,
        clock: Clock,
        timeout_s: float,
    ) -> None:
        """Talk to ``base_url`` through the caller's ``session``, each call within ``timeout_s``."""
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.info = info
        self.clock = clock
        self.timeout_s = timeout_s

    @property
    def identity(self) -> DeviceIdentity:
        """Product name, model, serial (MAC), firmware and generation."""
        return self.info.identity

    @property
    def channel_count(self) -> int:
        """CT channels of an energy meter (0 if the device is not one)."""
        return 0

    @property
    def power_channels(self) -> tuple[int, ...]:
        """Channels with a power meter on a relay or PM (plug, 1PM, PM Mini)."""
        return ()

    @property
    def outputs(self) -> tuple[int, ...]:
        """Relay numbers."""
        return ()

    def _need_meter(self) -> None:
        if self.channel_count == 0:
            raise ConfigError(
                f"{self.info.product_name} at {self.base_url} is not an energy meter "
                "(expected a Shelly EM, 3EM, Pro 3EM, Pro EM or EM gen3)"
            )

    def _need_power(self, channel: int) -> None:
        if channel not in self.power_channels:
            have = ", ".join(map(str, self.power_channels)) or "none"
            raise ConfigError(
                f"{self.info.product_name} at {self.base_url} has no power meter on channel "
                f"{channel} (metered channels: {have})"
            )

    def _need_output(self, channel: int) -> None:
        if channel not in self.outputs:
            have = ", ".join(map(str, self.outputs)) or "none"
            raise ConfigError(
                f"{self.info.product_name} at {self.base_url} has no relay {channel} "
                f"(relays: {have})"
            )

    @abstractmethod
    async def read_phases(self) -> MeterReading:
        """All CT channels now (W + = forward); ConfigError if not a meter, DeviceError."""

    @abstractmethod
    async def read_power(self, channel: int = 0) -> PowerReading:
        """One metered output now; ConfigError if it has no meter there, DeviceError."""

    @abstractmethod
    async def set_output(self, channel: int, on: bool) -> None:
        """Switch relay ``channel``; ConfigError if there is none, DeviceError if unconfirmed."""

    @abstractmethod
    async def read_output(self, channel: int = 0) -> bool:
        """Whether relay ``channel`` is on; ConfigError if there is none, DeviceError."""
