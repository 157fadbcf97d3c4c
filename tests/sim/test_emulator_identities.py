"""The emulated Shellys say what real ones say, and never borrow the driver's model table.

If an emulator took its identities from the driver, a wrong code in the driver (``EM`` for the
EM Gen3, as once here) would be copied into the emulator and every test would pass while a
real GX showed the wrong product name. So: identities come from captures
(``sim/devices/shelly_identities.py``), no emulator module imports the driver, and the driver
is tested against those identities.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import venus_ems.sim as sim_package
from venus_ems.devices.base import Connection
from venus_ems.devices.registry import open_device
from venus_ems.devices.shelly import fields as driver_fields
from venus_ems.sim.devices import (
    MemorySwitch,
    StaticMeter,
    em_gen3,
    mini_1pm_gen3,
    plus_1pm,
    pm_mini_gen3,
    pro_3em,
    pro_em,
    s3em_63_gen3,
)
from venus_ems.sim.devices.shelly_identities import IDENTITIES

pytestmark = pytest.mark.anyio
SIM = Path(sim_package.__file__).parent

# Facts from real devices (see the captures named in shelly_identities.py and issue 9):
# factory, model code, app, generation, device-id prefix, the name the GX must show
MODELS = {
    "pro_3em": (lambda c: pro_3em(StaticMeter(3, clock=c), clock=c),
                "SPEM-003CEBEU", "Pro3EM", 2, "shellypro3em", "Shelly Pro 3EM"),
    "pro_em": (lambda c: pro_em(StaticMeter(2, clock=c), clock=c),
               "SPEM-002CEBEU50", "ProEM", 2, "shellyproem50", "Shelly Pro EM"),
    "em_gen3": (lambda c: em_gen3(StaticMeter(2, clock=c), clock=c),
                "S3EM-002CXCEU", "EMG3", 3, "shellyemg3", "Shelly EM Gen3"),
    "s3em_63_gen3": (lambda c: s3em_63_gen3(StaticMeter(3, clock=c), clock=c),
                     "S3EM-003CXCEU63", "S3EMG3", 3, "shelly3em63g3", "Shelly 3EM-63 Gen3"),
    "plus_1pm": (lambda c: plus_1pm(MemorySwitch(clock=c), clock=c),
                 "SNSW-001P16EU", "Plus1PM", 2, "shellyplus1pm", "Shelly Plus 1PM"),
    "mini_1pm_gen3": (lambda c: mini_1pm_gen3(MemorySwitch(clock=c), clock=c),
                      "S3SW-001P8EU", "Mini1PMG3", 3, "shelly1pmminig3", "Shelly 1PM Mini Gen3"),
    "pm_mini_gen3": (lambda c: pm_mini_gen3(MemorySwitch(clock=c), clock=c),
                     "S3PM-001PCEU16", "MiniPMG3", 3, "shellypmminig3", "Shelly PM Mini Gen3"),
}  # fmt: skip


async def shelly_info(http, emu) -> dict:
    async with http.get(f"{emu.url}/shelly") as resp:
        assert resp.status == 200
        return await resp.json()


@pytest.mark.parametrize("model", list(MODELS))
async def test_identities_are_those_of_real_devices(http, emu_clock, model):
    make, code, app, gen, prefix, _ = MODELS[model]
    async with make(emu_clock) as emu:
        info = await shelly_info(http, emu)
    assert (info["model"], info["app"], info["gen"]) == (code, app, gen)
    assert info["id"] == f"{prefix}-{info['mac'].lower()}"
    assert len(IDENTITIES) == len(MODELS)


async def test_the_pro_3em_is_the_captured_one(http, emu_clock, vector):
    captured = vector("shelly-gen2-pro3em-shelly-info.json")
    async with pro_3em(StaticMeter(3, clock=emu_clock), clock=emu_clock) as emu:
        info = await shelly_info(http, emu)
    for key in ("model", "gen", "fw_id", "ver", "app", "profile", "auth_en"):
        assert info[key] == captured[key], key
    assert info["id"].split("-")[0] == captured["id"].split("-")[0]


@pytest.mark.parametrize("model", list(MODELS))
async def test_the_driver_names_every_emulated_model(http, emu_clock, model):
    make, _, _, _, _, product = MODELS[model]
    async with make(emu_clock) as emu:
        host = emu.url.removeprefix("http://")
        device = await open_device("shelly", http, Connection(host), clock=emu_clock)
    assert device.identity.product_name == product


def emulator_modules() -> list[Path]:
    return sorted((SIM / "devices").rglob("*.py"))


@pytest.mark.parametrize("path", emulator_modules(), ids=lambda p: p.name)
def test_no_emulator_module_imports_a_driver(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            # from ...devices (three dots: venus_ems.devices) or venus_ems.devices.*
            module = node.module or ""
            assert not (node.level == 3 and module.split(".")[0] == "devices"), path.name
            assert not module.startswith("venus_ems.devices"), path.name
        elif isinstance(node, ast.Import):
            assert not any(a.name.startswith("venus_ems.devices") for a in node.names)


def test_no_emulator_object_is_a_driver_table():
    tables = [
        value
        for name, value in vars(driver_fields).items()
        if isinstance(value, (dict, set, frozenset)) and not name.startswith("__")
    ]
    assert driver_fields._GEN2_NAMES in tables  # the check looks at the real tables
    package = importlib.import_module("venus_ems.sim.devices")
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"venus_ems.sim.devices.{info.name}")
        for name, value in vars(module).items():
            assert not any(value is table for table in tables), f"{info.name}.{name}"
