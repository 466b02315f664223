"""The live player (``relay/portal/player.js``) in chromium; its WebSocket peer is a STUB.

The peer is not the relay: the stub's ``/api/v1/cameras/{id}/live`` WebSocket (see conftest)
speaks the relay's live protocol — a JSON init message, the fMP4 init segment, then one
moof+mdat fragment per frame — from a real H.264 fMP4 made by ffmpeg, but on a schedule the test
controls: the cached GOP in two bursts, then frames paced at exactly 15 fps from a known start,
a stream restart at 3 s, an H.265 init, an error on the first connection. That is deliberate:
the player's latency control (catch-up band, restarts, errors) can only be measured against a
source whose timing is known and repeatable, which a real camera through a real tunnel is not.
The real relay, agent and camera feeding the player are tested in ``test_portal.py`` (live tiles
and the single view) and end to end in ``tests/e2e``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp import web

from tests.relay.portal.conftest import FPS, GOP_FRAMES, StubCameras

PAGE_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>player test</title>
<script type="module" src="/test/player.js"></script></head>
<body><video id="video"></video><p id="status"></p></body></html>
"""

# Samples buffered end - currentTime every 50 ms once frames are decoding.
PAGE_JS = """
import { LivePlayer } from "/portal/player.js";
const video = document.querySelector("#video");
const camera = new URLSearchParams(location.search).get("camera");
window.player = new LivePlayer(video, camera, { statusElement: document.querySelector("#status") });
window.lags = [];
window.sources = 0;
video.addEventListener("loadstart", () => { window.sources += 1; });
setInterval(() => {
  const b = video.buffered;
  if (b.length && !video.paused && video.getVideoPlaybackQuality().totalVideoFrames > 0) {
    window.lags.push(b.end(b.length - 1) - video.currentTime);
  }
}, 50);
"""

FRAMES = "document.querySelector('#video').getVideoPlaybackQuality().totalVideoFrames"
STATUS = "document.querySelector('#status').textContent"
END = "(b => b.length ? b.end(b.length - 1) : 0)(document.querySelector('#video').buffered)"
LAG = f"({END} - document.querySelector('#video').currentTime)"

pytestmark = pytest.mark.timeout(60)


def _stub_app(cameras: StubCameras) -> Any:
    async def page_html(_: web.Request) -> web.Response:
        return web.Response(text=PAGE_HTML, content_type="text/html")

    async def page_js(_: web.Request) -> web.Response:
        return web.Response(text=PAGE_JS, content_type="text/javascript")

    async def session(_: web.Request) -> web.Response:
        return web.json_response({"account": {"id": "a1", "email": "v@example.com"}})

    def setup(app: web.Application) -> None:
        app.router.add_get("/test/player.html", page_html)
        app.router.add_get("/test/player.js", page_js)
        app.router.add_get("/api/v1/auth/session", session)
        app.router.add_get("/api/v1/cameras/{camera_id}/live", cameras.live)
        app.on_shutdown.append(cameras.close_all)

    return setup


async def _open(page: Any, stub_relay: Any, cameras: StubCameras, camera: str) -> None:
    base = await stub_relay(_stub_app(cameras))
    await page.goto(f"{base}/test/player.html?camera={camera}")


# spec: LIVE-4
async def test_plays_live_and_holds_near_the_live_edge(
    page: Any, stub_relay: Any, cameras: StubCameras
) -> None:
    """Frames decode within 10 s, the player joins at the newest frame of the cached GOP, and
    the playhead then stays within 1 s of the newest frame, its median inside the catch-up band."""
    await _open(page, stub_relay, cameras, "x")
    await page.wait_for_function(f"{FRAMES} > 0", timeout=10_000)
    await asyncio.wait_for(cameras.gop_sent.wait(), timeout=5)
    # the whole cached GOP is buffered, and the player jumped to its end
    gop_s = GOP_FRAMES / FPS
    await page.wait_for_function(f"{END} >= {gop_s} && {LAG} < 0.3", timeout=3_000)
    await page.evaluate("window.lags = []")
    first = await page.evaluate(FRAMES)
    await page.wait_for_function(f"{FRAMES} > {first} + 2 * {FPS}", timeout=10_000)
    lags = sorted(await page.evaluate("window.lags"))
    assert len(lags) > 20
    assert lags[-1] < 1.0, f"fell {lags[-1]:.2f} s behind the live edge"
    # Design holds ~0.1 s (bench/media_latency.py measures it); right after the join the player
    # tolerates up to 0.5 s while the decoder warms up and then catches up at 5 %, so on a busy
    # machine the median of this 2 s window sits between. Past 0.5 s it would be buffering.
    assert lags[len(lags) // 2] < 0.5, f"median lag {lags[len(lags) // 2]:.2f} s"
    assert await page.evaluate("window.player.state") == "playing"
    assert await page.evaluate("document.querySelector('#status').hidden")


# spec: LIVE-7
async def test_hvc1_says_codec_not_supported(
    page: Any, stub_relay: Any, cameras: StubCameras
) -> None:
    """Chromium has no H.265 in MSE: the player says so instead of spinning."""
    await _open(page, stub_relay, cameras, "hevc")
    await page.wait_for_function(f"{STATUS}.includes('not supported')", timeout=10_000)
    assert await page.evaluate("window.player.state") == "unsupported"
    assert cameras.connections["hevc"] == 1  # no reconnect loop


# spec: LIVE-4
async def test_error_is_shown_then_reconnects(
    page: Any, stub_relay: Any, cameras: StubCameras
) -> None:
    """An error message is shown with its code; the player reconnects and plays."""
    await _open(page, stub_relay, cameras, "flaky")
    await page.wait_for_function(f"{STATUS}.includes('(error 50115)')", timeout=10_000)
    await page.wait_for_function(f"{FRAMES} > {FPS}", timeout=15_000)
    assert cameras.connections["flaky"] == 2
    assert await page.evaluate("document.querySelector('#status').hidden")


# spec: LIVE-4
async def test_new_init_message_restarts_the_source(
    page: Any, stub_relay: Any, cameras: StubCameras
) -> None:
    """A second init (the camera's source restarted) gets a fresh MediaSource that plays."""
    await _open(page, stub_relay, cameras, "restart")
    await page.wait_for_function(f"{FRAMES} > 0", timeout=10_000)
    await asyncio.wait_for(cameras.restarted.wait(), timeout=10)
    await page.wait_for_function("window.sources >= 2", timeout=5_000)
    await page.wait_for_function(f"{FRAMES} > {FPS}", timeout=10_000)
    assert await page.evaluate("window.player.state") == "playing"
    assert cameras.connections["restart"] == 1
    assert json.loads(await page.evaluate("JSON.stringify(window.lags.length > 0)"))
