"""Real sites for portal tests: the real relay, real agents, a real RTSP camera.

- the relay is ``RelayServer`` (HTTPS and QUIC on one port of 127.0.0.1) over a SQLite store
  whose time is a :class:`FakeClock`, so a test passes session timeouts and login locks without
  sleeping;
- each site is the agent's own ``Agent`` (its tunnel client, inventory and request handler)
  enrolled over HTTPS the way ``rmon-agent register`` does;
- live video and snapshots come from the agent's media pipeline (``CameraMedia``) pulling the
  GStreamer RTSP test camera (``tests/peers/gst_rtsp.py``); one pull per site, shared by its
  cameras, as a camera's one stream is shared by its viewers.

The one seam: cameras are put into the agent as ``Agent._add_camera`` leaves them after reading
a camera over ONVIF (discovery and ONVIF are tested in ``tests/agent`` and ``tests/e2e``). A
camera's status is the agent's ``CameraHealth`` state, which the agent reports in its inventory
over the tunnel like any other, so the relay stores it (r0005) and the portal shows it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.app import Agent, Camera
from agent.camera_health import CameraHealth, CameraStatus
from agent.media.live import CameraMedia
from agent.onvif.models import CameraDescription, MediaProfile
from agent.settings import AgentSettings
from relay.cli_account import create_account
from relay.server import RelayServer
from relay.settings import RelaySettings
from relay.store import DeviceWithCameras, Store
from relay.web.keys import STORE_KEY
from tests.peers import gst_rtsp
from tests.relay.conftest import OWNER, PASSWORD, FakeClock, make_settings
from tests.relay.tunnel_kit import enroll

#: The test camera's picture (gst_rtsp_server.py): every still and frame has this size.
WIDTH, HEIGHT = 640, 360
MOUNT = "/h264"  # H.264 Constrained Baseline with AAC, as a typical camera sends
READY_TIMEOUT_S = 15.0


@contextlib.contextmanager
def rtsp_camera() -> Iterator[gst_rtsp.RtspServer]:
    """The GStreamer RTSP test camera, or a skip where GStreamer is not installed."""
    if not gst_rtsp.available():
        pytest.skip("GStreamer RTSP server (gir1.2-gst-rtsp-server-1.0) not installed")
    with gst_rtsp.gst_rtsp_server() as server:
        yield server


@dataclass(frozen=True)
class CameraSpec:
    """A camera of a site: ``normal`` ones stream the RTSP camera; others report ``status``
    (``authentication_error``: the camera refuses the agent's credentials; no stream)."""

    name: str
    status: CameraStatus = "normal"


@dataclass
class Site:
    """A site the relay knows: its device id, camera name → relay camera id, and its agent
    (None once it has left)."""

    device_id: str
    cameras: dict[str, str]
    agent: Agent | None
    task: asyncio.Task[None] | None


class LiveRelay:
    """The running relay, its clock, and the sites added to it."""

    def __init__(self, server: RelayServer, clock: FakeClock, work: Path, rtsp_url: str) -> None:
        self.server = server
        self.clock = clock
        self.work = work
        self.rtsp_url = rtsp_url
        self.sites: list[Site] = []

    @property
    def url(self) -> str:
        """The portal's address (HTTPS, the relay's own CA)."""
        return f"https://127.0.0.1:{self.server.port}"

    @property
    def settings(self) -> RelaySettings:
        """The relay's settings (login threshold, timeouts)."""
        return self.server.settings

    @property
    def store(self) -> Store:
        """The relay's store (read only, to wait for what agents told the relay)."""
        runner = self.server._runner
        assert runner is not None
        return runner.app[STORE_KEY]

    async def add_site(self, name: str, cameras: Sequence[CameraSpec]) -> Site:
        """Enroll an agent as ``name``, give it these cameras, connect it; return once the
        relay lists the site online with all of them."""
        data = self.work / f"agent-{len(self.sites)}"
        store, identity = await enroll(self.server, data, name=name)
        agent = Agent(AgentSettings(data_dir=data), store, identity)
        media = CameraMedia(self.rtsp_url, label=f"{name}-camera")
        for i, spec in enumerate(cameras):
            cam = _camera(f"{name}-{i}", spec, self.rtsp_url, media)
            agent.cameras[cam.local_id] = cam
        site = Site(identity.device_id, {}, agent, None)
        self.sites.append(site)
        site.task = asyncio.create_task(agent.tunnel.run_forever())
        if any(spec.status == "normal" for spec in cameras):
            await _streaming(media)

        def up(listed: DeviceWithCameras) -> bool:
            return listed.device.online and len(listed.cameras) == len(cameras)

        listed = await self._wait_for(site.device_id, up)
        site.cameras = {c.name: c.id for c in listed.cameras}
        return site

    async def leave(self, site: Site) -> None:
        """Stop the site's agent; return once the relay shows the site offline."""
        await _stop(site)
        await self._wait_for(site.device_id, lambda d: not d.device.online)

    async def close(self) -> None:
        """Stop every agent still running (and its camera pull)."""
        for site in self.sites:
            await _stop(site)

    async def _wait_for(
        self, device_id: str, cond: Callable[[DeviceWithCameras], bool]
    ) -> DeviceWithCameras:
        """Poll the store until the owner's device meets ``cond`` (the relay's writes of what
        an agent sends have no signal a test can wait on)."""
        owner = await self.store.get_account_by_email(OWNER)
        assert owner is not None
        try:
            async with asyncio.timeout(READY_TIMEOUT_S):
                while True:
                    for item in await self.store.list_devices_for(owner.id):
                        if item.device.id == device_id and cond(item):
                            return item
                    await asyncio.sleep(0.05)
        except TimeoutError:
            raise AssertionError(f"the relay never listed site {device_id} as wanted") from None


def _camera(local_id: str, spec: CameraSpec, rtsp_url: str, media: CameraMedia) -> Camera:
    """A camera as ``Agent._add_camera`` leaves it: read (or refusing us), watched, pulled."""
    xaddr = f"http://127.0.0.1/onvif/{local_id}"  # never called: no health checks run here
    health = CameraHealth(local_id, xaddr, "admin", "", status=spec.status)
    if spec.status == "authentication_error":  # unread: no model, no profile, no stream
        desc = CameraDescription(xaddr, "", "", "", "", "", None, ())
        return Camera(local_id, desc, None, spec.name, "admin", "", health=health)
    profile = MediaProfile("main", "Main", "H264", WIDTH, HEIGHT, 15.0, rtsp_url, "")
    desc = CameraDescription(
        xaddr, "GStreamer", "videotestsrc", "1.22", local_id, "", None, (profile,)
    )
    live = media if spec.status == "normal" else None
    return Camera(local_id, desc, profile, spec.name, "admin", "", media=live, health=health)


async def _streaming(media: CameraMedia) -> None:
    """Start the pull and wait for its first keyframe: a site whose camera is up (and whose
    pull can be stopped at once, not in the middle of PyAV's blocking RTSP open)."""
    await media.start()
    async with media.subscribe() as sub:
        await sub.ready(READY_TIMEOUT_S)


async def _stop(site: Site) -> None:
    """Cancel the agent's tunnel task, then close the agent (tunnel, camera pulls)."""
    if site.task is not None:
        site.task.cancel()
        await asyncio.gather(site.task, return_exceptions=True)
        site.task = None
    if site.agent is not None:
        await site.agent.close()
        site.agent = None


@contextlib.asynccontextmanager
async def live_relay(work: Path, rtsp_url: str) -> AsyncIterator[LiveRelay]:
    """The real relay on 127.0.0.1 (port 0) with the subscriber ``OWNER`` and a FakeClock."""
    settings = make_settings(work / "relay", listen_host="127.0.0.1", listen_port=0)
    await create_account(settings, OWNER, "Owner", PASSWORD)
    clock = FakeClock()
    server = RelayServer(settings, clock=clock)
    await server.start()
    relay = LiveRelay(server, clock, work, rtsp_url)
    try:
        yield relay
    finally:
        await relay.close()
        await server.stop()


async def poll(check: Callable[[], Awaitable[object]], timeout: float, what: str) -> object:
    """Await ``check()`` until it is truthy (for browser state only visible by asking)."""
    try:
        async with asyncio.timeout(timeout):
            while not (result := await check()):  # noqa: ASYNC110 -- page state, no event
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout} s waiting for {what}") from None
    return result
