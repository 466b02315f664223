"""The portal's pages in chromium under the relay's CSP, against a STUB relay API.

The stub (see conftest) is not the relay: it fakes login, session, devices, snapshots and the live
WebSocket with fixed answers, so these tests pin what the portal sends and shows. Waits use
selectors only (``wait_for_function`` would need ``eval``, which the CSP forbids).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.relay.portal.conftest import PORTAL_DIR, StubCameras

EMAIL = "viewer@example.com"
PASSWORD = "Camera-view1!"
CSRF = "csrf-token-1"

pytestmark = pytest.mark.timeout(60)


def _error(status: int, code: int, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _site(device_id: str, name: str, online: bool, cameras: list[tuple[Any, ...]]) -> Any:
    return {
        "id": device_id,
        "name": name,
        "online": online,
        "agent_version": "0.1.0",
        "last_seen_at": "2024-05-01T12:00:00Z",
        "cameras": [
            {
                "id": cid,
                "name": cname,
                "online": on,
                "status": status[0] if status else "normal",
                "model": "M",
                "manufacturer": "Acme",
            }
            for cid, cname, on, *status in cameras
        ],
    }


SMALL_SITES = [
    _site(
        "d1",
        "Shop",
        True,
        [
            ("c1", "Front door", True),
            ("c2", "Back yard", False),
            ("c4", "Till", False, "authentication_error"),
        ],
    ),
    _site("d2", "Depot", False, [("c3", "Gate", True)]),
]
BIG_SITE = [_site("d9", "Mall", True, [(f"m{i:02}", f"Cam {i:02}", True) for i in range(1, 15)])]


class StubApi:
    """The relay API as far as the portal uses it, with one fixed account."""

    def __init__(self, devices: list[Any], jpeg: bytes, cameras: StubCameras) -> None:
        self.devices = devices
        self.jpeg = jpeg
        self.cameras = cameras
        self.logged_in = False
        self.expired = False
        self.logout_csrf: str | None = None
        self.snapshots: dict[str, int] = {}
        self.snapshots_changed = asyncio.Event()

    def setup(self, app: web.Application) -> None:
        """Add the routes to the stub's app."""
        app.router.add_get("/", self.index)
        app.router.add_get("/api/v1/auth/session", self.session)
        app.router.add_post("/api/v1/auth/login", self.login)
        app.router.add_post("/api/v1/auth/logout", self.logout)
        app.router.add_get("/api/v1/devices", self.list_devices)
        app.router.add_get("/api/v1/cameras/{camera_id}/snapshot", self.snapshot)
        app.router.add_get("/api/v1/cameras/{camera_id}/live", self.cameras.live)
        app.on_shutdown.append(self.cameras.close_all)

    async def index(self, _: web.Request) -> web.FileResponse:
        return web.FileResponse(PORTAL_DIR / "index.html")

    def _account(self) -> Any:
        return {"id": "a1", "email": EMAIL, "name": "Vera Viewer", "role": "subscriber"}

    def _no_session(self) -> web.Response | None:
        if self.logged_in and not self.expired:
            return None
        return _error(401, 50201, "The session has timed out.")

    async def session(self, _: web.Request) -> web.Response:
        return self._no_session() or web.json_response(
            {"account": self._account(), "csrf_token": CSRF}
        )

    async def login(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("email") == "locked@example.com":
            return _error(400, 400225, "Too many failed logins; try again later.")
        if body != {"email": EMAIL, "password": PASSWORD}:
            return _error(400, 400224, "The email address or password is incorrect.")
        self.logged_in = True
        return web.json_response({"token": "t", "csrf_token": CSRF, "account": self._account()})

    async def logout(self, request: web.Request) -> web.Response:
        self.logout_csrf = request.headers.get("X-CSRF-Token")
        self.logged_in = False
        return web.Response(status=204)

    async def list_devices(self, _: web.Request) -> web.Response:
        return self._no_session() or web.json_response({"devices": self.devices})

    async def snapshot(self, request: web.Request) -> web.Response:
        camera = request.match_info["camera_id"]
        self.snapshots[camera] = self.snapshots.get(camera, 0) + 1
        self.snapshots_changed.set()
        return self._no_session() or web.Response(body=self.jpeg, content_type="image/jpeg")

    async def wait_snapshots(self, cameras: int, timeout: float) -> None:
        """Until this many different cameras had a snapshot fetched."""
        async with asyncio.timeout(timeout):
            while len(self.snapshots) < cameras:
                self.snapshots_changed.clear()
                await self.snapshots_changed.wait()


@pytest.fixture(scope="session")
def jpeg(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real JPEG still made by ffmpeg."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg not installed")
    out = tmp_path_factory.mktemp("jpeg") / "still.jpg"
    subprocess.run(
        [
            *("ffmpeg", "-hide_banner", "-loglevel", "error", "-y"),
            *("-f", "lavfi", "-i", "testsrc2=size=320x180", "-frames:v", "1", str(out)),
        ],
        check=True,
        timeout=30,
    )
    return out.read_bytes()


async def _start(stub_relay: Any, api: StubApi, page: Any) -> None:
    base = await stub_relay(api.setup)
    await page.goto(base + "/")
    await page.locator("#login-form").wait_for()


async def _login(page: Any, email: str = EMAIL, password: str = PASSWORD) -> None:
    await page.fill("#email", email)
    await page.fill("#password", password)
    await page.click("#login-submit")


def _tile(page: Any, camera_id: str) -> Any:
    return page.locator(f'.camera-tile[data-camera-id="{camera_id}"]')


# spec: USER-3, LIVE-1
async def test_login_errors_then_sites_with_live_and_offline_tiles(
    strict_page: Any, stub_relay: Any, cameras: StubCameras, jpeg: bytes
) -> None:
    """Wrong password and lockout show message and code; then tiles per site, live or offline."""
    from playwright.async_api import expect

    page = strict_page
    await _start(stub_relay, StubApi(SMALL_SITES, jpeg, cameras), page)
    await _login(page, password="Wrong-pass1!")
    await expect(page.locator("#login-error")).to_contain_text("(error 400224)")
    await _login(page, email="locked@example.com")
    await expect(page.locator("#login-error")).to_contain_text("(error 400225)")

    await _login(page)
    await (
        _tile(page, "c1")
        .locator(".player-status[data-state='playing']")
        .wait_for(state="attached", timeout=10_000)
    )
    await expect(page.locator("#account-name")).to_have_text("Vera Viewer")
    await expect(page.locator("#mode-banner")).to_be_hidden()
    for offline in ("c2", "c3"):  # camera offline; camera of an offline site
        await expect(_tile(page, offline)).to_have_class(re.compile(r"\boffline\b"))
        await expect(_tile(page, offline)).to_contain_text("Offline")
        await expect(_tile(page, offline).locator("video")).to_have_count(0)
    # spec: DEV-1 - a camera refusing the agent's credentials says so, as the recorder screen does
    await expect(_tile(page, "c4").locator(".badge")).to_have_text("Authentication error")
    await expect(_tile(page, "c4").locator("video")).to_have_count(0)
    await expect(page.locator('.site[data-device-id="d2"] .site-head .badge')).to_have_text(
        "Offline"
    )


# spec: LIVE-1, LIVE-2
async def test_more_than_13_tiles_is_jpeg_mode_until_search_narrows_it(
    strict_page: Any, stub_relay: Any, cameras: StubCameras, jpeg: bytes
) -> None:
    """14 cameras on screen: stills and a JPEG-mode notice; searching to 5 brings live video."""
    from playwright.async_api import expect

    page = strict_page
    api = StubApi(BIG_SITE, jpeg, cameras)
    await _start(stub_relay, api, page)
    await _login(page)
    await expect(page.locator("#mode-banner")).to_contain_text("JPEG mode")
    await expect(page.locator(".camera-tile img")).to_have_count(14)
    await expect(page.locator(".camera-tile video")).to_have_count(0)
    await api.wait_snapshots(14, timeout=10)

    await page.fill("#camera-search", "cam 1")  # Cam 10 … Cam 14
    await expect(page.locator(".camera-tile:visible")).to_have_count(5)
    await expect(page.locator("#mode-banner")).to_be_hidden()
    await expect(page.locator(".camera-tile video")).to_have_count(5)
    await (
        _tile(page, "m14")
        .locator(".player-status[data-state='playing']")
        .wait_for(state="attached", timeout=10_000)
    )

    await page.fill("#camera-search", "")
    await expect(page.locator(".camera-tile video")).to_have_count(0)
    await expect(page.locator("#mode-banner")).to_be_visible()


# spec: LIVE-4, PLAY-5, USER-3
async def test_single_view_snapshot_back_and_logout(
    strict_page: Any, stub_relay: Any, cameras: StubCameras, jpeg: bytes
) -> None:
    """Open a camera, download a named JPEG, go back, log out with the CSRF header."""
    from playwright.async_api import expect

    page = strict_page
    api = StubApi(SMALL_SITES, jpeg, cameras)
    await _start(stub_relay, api, page)
    await _login(page)
    await _tile(page, "c1").click()
    await expect(page.locator("#single-view")).to_be_visible()
    await expect(page.locator("#single-name")).to_have_text("Front door")
    await page.locator("#single-status[data-state='playing']").wait_for(
        state="attached", timeout=10_000
    )
    await expect(page.locator("#camera-list")).to_be_hidden()

    async with page.expect_download() as download_info:
        await page.click("#snapshot-button")
    download = await download_info.value
    name = download.suggested_filename
    assert re.fullmatch(r"Front door-\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d\.jpg", name), name
    saved = Path(await download.path())
    assert (await asyncio.to_thread(saved.read_bytes)) == jpeg

    await page.click("#back-button")
    await expect(page.locator("#camera-list")).to_be_visible()
    await expect(page.locator("#single-view")).to_be_hidden()
    await page.click("#logout-button")
    await expect(page.locator("#login-form")).to_be_visible()
    assert api.logout_csrf == CSRF


# spec: USER-3
async def test_expired_session_returns_to_login_with_the_code(
    strict_page: Any, stub_relay: Any, cameras: StubCameras, jpeg: bytes
) -> None:
    """A 401 with 50201 from any API call shows the login form again, naming the code."""
    from playwright.async_api import expect

    page = strict_page
    api = StubApi(SMALL_SITES, jpeg, cameras)
    await _start(stub_relay, api, page)
    await _login(page)
    await _tile(page, "c1").wait_for()
    api.expired = True
    await _tile(page, "c1").click()  # the single view asks for the devices
    await expect(page.locator("#login-form")).to_be_visible()
    await expect(page.locator("#login-error")).to_contain_text("50201")
    await expect(page.locator("#topbar")).to_be_hidden()
