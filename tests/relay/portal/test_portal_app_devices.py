"""The account page's "Mobile devices" in chromium against the REAL relay app, under its CSP and
with the keyboard (USER-9, manual 5.2.6): two apps log in over the API with their device; the
subscriber sees both, removes one after a Yes/No question in its row, and that app's token is
refused at once (401/50201) while the other keeps working.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.relay.conftest import OWNER, PASSWORD
from tests.relay.portal.conftest import portal_relay


@pytest.fixture
async def relay(tmp_path: Path) -> AsyncIterator[str]:
    """The real app with one subscriber."""
    async with portal_relay(tmp_path / "relay") as running:
        yield running.url


async def _app_login(http: aiohttp.ClientSession, relay: str, name: str, platform: str) -> str:
    """An app's login with its device; returns its bearer token."""
    body = {"email": OWNER, "password": PASSWORD, "device": {"name": name, "platform": platform}}
    async with http.post(f"{relay}/api/v1/auth/login", json=body) as resp:
        assert resp.status == 200, await resp.text()
        return str((await resp.json())["token"])


async def _me_status(http: aiohttp.ClientSession, relay: str, token: str) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    async with http.get(f"{relay}/api/v1/me", headers=headers) as resp:
        return resp.status, (await resp.json()).get("error", {}).get("code")


# spec: USER-9
async def test_remove_a_mobile_device_from_the_account_page(strict_page: Any, relay: str) -> None:
    page = strict_page
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        pixel = await _app_login(http, relay, "Pixel 8", "android")
        iphone = await _app_login(http, relay, "Anna's iPhone", "ios")
        await page.goto(f"{relay}/")
        await page.fill("#email", OWNER)
        await page.fill("#password", PASSWORD)
        await page.press("#password", "Enter")
        await page.wait_for_selector("#topbar:not([hidden])")
        await page.goto(f"{relay}/#/account")
        await page.wait_for_selector("#app-devices-table")
        rows = page.locator("#app-devices-table tbody tr")
        assert await rows.count() == 2
        assert "Android" in await rows.filter(has_text="Pixel 8").inner_text()
        assert "iOS" in await rows.filter(has_text="Anna's iPhone").inner_text()

        await page.get_by_role("button", name="Remove Pixel 8").focus()
        await page.keyboard.press("Enter")
        await page.wait_for_selector("button:text-is('Yes'):focus")
        await page.keyboard.press("Tab")
        await page.keyboard.press("Enter")  # No: nothing removed, focus back on Remove
        await page.wait_for_selector("button[aria-label='Remove Pixel 8']:focus")
        assert await _me_status(http, relay, pixel) == (200, None)

        await page.keyboard.press("Enter")
        await page.wait_for_selector("button:text-is('Yes'):focus")
        await page.keyboard.press("Enter")
        await page.wait_for_selector("#app-devices .form-status:text('Pixel 8 was removed.')")
        # the list is re-read after the status shows: wait for the row to go, not a moment
        await rows.filter(has_text="Pixel 8").wait_for(state="detached")
        assert await rows.count() == 1
        assert await _me_status(http, relay, pixel) == (401, 50201)
        assert await _me_status(http, relay, iphone) == (200, None)
