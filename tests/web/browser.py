"""Debian's chromium, headless, driven by selenium through /usr/bin/chromedriver (async wrapper).

Selenium blocks, and the server under test runs in the test's event loop, so every browser call
runs in a worker thread. Waiting polls every 50 ms up to a timeout (no fixed sleeps).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
except ImportError:  # the dev extra installs it; without it the browser tests skip (fail in CI)
    webdriver = None

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)


def start_driver() -> Iterator[Any]:
    """One headless chromium with an empty profile; skipped (failed in CI) when not installed."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(p)]
    if webdriver is None:
        missing.append("selenium (pip install -e '.[dev]')")
    if missing:
        message = f"browser tests need {', '.join(missing)} (./dev setup installs them)"
        if os.environ.get("VENUS_EMS_CI"):
            pytest.fail(message)
        pytest.skip(message)
    profile = tempfile.mkdtemp(prefix="venus-ems-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument("--window-size=1280,1400")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


class Browser:
    """Async helpers over a selenium driver."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await anyio.to_thread.run_sync(fn, *args)

    async def get(self, url: str) -> None:
        await self.call(self.driver.get, url)

    async def js(self, script: str, *args: Any) -> Any:
        return await self.call(self.driver.execute_script, script, *args)

    async def text(self, css: str) -> str | None:
        """Text of the first element matching ``css`` (None if there is none)."""
        return await self.js(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;", css
        )

    async def wait(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Poll an async ``predicate`` until it returns something truthy."""
        with anyio.fail_after(timeout):
            while True:
                value = await predicate()
                if value:
                    return value
                await anyio.sleep(0.05)

    async def wait_text(self, css: str, check: Callable[[str], bool], timeout: float = 10.0) -> str:
        async def probe() -> str | None:
            t = await self.text(css)
            return t if t is not None and check(t) else None

        return await self.wait(probe, timeout)

    async def type_into(self, css: str, text: str) -> None:
        def do() -> None:
            e = self.driver.find_element(By.CSS_SELECTOR, css)
            e.clear()
            e.send_keys(text)

        await self.call(do)

    async def click(self, css: str) -> None:
        await self.call(lambda: self.driver.find_element(By.CSS_SELECTOR, css).click())

    async def element_screenshot(self, css: str, name: str) -> None:
        """Save one element as a PNG into $VENUS_EMS_SCREENSHOTS, if set."""
        folder = os.environ.get("VENUS_EMS_SCREENSHOTS")
        if folder:
            element = await self.call(self.driver.find_element, By.CSS_SELECTOR, css)
            await self.call(element.screenshot, str(Path(folder) / name))

    async def screenshot(self, name: str, width: int, height: int) -> None:
        """Save a PNG into $VENUS_EMS_SCREENSHOTS (docs/ when refreshing them), if set."""
        folder = os.environ.get("VENUS_EMS_SCREENSHOTS")
        if not folder:
            return
        await self.call(self.driver.set_window_size, width, height)
        try:
            await self.call(  # two frames: the layout after the resize is painted
                self.driver.execute_async_script,
                "requestAnimationFrame(() => requestAnimationFrame(arguments[0]))",
            )
            await self.call(self.driver.save_screenshot, str(Path(folder) / name))
        finally:
            await self.call(self.driver.set_window_size, 1280, 1400)
