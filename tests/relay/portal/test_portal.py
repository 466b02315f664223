"""The portal's pages in chromium under the relay's CSP, against the REAL relay.

Everything behind the browser is real (``live_site.py``): the relay server (HTTPS and QUIC on
127.0.0.1), agents enrolled over HTTPS and connected over QUIC, their request handler serving
live fMP4 and JPEG snapshots from the agent's media pipeline pulling the GStreamer RTSP test
camera. The relay's store runs on a FakeClock, so login locks and session timeouts are passed
without sleeping. Waits use selectors, Playwright's request/response events, or poll
``page.evaluate`` (``wait_for_function`` would need ``eval``, which the CSP forbids).
"""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import av
import pytest

from tests.peers.gst_rtsp import RtspServer
from tests.relay.conftest import OWNER, PASSWORD
from tests.relay.portal.live_site import (
    HEIGHT,
    MOUNT,
    WIDTH,
    CameraSpec,
    LiveRelay,
    Site,
    live_relay,
    poll,
    rtsp_camera,
)

pytestmark = pytest.mark.timeout(60)

LOGIN = "/api/v1/auth/login"
LIVE_WAIT_MS = 15_000
SHOP = [
    CameraSpec("Front door"),
    CameraSpec("Back yard", "communication_error"),
    CameraSpec("Till", "authentication_error"),
]


@pytest.fixture(scope="module")
def camera() -> Iterator[RtspServer]:
    """One RTSP test camera for the module (each site pulls it once)."""
    with rtsp_camera() as server:
        yield server


@pytest.fixture
async def relay(tmp_path: Path, camera: RtspServer) -> AsyncIterator[LiveRelay]:
    """The real relay server with the subscriber ``OWNER``; tests add their sites."""
    async with live_relay(tmp_path, camera.url(MOUNT)) as relay:
        yield relay


async def _open(page: Any, relay: LiveRelay) -> None:
    await page.goto(relay.url + "/")
    await page.locator("#login-form").wait_for()


async def _login(page: Any, email: str = OWNER, password: str = PASSWORD) -> Any:
    """Submit the login form; the relay's response (its JSON body is read by the caller)."""
    await page.fill("#email", email)
    await page.fill("#password", password)
    async with page.expect_response(lambda r: r.url.endswith(LOGIN)) as answer:
        await page.click("#login-submit")
    return await answer.value


async def _error_code(response: Any) -> int:
    body = await response.json()
    return int(body["error"]["code"])


def _tile(page: Any, site: Site, name: str) -> Any:
    return page.locator(f'.camera-tile[data-camera-id="{site.cameras[name]}"]')


async def _playing(locator: Any) -> None:
    """Until the player in ``locator`` reports real frames playing."""
    await locator.locator(".player-status[data-state='playing']").wait_for(
        state="attached", timeout=LIVE_WAIT_MS
    )


# spec: USER-3, LIVE-1, DEV-1
async def test_login_errors_then_sites_with_live_and_offline_tiles(
    relay_page: Any, relay: LiveRelay
) -> None:
    """Wrong password, then the relay's lockout (even the right password is refused until the
    lock runs out) show message and code; then tiles per site, live or offline."""
    from playwright.async_api import expect

    page = relay_page
    shop = await relay.add_site("Shop", SHOP)
    depot = await relay.add_site("Depot", [CameraSpec("Gate")])
    await relay.leave(depot)  # a site that was connected once: its camera is known, offline
    await _open(page, relay)

    limit = relay.settings.login_max_failures
    for _ in range(limit - 1):
        assert await _error_code(await _login(page, password="Wrong-pass1!")) == 400224
        await expect(page.locator("#login-error")).to_contain_text("(error 400224)")
    assert await _error_code(await _login(page, password="Wrong-pass1!")) == 400225
    await expect(page.locator("#login-error")).to_contain_text("(error 400225)")
    assert await _error_code(await _login(page)) == 400225  # locked: password not looked at
    relay.clock.advance(relay.settings.login_lockout_base_s + 1)

    assert (await _login(page)).status == 200
    await _playing(_tile(page, shop, "Front door"))
    await expect(page.locator("#account-name")).to_have_text("Owner")
    await expect(page.locator("#mode-banner")).to_be_hidden()
    await expect(page.locator(".camera-tile video")).to_have_count(1)
    # the agent cannot reach the camera; the site itself is gone (the relay reports its
    # cameras as communication errors, schemas.DeviceOut): both are offline tiles, no video
    for site, name in ((shop, "Back yard"), (depot, "Gate")):
        tile = _tile(page, site, name)
        await expect(tile).to_have_class(re.compile(r"\boffline\b"))
        await expect(tile.locator(".tile-placeholder")).to_have_text("Offline")
        await expect(tile.locator(".badge")).to_have_text("Communication error")
        await expect(tile.locator("video")).to_have_count(0)
    # a camera refusing the agent's credentials says so, as the recorder screen does
    await expect(_tile(page, shop, "Till").locator(".badge")).to_have_text("Authentication error")
    await expect(_tile(page, shop, "Till").locator("video")).to_have_count(0)
    for site, state in ((depot, "Offline"), (shop, "Online")):
        head = page.locator(f'.site[data-device-id="{site.device_id}"] .site-head')
        await expect(head.locator(".badge")).to_have_text(state)


