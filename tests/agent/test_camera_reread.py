"""Cameras the agent meets before they are ready: one that first refused our credentials is read
again, without an agent restart, once it accepts them (the installer fixed the password on the
camera) and keeps its id; one that says Hello while its ONVIF service is still starting is tried
again until it answers (DEV-1, DEV-10). Real agent code against the FAKE ONVIF camera
(tests/peers/fake_onvif_camera.py) on loopback; no relay is needed."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.app import Agent
from agent.onvif.models import DiscoveredDevice
from agent.settings import AgentSettings, CameraOverride
from agent.store import AgentStore
from tests.peers.fake_onvif_camera import FakeOnvifCamera

USER, RIGHT, WRONG = "admin", "Right-pass1", "Old-pass1"


@pytest.fixture
async def fake() -> AsyncIterator[FakeOnvifCamera]:
    cam = FakeOnvifCamera(username=USER, password=RIGHT, stream_uri="rtsp://127.0.0.1:9/none")
    await cam.start()
    try:
        yield cam
    finally:
        await cam.stop()


def _agent(tmp_path: Path, xaddr: str, password: str) -> Agent:
    """An enrolled agent (no relay needed: its tunnel is never run) knowing one camera."""
    settings = AgentSettings(
        data_dir=tmp_path,
        camera_check_interval_s=0.2,
        camera_events=False,
        mdns_discovery=False,
        cameras=[CameraOverride(xaddr=xaddr, username=USER, password=password)],
    )
    store = AgentStore(tmp_path)
    key = Ed25519PrivateKey.generate()
    return Agent(settings, store, store.save_identity("dev-1", "https://127.0.0.1:9", key, None))


class _Refused(logging.Handler):
    """Sets ``seen`` when the agent logs that a camera could not be used yet."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "not usable" in record.getMessage():
            self.seen.set()


# spec: DEV-10
async def test_hello_before_the_camera_answers_is_tried_again(tmp_path: Path) -> None:
    """The Hello arrives while the ONVIF port still refuses connections; the camera is added
    once it answers, without waiting for the next probe round."""
    with socket.socket() as s:  # a free port for the camera that is not up yet
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    late = FakeOnvifCamera(
        username=USER, password=RIGHT, port=port, stream_uri="rtsp://127.0.0.1:9/x"
    )
    agent = _agent(tmp_path, late.xaddr, RIGHT)
    refused = _Refused()
    logging.getLogger("agent.app").addHandler(refused)
    hello = DiscoveredDevice("urn:uuid:late", (late.xaddr,), (), None, None)
    announced = asyncio.create_task(agent._on_announced(hello))
    try:
        await asyncio.wait_for(refused.seen.wait(), 10)  # the first try found nobody home
        assert agent.cameras == {}
        await late.start()
        await asyncio.wait_for(announced, 15)
        [cam] = agent.cameras.values()
        assert cam.desc.model != ""
    finally:
        logging.getLogger("agent.app").removeHandler(refused)
        announced.cancel()
        await agent.close()
        await late.stop()


# spec: DEV-1, DEV-10
async def test_camera_refusing_us_is_read_once_it_accepts_the_credentials(
    fake: FakeOnvifCamera, tmp_path: Path
) -> None:
    fake.password = WRONG  # the camera still has its old password: it refuses ours
    agent = _agent(tmp_path, fake.xaddr, RIGHT)
    watch = asyncio.create_task(agent.watch.run())
    try:
        assert await agent._add_camera(fake.xaddr)
        [cam] = agent.cameras.values()
        first_id = cam.local_id
        assert cam.health is not None
        await cam.health.wait_status("authentication_error", 10)
        assert cam.inventory().model == ""
        assert cam.media is None

        fake.password = RIGHT  # the installer fixed the camera's password
        await cam.health.wait_status("normal", 10)
        reread = agent._rereading.get(first_id)  # started by the status change, may be done
        if reread is not None:
            await asyncio.wait_for(reread, 10)
        assert list(agent.cameras) == [first_id]  # same camera, same id
        assert cam.inventory().model == cam.desc.model != ""
        assert cam.inventory().status == "normal"
        assert cam.media is not None  # its stream is pulled now
        assert any(c.startswith("imaging") for c in cam.controls)
    finally:
        watch.cancel()
        await agent.close()
