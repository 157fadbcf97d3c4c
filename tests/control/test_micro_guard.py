"""One owner of the grid target (D38): the rule, and check-config refusing a clash."""

from __future__ import annotations

import pytest

from venus_ems.control.micro_guard import GridOwners, conflict, ess_aim_w, separated
from venus_ems.runtime.config import parse_config
from venus_ems.runtime.config.report import InvalidConfigError

LOW_EDGE, MARGIN = 0.0, 50.0  # micro target 25 W - down band 25 W; ess_margin_w


@pytest.mark.parametrize(
    ("owners", "blocked"),
    [
        (GridOwners(), None),
        (GridOwners(hub4_mode=3, ess_setpoint_w=50.0), None),  # mode 3: the Multi passes through
        (GridOwners(hub4_mode=1, ess_setpoint_w=50.0), "Victron ESS (mode 1)"),
        (GridOwners(hub4_mode=2, ess_setpoint_w=-49.0), "Victron ESS (mode 2)"),
        (GridOwners(hub4_mode=1, ess_setpoint_w=-50.0), None),  # 50 W below our band
        (GridOwners(hub4_mode=1, ess_setpoint_w=None), None),
        (GridOwners(own_aim_w=25.0, own_band_w=25.0), "ess_control holds the grid up to 50 W"),
        (GridOwners(own_aim_w=-100.0, own_band_w=25.0), None),
    ],
)
def test_who_may_hold_the_grid_beside_the_inverters(owners, blocked):
    reason = conflict(owners, LOW_EDGE, MARGIN)
    if blocked is None:
        assert reason is None
    else:
        assert reason is not None
        assert blocked in reason.text
        assert "-50 W" in reason.text  # says how low the other must stay


def test_separation_and_ess_aims():
    assert separated(-75.0, 25.0, 0.0, 50.0)
    assert not separated(-74.0, 25.0, 0.0, 50.0)
    assert ess_aim_w("zero_export", 0.0, None, 25.0) == 25.0  # zero export keeps a band margin
    assert ess_aim_w("fixed", -300.0, None, 25.0) == -300.0
    assert ess_aim_w("export_cap", 0.0, 100.0, 25.0) == 0.0


MICRO = """
[micro_inverter_control]
enabled = true
host = "192.168.1.56"
[[micro_inverter_control.inverters]]
serial = "114182940773"
"""


def config(ess: str) -> str:
    return "schema_version = 1\n[ess_control]\nenabled = true\n" + ess + MICRO


def test_check_config_refuses_two_loops_on_one_grid_target():
    with pytest.raises(InvalidConfigError) as err:
        parse_config(config('mode = "grid_target"\ngrid_target = "zero_export"\n'))
    text = str(err.value)
    assert "would both hold the grid" in text
    assert "ess_control aims at 25 W +/- 25 W" in text
    assert "<= -50 W" in text


@pytest.mark.parametrize(
    "ess",
    [
        'mode = "grid_target"\ngrid_target = "fixed"\ntarget_w = -100.0\n',  # band well below
        'mode = "inverter_power"\ninverter_power_w = 500.0\n',  # holds no grid target
        'mode = "soc_target"\n',
    ],
)
def test_check_config_accepts_separated_or_other_modes(ess):
    cfg, _ = parse_config(config(ess))
    assert cfg.micro_inverter_control.enabled


def test_micro_config_needs_a_host_and_a_battery_fed_inverter():
    with pytest.raises(InvalidConfigError, match="needs host"):
        parse_config("schema_version = 1\n[micro_inverter_control]\nenabled = true\n")
    pv_only = MICRO + 'source = "pv"\n'
    with pytest.raises(InvalidConfigError, match='source = "battery"'):
        parse_config("schema_version = 1\n" + pv_only)
    twice = MICRO + '[[micro_inverter_control.inverters]]\nserial = "114182940773"\n'
    with pytest.raises(InvalidConfigError, match="listed twice"):
        parse_config("schema_version = 1\n" + twice)
    bad = MICRO.replace("114182940773", "1141-82940773")
    with pytest.raises(InvalidConfigError, match="serial"):
        parse_config("schema_version = 1\n" + bad)
