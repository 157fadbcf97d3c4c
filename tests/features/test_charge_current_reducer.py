"""[charge_current_reducer] with [ess_control] on the simulated GX (sunny noon, stepped clock):
the battery's charge current comes down to the formula's limit by exporting; bad formulas are
refused at check-config; stale readings release the request."""

from __future__ import annotations

import pytest
from test_ess_control_support import running

from venus_ems.features.charge_current_reducer import ChargeCurrentReducer
from venus_ems.features.ess_control import EssControl
from venus_ems.runtime.config import (
    ChargeCurrentReducerConfig,
    EssControlConfig,
    InvalidConfigError,
    parse_config,
)

pytestmark = pytest.mark.anyio


async def test_charge_current_is_kept_at_the_limit(bus_address):
    reducer = ChargeCurrentReducer(
        ChargeCurrentReducerConfig(enabled=True, limit_a="5", interval_s=2.0, gain=0.3)
    )
    features = [("ess_control", EssControl(EssControlConfig(enabled=True))), ("ccr", reducer)]
    settings = {"/Settings/CGwacs/OvervoltageFeedIn": 1}
    async with running(bus_address, features, settings=settings, start_s=9.5 * 3600) as site:
        bat = site.gx.site.battery
        await site.run(5)
        st = site.gx.site.state()
        before = st.battery.current_a
        assert before > 8  # the battery takes the PV
        await site.until(lambda: reducer.shift_w < -500, 60)
        await site.run(120)
        after = [site.gx.site.state().battery.current_a]
        for _ in range(10):
            await site.run(2)
            after.append(site.gx.site.state().battery.current_a)
        assert max(after) <= 5 + 4, (before, after)
        assert sum(site.gx.site.grid_w) < -500  # the excess goes to the grid
        assert bat is not None


def test_a_bad_formula_is_refused_at_check_config():
    for formula in ("soc - 200", "__import__('os').system('x')", "open('/etc/passwd')"):
        text = (
            "schema_version = 1\n[ess_control]\nenabled = true\n"
            f'[charge_current_reducer]\nenabled = true\nlimit_a = "{formula}"\n'
        )
        with pytest.raises(InvalidConfigError) as err:
            parse_config(text.replace('"', "'") if "'" not in formula else text)
        assert "limit_a" in str(err.value)


def test_shifting_features_need_ess_control():
    with pytest.raises(InvalidConfigError, match="enable \\[ess_control\\]"):
        parse_config("schema_version = 1\n[no_battery_to_ev]\nenabled = true\n")
