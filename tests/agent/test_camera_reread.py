"""A camera first added while it refused our credentials is read again, without an agent
restart, once it accepts them (the installer fixed the password on the camera): it gets its
description, stream and controls and keeps its id (DEV-1, DEV-10). Real agent code against the
FAKE ONVIF camera (tests/peers/fake_onvif_camera.py) on loopback; no relay is needed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.app import Agent
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


# spec: DEV-1, DEV-10
async def test_camera_refusing_us_is_read_once_it_accepts_the_credentials(
    fake: FakeOnvifCamera, tmp_path: Path
) -> None:
    fake.password = WRONG  # the camera still has its old password: it refuses ours
    settings = AgentSettings(
        data_dir=tmp_path,
        camera_check_interval_s=0.2,
        camera_events=False,
        mdns_discovery=False,
        cameras=[CameraOverride(xaddr=fake.xaddr, username=USER, password=RIGHT)],
    )
    store = AgentStore(tmp_path)
    identity = store.save_identity(
        "dev-1", "https://127.0.0.1:9", Ed25519PrivateKey.generate(), None
    )
    agent = Agent(settings, store, identity)
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
