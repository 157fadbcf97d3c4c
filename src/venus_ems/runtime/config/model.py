"""The whole configuration: one frozen model per TOML table, features disabled by default."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import get_args, get_origin

from pydantic import BaseModel, Field, model_validator

from ...control.micro_guard import ess_aim_w, separated
from .base import FeatureTable, Items, StrictModel
from .bridges import MqttExporterConfig, TimeToGoConfig
from .control import EssControlConfig, OutputLimiterConfig
from .ev import ChargeCurrentReducerConfig, EvChargerConfig, NoBatteryToEvConfig
from .general import GeneralConfig, MqttConfig
from .guard import SettingsGuardConfig
from .meters import GridMeterConfig, PvMeterConfig, TemperatureConfig
from .micro import MicroInverterControlConfig
from .secrets import Secret
from .surplus import SurplusConfig
from .water_heater import WaterHeaterConfig
from .web import WebConfig

__all__ = ["SCHEMA_VERSION", "Config"]

SCHEMA_VERSION = 1
"""The config schema this venus-ems reads; older files are migrated in memory."""


class Config(StrictModel):
    """A validated venus-ems configuration (immutable)."""

    schema_version: int = Field(ge=SCHEMA_VERSION, le=SCHEMA_VERSION)
    general: GeneralConfig = GeneralConfig()
    mqtt: MqttConfig = MqttConfig()
    grid_meter: Items[GridMeterConfig] = ()
    pv_meter: Items[PvMeterConfig] = ()
    temperature: Items[TemperatureConfig] = ()
    mqtt_exporter: MqttExporterConfig = MqttExporterConfig()
    time_to_go: TimeToGoConfig = TimeToGoConfig()
    ess_control: EssControlConfig = EssControlConfig()
    output_limiter: OutputLimiterConfig = OutputLimiterConfig()
    micro_inverter_control: MicroInverterControlConfig = MicroInverterControlConfig()
    ev_charger: EvChargerConfig = EvChargerConfig()
    no_battery_to_ev: NoBatteryToEvConfig = NoBatteryToEvConfig()
    charge_current_reducer: ChargeCurrentReducerConfig = ChargeCurrentReducerConfig()
    settings_guard: SettingsGuardConfig = SettingsGuardConfig()
    surplus: SurplusConfig = SurplusConfig()
    water_heater: WaterHeaterConfig = WaterHeaterConfig()
    web: WebConfig = WebConfig()

    @classmethod
    def feature_tables(cls) -> dict[str, tuple[type[FeatureTable], bool]]:
        """Table name -> (its config model, True for ``[[arrays]]``), in declaration order."""
        out: dict[str, tuple[type[FeatureTable], bool]] = {}
        for name, info in cls.model_fields.items():
            kind = info.annotation
            is_list = get_origin(kind) is tuple
            model = get_args(kind)[0] if is_list else kind
            if isinstance(model, type) and issubclass(model, FeatureTable):
                out[name] = (model, is_list)
        return out

    def enabled_items(self) -> list[tuple[str, FeatureTable]]:
        """(name, table config) of each enabled feature, e.g. ``grid_meter.house``, in order."""
        out: list[tuple[str, FeatureTable]] = []
        for table, (_, is_list) in self.feature_tables().items():
            value = getattr(self, table)
            if is_list:
                out.extend((f"{table}.{item.name}", item) for item in value if item.enabled)
            elif value.enabled:
                out.append((table, value))
        return out

    def enabled_features(self) -> list[str]:
        """Names of the enabled features, e.g. ``grid_meter.house``, ``ess_control``."""
        return [name for name, _ in self.enabled_items()]

    def secret_values(self) -> frozenset[str]:
        """Every non-empty secret in this config (for the log redaction filter)."""
        return frozenset(s.get_secret_value() for s in _secrets(self) if s.get_secret_value())

    @model_validator(mode="after")
    def _across_tables(self) -> Config:
        """Names are unique per table; MQTT-based features need ``[mqtt] enabled``."""
        for table, items in (
            ("grid_meter", self.grid_meter),
            ("pv_meter", self.pv_meter),
            ("temperature", self.temperature),
        ):
            dupes = sorted(n for n, c in Counter(i.name for i in items).items() if c > 1)
            if dupes:
                raise ValueError(f"[[{table}]] name {dupes[0]!r} is used more than once")
        needs_mqtt = [f"temperature.{t.name}" for t in self.temperature if t.enabled]
        if self.mqtt_exporter.enabled:
            needs_mqtt.append("mqtt_exporter")
        if self.surplus.enabled:
            needs_mqtt.extend(
                f"surplus.consumer.{c.name}" for c in self.surplus.consumer if c.driver == "mqtt"
            )
        if needs_mqtt and not self.mqtt.enabled:
            raise ValueError(
                f"{', '.join(needs_mqtt)} enabled but [mqtt] enabled = false "
                "(these features use the MQTT broker)"
            )
        self._one_grid_owner()
        shifters = [
            name
            for name, table in (
                ("no_battery_to_ev", self.no_battery_to_ev),
                ("charge_current_reducer", self.charge_current_reducer),
            )
            if table.enabled
        ]
        if shifters and not self.ess_control.enabled:
            raise ValueError(
                f"[{'], ['.join(shifters)}] move the grid target of ESS control, the one writer "
                "of the grid setpoint: enable [ess_control] (e.g. mode = grid_target)"
            )
        return self

    def _one_grid_owner(self) -> None:
        """[micro_inverter_control] beside [ess_control] holding the grid: bands apart (D38)."""
        micro, ess = self.micro_inverter_control, self.ess_control
        if not (micro.enabled and ess.enabled and ess.mode == "grid_target"):
            return
        # The checked band must be the band in force: no widening by the low-power model.
        object.__setattr__(ess, "multi_error_w", 0.0)
        object.__setattr__(ess, "meter_noise_w", 0.0)
        cap = {"export_cap": ess.export_cap_w, "import_cap": ess.import_cap_w}.get(ess.grid_target)
        aim = ess_aim_w(ess.grid_target, ess.target_w, cap, ess.dead_band_w)
        if not separated(aim, ess.dead_band_w, micro.low_edge_w, micro.ess_margin_w):
            raise ValueError(
                "[micro_inverter_control] and [ess_control] (mode = grid_target) would both hold "
                f"the grid: ess_control aims at {aim:g} W +/- {ess.dead_band_w:g} W, the "
                f"inverters go down below {micro.low_edge_w:g} W; the ess_control band must end "
                f"ess_margin_w = {micro.ess_margin_w:g} W below that (aim + dead_band_w <= "
                f"{micro.low_edge_w - micro.ess_margin_w:g} W), or use another ess_control mode"
            )


def _secrets(model: BaseModel) -> Iterator[Secret]:
    """Every Secret inside ``model``, depth first."""
    for name in type(model).model_fields:
        yield from _walk(getattr(model, name))


def _walk(value: object) -> Iterator[Secret]:
    """Secrets inside one field value."""
    if isinstance(value, Secret):
        yield value
    elif isinstance(value, BaseModel):
        yield from _secrets(value)
    elif isinstance(value, tuple):
        for item in value:
            yield from _walk(item)