async def _stills_loaded(page: Any) -> list[list[int]]:
    """Natural size of every tile still that finished loading."""
    sizes: list[list[int]] = await page.evaluate(
        """() => [...document.querySelectorAll('.camera-tile img')]
             .filter((img) => img.complete && img.naturalWidth > 0)
             .map((img) => [img.naturalWidth, img.naturalHeight])"""
    )
    return sizes


# spec: LIVE-1, LIVE-2
async def test_more_than_13_tiles_is_jpeg_mode_until_search_narrows_it(
    relay_page: Any, relay: LiveRelay
) -> None:
    """14 cameras on screen: the camera's stills and a JPEG-mode notice; searching to 5 brings
    live video; clearing the search goes back to stills."""
    from playwright.async_api import expect

    page = relay_page
    mall = await relay.add_site("Mall", [CameraSpec(f"Cam {i:02}") for i in range(1, 15)])
    await _open(page, relay)
    await _login(page)
    await expect(page.locator("#mode-banner")).to_contain_text("JPEG mode")
    await expect(page.locator(".camera-tile img")).to_have_count(14)
    await expect(page.locator(".camera-tile video")).to_have_count(0)
    await poll(lambda: _loaded_count(page, 14), 15, "14 stills from the camera")
    assert await _stills_loaded(page) == [[WIDTH, HEIGHT]] * 14

    await page.fill("#camera-search", "cam 1")  # Cam 10 … Cam 14
    await expect(page.locator(".camera-tile:visible")).to_have_count(5)
    await expect(page.locator("#mode-banner")).to_be_hidden()
    await expect(page.locator(".camera-tile video")).to_have_count(5)
    await _playing(_tile(page, mall, "Cam 14"))

    await page.fill("#camera-search", "")
    await expect(page.locator(".camera-tile video")).to_have_count(0)
    await expect(page.locator("#mode-banner")).to_be_visible()


async def _loaded_count(page: Any, count: int) -> bool:
    return len(await _stills_loaded(page)) == count


def _jpeg_size(data: bytes) -> tuple[int, int]:
    """Decode a JPEG with PyAV: (width, height) of its one picture."""
    with av.open(io.BytesIO(data), "r", format="image2pipe") as container:
        frame = next(container.decode(video=0))
        return frame.width, frame.height


# spec: LIVE-4, PLAY-5, USER-3
async def test_single_view_snapshot_back_and_logout(relay_page: Any, relay: LiveRelay) -> None:
    """Open a camera, download a named JPEG of its picture, go back, log out: the relay accepts
    the CSRF header and ends the session."""
    from playwright.async_api import expect

    page = relay_page
    shop = await relay.add_site("Shop", SHOP)
    await _open(page, relay)
    login = await (await _login(page)).json()
    await _tile(page, shop, "Front door").click()
    await expect(page.locator("#single-view")).to_be_visible()
    await expect(page.locator("#single-name")).to_have_text("Front door")
    await page.locator("#single-status[data-state='playing']").wait_for(
        state="attached", timeout=LIVE_WAIT_MS
    )
    await expect(page.locator("#camera-list")).to_be_hidden()

    async with page.expect_download() as download_info:
        await page.click("#snapshot-button")
    download = await download_info.value
    name = download.suggested_filename
    assert re.fullmatch(r"Front door-\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d\.jpg", name), name
    saved = await asyncio.to_thread(Path(await download.path()).read_bytes)
    assert saved[:2] == b"\xff\xd8", saved[:16]
    assert _jpeg_size(saved) == (WIDTH, HEIGHT)

    await page.click("#back-button")
    await expect(page.locator("#camera-list")).to_be_visible()
    await expect(page.locator("#single-view")).to_be_hidden()
    async with page.expect_response(lambda r: r.url.endswith("/api/v1/auth/logout")) as answer:
        await page.click("#logout-button")
    logout = await answer.value
    assert logout.request.headers.get("x-csrf-token") == login["csrf_token"]
    assert logout.status == 204  # the relay answers 403/91005 to a wrong or missing token
    await expect(page.locator("#login-form")).to_be_visible()
    after = await page.request.get(
        relay.url + "/api/v1/auth/session",
        headers={"Authorization": f"Bearer {login['token']}"},
    )
    assert after.status == 401
    assert (await after.json())["error"]["code"] == 50201


# spec: USER-3
async def test_expired_session_returns_to_login_with_the_code(
    relay_page: Any, relay: LiveRelay
) -> None:
    """Past the idle timeout the relay answers 401/50201; the portal shows the login form again,
    naming the code."""
    from playwright.async_api import expect

    page = relay_page
    shop = await relay.add_site("Shop", SHOP[:1])
    await _open(page, relay)
    await _login(page)
    expired: list[str] = []

    async def expire_first(route: Any) -> None:
        """The session times out just before the single view's call reaches the relay (the
        list's 10 s poll, passing through untouched, must not be the one to meet it)."""
        if "#/camera/" in route.request.frame.url and not expired:
            relay.clock.advance(relay.settings.session_idle_timeout_s + 1)
            expired.append(route.request.url)
        await route.continue_()

    await page.route("**/api/v1/devices", expire_first)
    await _tile(page, shop, "Front door").click()  # the single view asks for the devices
    await expect(page.locator("#login-form")).to_be_visible()
    await expect(page.locator("#login-error")).to_contain_text("50201")
    await expect(page.locator("#topbar")).to_be_hidden()
    assert expired == [relay.url + "/api/v1/devices"]
