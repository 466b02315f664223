"""Fixtures for the portal tests: Debian's chromium, and for ``test_player.py`` only, a STUB
relay with a real fMP4 stream.

The stub is not the relay: it is a small aiohttp app that serves ``relay/portal/`` under
``/portal/`` with the relay's Content-Security-Policy and a live WebSocket that sends a file's
frames on a schedule the test controls (GOP bursts, pacing, a restart, an H.265 init, an error),
which the player's latency control is tested against. Every other portal test runs the real
relay (``create_app``, or ``live_site.py``: relay server, agents and an RTSP camera).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

from relay.app import create_app
from relay.store import AccountRow, Store, open_store
from relay.tunnel.broker import Broker
from relay.tunnel.registry import Registry
from relay.web.keys import AUTH_KEY, BROKER_KEY
from relay.web.portal import CSP, PORTAL_DIR
from shared.fmp4 import Fmp4Splitter, InitSegment, MediaFragment
from tests.relay.conftest import OWNER, PASSWORD, FakeClock, make_settings

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]
FPS = 15
GOP_FRAMES = 20  # the agent's cached GOP sent to a new viewer
GOP_TRICKLE_S = 0.2


#: The relay id the portal relay's registry holds tunnels under (none are ever opened).
PORTAL_RELAY_ID = "portal-test"


@dataclass(frozen=True)
class PortalRelay:
    """The real relay app serving the portal, its store and clock, and the subscriber."""

    url: str
    app: web.Application
    store: Store
    owner: AccountRow
    clock: FakeClock


@contextlib.asynccontextmanager
async def portal_relay(data_dir: Path, **settings: Any) -> AsyncIterator[PortalRelay]:
    """The real app over plain HTTP on 127.0.0.1 (so the cookie is not Secure) with the
    subscriber OWNER / PASSWORD signed up, on a FakeClock. No agent ever connects: sites are
    online only where a test marks them so, and live tiles then find no tunnel."""
    clock = FakeClock()
    config = make_settings(data_dir, cookie_secure=False, **settings)
    store = await open_store(config.db_url, clock=clock)
    app = create_app(config, store)
    app[BROKER_KEY] = Broker(Registry(store, PORTAL_RELAY_ID))
    owner = await app[AUTH_KEY].sign_up(OWNER, "Owner", PASSWORD, licence_accepted=True)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield PortalRelay(f"http://127.0.0.1:{server.port}", app, store, owner, clock)
    finally:
        await server.close()
        await store.close()


@dataclass(frozen=True)
class Fmp4:
    """A fragmented MP4 split the way the agent sends it: init segment, one fragment per frame."""

    mime: str
    init: bytes
    fragments: list[bytes]


def split_fmp4(data: bytes) -> Fmp4:
    """Init = ftyp+moov; each fragment = moof+mdat (the relay's own splitter, shared.fmp4);
    the trailing mfra completes no segment and is dropped."""
    segments = Fmp4Splitter(max_box_bytes=len(data)).feed(data)
    init = next(seg.data for seg in segments if isinstance(seg, InitSegment))
    fragments = [seg.data for seg in segments if isinstance(seg, MediaFragment)]
    avcc = init.find(b"avcC") + 4  # configurationVersion, profile, compatibility, level
    codec = "avc1." + init[avcc + 1 : avcc + 4].hex().upper()
    return Fmp4(f'video/mp4; codecs="{codec}"', init, fragments)


@pytest.fixture(scope="session")
def h264_stream(tmp_path_factory: pytest.TempPathFactory) -> Fmp4:
    """30 s of 640x360 15 fps H.264, one fragment per frame, made by Debian's ffmpeg."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg not installed")
    out = tmp_path_factory.mktemp("fmp4") / "out.mp4"
    subprocess.run(
        [
            *("ffmpeg", "-hide_banner", "-loglevel", "error", "-y"),
            *("-f", "lavfi", "-i", f"testsrc2=size=640x360:rate={FPS}", "-t", "30"),
            *("-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "30"),
            *("-pix_fmt", "yuv420p", "-movflags", "frag_every_frame+empty_moov+default_base_moof"),
            *("-f", "mp4", str(out)),
        ],
        check=True,
        timeout=60,
    )
    stream = split_fmp4(out.read_bytes())
    assert len(stream.fragments) == 30 * FPS
    return stream


@web.middleware
async def _csp(request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
    response: web.StreamResponse = await handler(request)
    response.headers["Content-Security-Policy"] = CSP
    return response


HEVC_MIME = 'video/mp4; codecs="hvc1.1.6.L93.B0"'


async def send_paced(ws: web.WebSocketResponse, fragments: list[bytes], start: float) -> None:
    """Send fragments at FPS from loop time ``start``, as a camera would produce them."""
    loop = asyncio.get_running_loop()
    for i, fragment in enumerate(fragments):
        delay = start + i / FPS - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        await ws.send_bytes(fragment)


async def send_stream(
    ws: web.WebSocketResponse,
    stream: Fmp4,
    frames: int | None = None,
    gop_sent: asyncio.Event | None = None,
) -> None:
    """Init message, init segment, a cached GOP of 20 frames (1.3 s) arriving in two bursts
    0.2 s apart (as it trickles through a tunnel), then live frames paced at FPS."""
    fragments = stream.fragments[:frames]
    loop = asyncio.get_running_loop()
    await ws.send_json({"type": "init", "mime": stream.mime, "width": 640, "height": 360})
    await ws.send_bytes(stream.init)
    await ws.send_bytes(b"".join(fragments[:5]))
    await asyncio.sleep(GOP_TRICKLE_S)
    await ws.send_bytes(b"".join(fragments[5:GOP_FRAMES]))
    if gop_sent is not None:
        gop_sent.set()
    await send_paced(ws, fragments[GOP_FRAMES:], loop.time())


class StubCameras:
    """The stub's live WebSocket: behaviour per camera id (``hevc``: H.265 init only, ``flaky``:
    an error on the first connection, ``restart``: a second init after 3 s, any other id: the
    H.264 stream); counts connections per id."""

    def __init__(self, stream: Fmp4) -> None:
        self.stream = stream
        self.connections: dict[str, int] = {}
        self.restarted = asyncio.Event()
        self.gop_sent = asyncio.Event()
        self.sockets: set[web.WebSocketResponse] = set()

    async def close_all(self, _: web.Application) -> None:
        """On stub shutdown: close open sockets, or cleanup waits for the browser to leave."""
        for ws in list(self.sockets):
            await ws.close()

    async def live(self, request: web.Request) -> web.WebSocketResponse:
        """Run the camera's script while the player stays connected."""
        camera = request.match_info["camera_id"]
        n = self.connections[camera] = self.connections.get(camera, 0) + 1
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.add(ws)
        script = asyncio.ensure_future(self._script(camera, n, ws))
        async for msg in ws:
            if msg.type is WSMsgType.ERROR:
                break
        self.sockets.discard(ws)
        script.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await script
        return ws

    async def _script(self, camera: str, connection: int, ws: web.WebSocketResponse) -> None:
        if camera == "hevc":
            await ws.send_json({"type": "init", "mime": HEVC_MIME, "width": 640, "height": 360})
        elif camera == "flaky" and connection == 1:
            await ws.send_json(
                {"type": "error", "code": 50115, "message": "Failed to connect to the camera."}
            )
            await ws.close()
        elif camera == "restart":
            await send_stream(ws, self.stream, frames=3 * FPS)
            self.restarted.set()
            await send_stream(ws, self.stream)  # timestamps start again at 0
        else:
            await send_stream(ws, self.stream, gop_sent=self.gop_sent)


@pytest.fixture
async def cameras(h264_stream: Fmp4) -> StubCameras:
    """The stub's live cameras, sharing one real H.264 stream."""
    return StubCameras(h264_stream)


StubSetup = Callable[[web.Application], None]


@pytest.fixture
async def stub_relay() -> AsyncIterator[Callable[[StubSetup], Any]]:
    """Start a stub relay on 127.0.0.1:0 with the routes a test adds; yields a starter."""
    runners: list[web.AppRunner] = []

    async def start(setup: StubSetup) -> str:
        app = web.Application(middlewares=[_csp])
        setup(app)
        app.router.add_static("/portal/", PORTAL_DIR)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium (Playwright never downloads a browser here)."""
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed")
    return CHROMIUM


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[Any]:
    """Chromium, headless, driven by Playwright."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


async def _page(browser: Any, **context_options: Any) -> AsyncIterator[Any]:
    """A fresh page; the test fails on uncaught script errors and CSP violations."""
    context = await browser.new_context(**context_options)
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
    page.on(
        "console",
        lambda msg: (
            problems.append(msg.text)
            if "Content Security Policy" in msg.text or "Refused to" in msg.text
            else None
        ),
    )
    yield page
    await context.close()
    assert not problems, problems


@pytest.fixture
async def page(browser: Any) -> AsyncIterator[Any]:
    """A page with CSP bypassed: Playwright's wait_for_function evaluates strings, which the
    relay's CSP (rightly) forbids. ``strict_page`` checks the portal under the real policy."""
    async for page in _page(browser, bypass_csp=True):
        yield page


@pytest.fixture
async def strict_page(browser: Any) -> AsyncIterator[Any]:
    """A page under the relay's CSP: wait with selectors only (they need no eval)."""
    async for page in _page(browser, bypass_csp=False):
        yield page


@pytest.fixture
async def relay_page(browser: Any) -> AsyncIterator[Any]:
    """A ``strict_page`` for the real relay server, which serves HTTPS with a certificate from
    its own CA (made at first start, as in production without an operator's certificate)."""
    async for page in _page(browser, bypass_csp=False, ignore_https_errors=True):
        yield page
