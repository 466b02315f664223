"""Live fan-out at the relay (relay/tunnel/live_hub.py) with real parts: the real relay server,
the agent's real tunnel client and request handler, and its real ``CameraMedia`` pulling the
GStreamer RTSP test camera (``tests/relay/portal/live_site.py``).

What is checked: viewers of one camera share one tunnel stream (counted in the agent's request
handler) and each starts with the JSON init, the init segment and a keyframe fragment; a viewer
leaving does not disturb the others; the last leaving closes the stream after the linger; a viewer
that stops reading does not stall the others; the agent's session being replaced keeps viewers'
sockets open and media resumes with a new init.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from agent.app import Agent
from relay.tunnel.live_hub import LiveHub, LiveViewer
from relay.web.keys import LIVE_HUB_KEY
from shared import fmp4, quic
from tests.relay.conftest import OWNER, PASSWORD
from tests.relay.portal.live_site import CameraSpec, LiveRelay, Site, live_relay, rtsp_camera

TIMEOUT_S = 20.0


class Upstreams:
    """Counts the agent's request streams: opened in all, and open now (waitable)."""

    def __init__(self) -> None:
        self.opened = 0
        self.open_now = 0
        self.changed = asyncio.Condition()

    def wrap(self, agent: Agent) -> None:
        """Count around the agent's own request handler, as its tunnel client calls it."""
        client = agent.tunnel
        inner = client._handle_request

        async def counted(stream: quic.TunnelStream) -> None:
            await self._bump(1, 1)
            try:
                await inner(stream)
            finally:
                await self._bump(0, -1)

        client._handle_request = counted

    async def _bump(self, opened: int, now: int) -> None:
        async with self.changed:
            self.opened += opened
            self.open_now += now
            self.changed.notify_all()

    async def wait(self, cond: Callable[[Upstreams], bool]) -> None:
        """Until ``cond`` holds."""
        async with asyncio.timeout(TIMEOUT_S), self.changed:
            await self.changed.wait_for(lambda: cond(self))


@dataclasses.dataclass
class World:
    relay: LiveRelay
    site: Site
    camera: str
    upstreams: Upstreams
    http: aiohttp.ClientSession
    token: str
    ctx: ssl.SSLContext

    @property
    def hub(self) -> LiveHub:
        runner = self.relay.server._runner
        assert runner is not None
        return runner.app[LIVE_HUB_KEY]

    async def connect(self) -> aiohttp.ClientWebSocketResponse:
        url = f"wss://127.0.0.1:{self.relay.server.port}/api/v1/cameras/{self.camera}/live"
        headers = {"Authorization": f"Bearer {self.token}"}
        return await self.http.ws_connect(url, headers=headers, ssl=self.ctx)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    with rtsp_camera() as camera:
        async with live_relay(tmp_path, camera.url("/h264")) as relay:
            site = await relay.add_site("Home", [CameraSpec("Door")])
            assert site.agent is not None
            upstreams = Upstreams()
            upstreams.wrap(site.agent)
            ctx = ssl.create_default_context(cafile=str(relay.settings.tls_dir / "ca.pem"))
            async with aiohttp.ClientSession() as http:
                body = {"email": OWNER, "password": PASSWORD}
                async with http.post(f"{relay.url}/api/v1/auth/login", json=body, ssl=ctx) as r:
                    assert r.status == 200, await r.text()
                    token = str((await r.json())["token"])
                w = World(relay, site, site.cameras["Door"], upstreams, http, token, ctx)
                w.hub.settings = dataclasses.replace(w.hub.settings, linger_s=0.5)
                yield w


