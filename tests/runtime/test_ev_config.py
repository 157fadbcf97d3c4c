"""EV tables: windows, required keys and limits are checked with clear errors."""

from __future__ import annotations

import pytest

from venus_ems.runtime.config import ChargeWindow, InvalidConfigError, parse_config

BASE = "schema_version = 1\n"


def test_windows_cross_midnight():
    night = ChargeWindow(start="22:30", end="05:00")
    assert night.contains(23 * 60)
    assert night.contains(60)
    assert not night.contains(12 * 60)
    day = ChargeWindow(start="10:00", end="14:00", current_a=10, phases=1)
    assert day.contains(10 * 60)
    assert not day.contains(14 * 60)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[ev_charger]\nenabled = true\n", "needs host and password"),
        (
            '[ev_charger]\nhost = "wp"\nmin_current_a = 12\nmax_current_a = 10\n',
            "min_current_a",
        ),
        ('[[ev_charger.windows]]\nstart = "25:00"\nend = "01:00"\n', "not a time of day"),
        ('[[ev_charger.windows]]\nstart = "1:5"\nend = "01:00"\n', "HH:MM"),
        ("[ev_charger]\nmin_phase_switch_s = 5\n", "min_phase_switch_s"),
        ('[ev_charger]\nsafe_state = "on"\n', "safe_state"),
        ("[charge_current_reducer]\nlimit_a = 'max(soc'\n", "limit_a"),
    ],
)
def test_bad_ev_tables_are_refused(text, expected):
    with pytest.raises(InvalidConfigError, match=expected):
        parse_config(BASE + text)


def test_a_good_ev_config_parses():
    config, _ = parse_config(
        BASE
        + '[ess_control]\nenabled = true\n[ev_charger]\nenabled = true\nhost = "192.168.1.60"\n'
        'password = { env = "HOME" }\n[[ev_charger.windows]]\nstart = "01:00"\nend = "05:00"\n'
        "[no_battery_to_ev]\nenabled = true\nrelay = 1\n"
        "[charge_current_reducer]\nenabled = true\nlimit_a = 'min(max(100 - soc, 30), 80)'\n"
    )
    assert config.enabled_features() == [
        "ess_control",
        "ev_charger",
        "no_battery_to_ev",
        "charge_current_reducer",
    ]
    assert config.ev_charger.windows[0].contains(120)
