"""The dashboard in a real browser (Debian's headless chromium) against the simulated GX.

One browser serves the whole module; each test gets its own simulated GX, daemon and dashboard,
with simulated time running (1 s per 50 ms) while the page is open. Set VENUS_EMS_SCREENSHOTS to
a folder (docs/) to refresh the screenshots of the main views.
"""

from __future__ import annotations

import os
import re

import anyio
import pytest
from browser import Browser, start_driver
from web_support import PASSWORD, TARGET, web_site

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def driver():
    yield from start_driver()


@pytest.fixture
async def browser(driver):
    b = Browser(driver)
    yield b
    await b.call(driver.delete_all_cookies)


def watts(text: str) -> float:
    """``"1234 W"`` / ``"12.3 kW"`` -> W."""
    m = re.fullmatch(r"(-?[\d.]+) (k?)W", text.strip())
    assert m, text
    return float(m[1]) * (1000 if m[2] else 1)


async def test_the_page_shows_the_simulated_site_and_follows_it_live(bus_address, browser):
    async with web_site(bus_address) as site, anyio.create_task_group() as tg:
        if os.environ.get("VENUS_EMS_SCREENSHOTS"):  # charts with some history for the docs
            await site.run(2400, real_s=0.002)
        tg.start_soon(site.tick_forever)
        await browser.get(site.url + "/")
        await browser.wait_text("#link", lambda t: t == "live")
        # the battery's SoC as the simulated GX has it, and then a newer one
        first = await browser.wait_text("#soc", lambda t: t.endswith("%"))
        shown = float(first.split()[0])
        assert shown == pytest.approx(site.gx.site.battery.soc, abs=0.5)
        await browser.wait_text("#soc", lambda t: t != first, timeout=20)
        updates = int(await browser.js("return document.body.dataset.updates"))
        await browser.wait(
            lambda: browser.js(
                "return Number(document.body.dataset.updates) > arguments[0] + 3", updates
            )
        )
        grid = watts(await browser.text("#grid-w") or "")
        assert abs(grid) < 20_000
        assert await browser.text("#setpoint-owner") == "ess_control"
        assert "ess.grid_setpoint" in (await browser.text("#outputs") or "")
        assert "zero export" in (
            await browser.text('.feature[data-key="ess_control"] .reasons') or ""
        )
        devices = await browser.js(
            "return [...document.querySelectorAll('.device')].map(d => d.dataset.service)"
        )
        assert any(d.startswith("com.victronenergy.battery") for d in devices)
        # the charts draw the history as it grows
        await browser.wait(
            lambda: browser.js(
                "return document.querySelectorAll('#chart-power polyline').length >= 3"
            )
        )
        await browser.screenshot("dashboard.png", 1280, 1500)
        await browser.screenshot("dashboard-phone.png", 390, 2200)
        tg.cancel_scope.cancel()


async def test_a_stopped_feature_shows_as_stopped(bus_address, browser):
    async with web_site(bus_address) as site, anyio.create_task_group() as tg:
        tg.start_soon(site.tick_forever)
        await browser.get(site.url + "/")
        state = '.feature[data-key="one_shot"] .state'
        assert await browser.wait_text(state, lambda t: t != "") == "stopped"
        assert await browser.text('.feature[data-key="one_shot"] .decision') == "done"
        assert await browser.text('.feature[data-key="ess_control"] .state') == "running"
        tg.cancel_scope.cancel()


async def test_a_tunable_changed_on_the_page_reaches_localsettings(bus_address, browser):
    async with web_site(bus_address) as site, anyio.create_task_group() as tg:
        tg.start_soon(site.tick_forever)
        await browser.get(site.url + "/")
        row = f'.tunable[data-path="{TARGET}"]'
        await browser.wait_text(row + " label", lambda t: t == "TargetW")
        await browser.type_into(row + " input", "120")
        await browser.click(row + " button")
        assert (
            await browser.wait_text(row + " .status", lambda t: t not in ("", "saving…")) == "saved"
        )
        assert site.setting(TARGET) == 120.0
        ess = site.gx.site.ess

        async def aims_at_120() -> bool:
            w = ess.overrides.setpoint_w
            return w is not None and abs(w - 120.0) <= 100.0  # the aim, or a trim of it

        await browser.wait(aims_at_120)
        # a value the feature refuses is put back, and the page says why
        await browser.type_into(row + " input", "-300")
        await browser.click(row + " button")
        status = await browser.wait_text(
            row + " .status", lambda t: t not in ("", "saving…", "saved")
        )
        assert "zero_export needs a target >= 0" in status
        assert site.setting(TARGET) == 120.0
        await browser.wait(
            lambda: browser.js(
                "return document.querySelector(arguments[0]).value === '120'", row + " input"
            )
        )
        await browser.element_screenshot('section[aria-label="Settings"]', "dashboard-settings.png")
        tg.cancel_scope.cancel()


async def test_writes_from_the_page_need_its_csrf_token(bus_address, browser):
    async with web_site(bus_address) as site, anyio.create_task_group() as tg:
        tg.start_soon(site.tick_forever)
        await browser.get(site.url + "/")
        await browser.wait_text("#link", lambda t: t == "live")
        script = """
            const done = arguments[arguments.length - 1];
            const body = JSON.stringify({path: arguments[0], value: 77});
            const post = (headers) => fetch('/api/settings', {method: 'POST', body,
                headers: {'Content-Type': 'application/json', ...headers}}).then(r => r.status);
            Promise.all([post({}), post({'X-CSRF-Token': 'forged'})]).then(done);
        """
        statuses = await browser.call(browser.driver.execute_async_script, script, TARGET)
        assert statuses == [403, 403]  # the session cookie alone does not allow a write
        assert site.setting(TARGET) == 0.0
        tg.cancel_scope.cancel()


async def test_a_wrong_password_is_refused_and_the_right_one_opens_the_dashboard(
    bus_address, browser
):
    async with web_site(bus_address, password=True) as site, anyio.create_task_group() as tg:
        tg.start_soon(site.tick_forever)
        await browser.get(site.url + "/")
        await browser.wait(lambda: browser.js("return location.pathname === '/login'"))
        await browser.type_into("#password", "not it")
        await browser.click("button[type=submit]")
        assert await browser.wait_text("#error", lambda t: t != "") == "Wrong password."
        assert await browser.js("return location.pathname") == "/login"
        assert await browser.js("return document.cookie") == ""  # HttpOnly: never visible anyway
        await browser.screenshot("dashboard-login.png", 420, 520)
        await browser.type_into("#password", PASSWORD)
        await browser.click("button[type=submit]")
        await browser.wait_text("#link", lambda t: t == "live")
        assert not await browser.js("return document.getElementById('logout').hidden")
        await browser.click("#logout")
        await browser.wait(lambda: browser.js("return location.pathname === '/login'"))
        tg.cancel_scope.cancel()