class Watcher:
    """A viewer's socket read like the player does: JSON init, init segment, fragments."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.inits = 0
        self.fragments: list[fmp4.MediaFragment] = []
        self._splitter = fmp4.Fmp4Splitter()
        self._expect_init = False

    async def read_start(self, *, after_media: bool = False) -> None:
        """JSON init, then the init segment alone, then a first media message whose first
        fragment is a keyframe (``after_media``: media of the old source may come first)."""
        raw = await self.ws.receive(timeout=TIMEOUT_S)
        while after_media and raw.type is aiohttp.WSMsgType.BINARY:
            raw = await self.ws.receive(timeout=TIMEOUT_S)
        assert raw.type is aiohttp.WSMsgType.TEXT, raw
        msg = raw.json()
        assert msg["type"] == "init", msg
        assert msg["mime"].startswith("video/mp4"), msg
        self.inits += 1
        init = await self.ws.receive_bytes(timeout=TIMEOUT_S)
        assert init[4:8] == b"ftyp"
        self._splitter = fmp4.Fmp4Splitter()
        segments = self._splitter.feed(init)
        assert len(segments) == 1
        assert isinstance(segments[0], fmp4.InitSegment)
        first = len(self.fragments)
        await self.read_fragments(1)
        assert self.fragments[first].keyframe, "media did not start at a keyframe"

    async def read_fragments(self, count: int) -> None:
        """Read until ``count`` more fragments arrived (a new JSON init starts over)."""
        target = len(self.fragments) + count
        while len(self.fragments) < target:
            msg = await self.ws.receive(timeout=TIMEOUT_S)
            assert msg.type is aiohttp.WSMsgType.BINARY, msg
            for segment in self._splitter.feed(msg.data):
                assert isinstance(segment, fmp4.MediaFragment)
                self.fragments.append(segment)


async def _all(*aws: Awaitable[Any]) -> None:
    await asyncio.gather(*aws)


# spec: LIVE-1
async def test_viewers_share_one_upstream_and_the_last_one_leaving_closes_it(world: World) -> None:
    watchers = [Watcher(await world.connect()) for _ in range(3)]
    await _all(*(w.read_start() for w in watchers))
    await _all(*(w.read_fragments(10) for w in watchers))
    assert world.upstreams.opened == 1
    assert world.upstreams.open_now == 1

    await watchers[0].ws.close()  # one leaves: the others go on, on the same stream
    await _all(*(w.read_fragments(15) for w in watchers[1:]))
    assert world.upstreams.opened == 1

    for w in watchers[1:]:
        await w.ws.close()
    await world.upstreams.wait(lambda u: u.open_now == 0)  # closed after the linger
    assert world.hub.channels == {}


async def test_a_reload_within_the_linger_reuses_the_stream(world: World) -> None:
    first = Watcher(await world.connect())
    await first.read_start()
    await first.ws.close()
    again = Watcher(await world.connect())
    await again.read_start()
    await again.read_fragments(5)
    assert world.upstreams.opened == 1
    await again.ws.close()


async def test_a_stalled_viewer_does_not_stall_the_others(world: World) -> None:
    stalled = Watcher(await world.connect())
    await stalled.read_start()
    others = [Watcher(await world.connect()) for _ in range(2)]
    await _all(*(w.read_start() for w in others))
    # the stalled viewer reads nothing more while the others get 3 s of video (15 fps)
    await _all(*(w.read_fragments(45) for w in others))
    assert world.upstreams.opened == 1
    (channel,) = world.hub.channels.values()
    viewers: set[LiveViewer] = channel.viewers
    assert len(viewers) == 3
    for w in [stalled, *others]:
        await w.ws.close()


async def test_a_stalled_viewer_over_its_bound_skips_to_a_keyframe_alone(world: World) -> None:
    world.hub.settings = dataclasses.replace(world.hub.settings, viewer_queue_bytes=16 * 1024)
    stalled = Watcher(await world.connect())
    await stalled.read_start()
    (channel,) = world.hub.channels.values()
    (slow,) = channel.viewers
    # hold its forwarder: its socket stays open, its queue at the relay fills
    other = Watcher(await world.connect())
    await other.read_start()
    gate = asyncio.Event()
    original = slow.next_message

    async def held(limit: int) -> str | bytes:
        await gate.wait()
        return await original(limit)

    slow.next_message = held  # type: ignore[method-assign]
    await other.read_fragments(60)
    assert slow.dropped > 0
    fast = next(v for v in channel.viewers if v is not slow)
    assert fast.dropped == 0
    gate.set()
    await stalled.read_fragments(20)
    frags = stalled.fragments
    gaps = [b for a, b in itertools.pairwise(frags) if b.sequence != a.sequence + 1]
    assert gaps, "the stalled viewer skipped nothing"
    assert all(f.keyframe for f in gaps), "after a skip, media must resume at a keyframe"
    for w in (stalled, other):
        await w.ws.close()


async def test_agent_session_replaced_keeps_sockets_and_media_resumes(world: World) -> None:
    watchers = [Watcher(await world.connect()) for _ in range(2)]
    await _all(*(w.read_start() for w in watchers))
    await _all(*(w.read_fragments(5) for w in watchers))
    listener = world.relay.server.listener
    assert listener is not None
    session = listener.registry.get(world.site.device_id)
    assert session is not None
    session.conn.close(reason="test: tunnel moves")  # the agent reconnects on its own

    async def resumed(w: Watcher) -> None:
        await w.read_start(after_media=True)  # a new JSON init on the same socket
        await w.read_fragments(10)

    await _all(*(resumed(w) for w in watchers))
    assert world.upstreams.opened == 2
    assert all(not w.ws.closed for w in watchers)
    assert listener.registry.get(world.site.device_id) is not session
    with contextlib.suppress(Exception):
        for w in watchers:
            await w.ws.close()
