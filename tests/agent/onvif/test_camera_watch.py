"""Keeping cameras, against real ipycam cameras in the test site's network namespace: Hello/Bye
heard from the host, failure and recovery events when a camera is stopped and started, an
authentication error kept as a status, and devices matched once however they are found."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from agent.camera_watch import CameraWatch
from agent.onvif.announcements import Announcement, AnnouncementListener, parse_announcement
from agent.onvif.discovery import probe
from agent.onvif.models import DiscoveredDevice
from agent.store.spool import EventSpool
from tests.agent.onvif.onvif_site import PASSWORD, USER, CameraSite
from tests.peers.ipycam import IpycamProcess, start_ipycam

pytestmark = pytest.mark.netns

LATE_ONVIF_PORT, LATE_RTSP_PORT = 8280, 8754
WAIT_S = 15.0
#: Set whenever a watch reports a new device (tests wait on it instead of sleeping).
FOUND = asyncio.Event()


class Heard:
    """Announcements from the listener, awaitable by XAddr and kind (no sleeping)."""

    def __init__(self) -> None:
        self.items: list[Announcement] = []
        self._new = asyncio.Event()

    def __call__(self, announcement: Announcement, sender: str) -> None:
        self.items.append(announcement)
        self._new.set()

    async def wait(self, kind: str, xaddr: str) -> Announcement:
        async with asyncio.timeout(WAIT_S):
            while True:
                for a in self.items:
                    if a.kind == kind and (xaddr in a.device.xaddrs or kind == "bye"):
                        return a
                self._new.clear()
                await self._new.wait()


class Spool:
    """A real event spool as the watch's sink."""

    def __init__(self, path: Path) -> None:
        self.spool = EventSpool(
            sqlite_utils.Database(path), max_age_s=3600, max_bytes=10**7, clock=time.time
        )

    def __call__(self, kind: str, camera: str, payload: dict[str, Any]) -> int:
        return self.spool.append(kind, camera, payload)

    def kinds(self) -> list[tuple[str, str]]:
        return [(e.kind, e.camera) for e in self.spool.batch()]


@contextlib.asynccontextmanager
async def late_camera(site: CameraSite) -> AsyncIterator[IpycamProcess]:
    """A third camera started (and stopped) while the test runs; start-up waits in a thread."""
    manager = start_ipycam(
        site.netns, site.ns_ip, onvif_port=LATE_ONVIF_PORT, rtsp_port=LATE_RTSP_PORT,
        name="late camera",
    )  # fmt: skip
    cam = await asyncio.to_thread(manager.__enter__)
    try:
        yield cam
    finally:
        await asyncio.to_thread(manager.__exit__, None, None, None)


@pytest.fixture
def watch_factory(tmp_path: Path) -> Any:
    """CameraWatch objects with no event subscriptions (ipycam has no Events) and no mDNS."""

    def make(site: CameraSite, spool: Spool, found: list[DiscoveredDevice]) -> CameraWatch:
        async def on_found(device: DiscoveredDevice) -> None:
            found.append(device)
            FOUND.set()

        return CameraWatch(
            sink=spool, on_found=on_found, interfaces=[site.host_ip], check_interval_s=60,
            call_timeout_s=2, events=None, mdns=False,
        )  # fmt: skip

    return make


async def test_hello_and_bye_heard_from_a_camera_started_later(camera_site: CameraSite) -> None:
    # spec: DEV-10
    """A camera started after the agent announces itself (Hello with its XAddr) and says Bye
    when stopped; both are heard on the host's side of the link."""
    heard = Heard()
    listener = AnnouncementListener(heard, [camera_site.host_ip])
    await listener.start()
    try:
        async with late_camera(camera_site) as cam:
            hello = await heard.wait("hello", cam.xaddr)
        bye = await heard.wait("bye", "")
    finally:
        listener.close()
    assert hello.device.name == "late camera"
    assert bye.device.endpoint == hello.device.endpoint


async def test_unknown_camera_hello_goes_to_on_found(
    camera_site: CameraSite, tmp_path: Path, watch_factory: Any
) -> None:  # spec: DEV-10
    """The watch hands a new camera's Hello to the agent (which adds it and re-sends its
    inventory) without waiting for the next probe round."""
    found: list[DiscoveredDevice] = []
    watch: CameraWatch = watch_factory(camera_site, Spool(tmp_path / "s.db"), found)
    task = asyncio.create_task(watch.run())
    try:
        await asyncio.sleep(0)  # let run() bind the listener before the camera starts
        async with late_camera(camera_site) as cam:
            async with asyncio.timeout(WAIT_S):
                while not any(cam.xaddr in d.xaddrs for d in found):
                    FOUND.clear()
                    await FOUND.wait()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_failure_and_recovery_events_when_camera_stops_and_starts(
    camera_site: CameraSite, tmp_path: Path, watch_factory: Any
) -> None:  # spec: EVT-1
    """Stop the camera: its Bye makes a camera_failure event; start it again: its Hello wakes
    the check and camera_recovery follows — both in the spool, in that order."""
    spool = Spool(tmp_path / "e.db")
    watch: CameraWatch = watch_factory(camera_site, spool, [])
    xaddr = f"http://{camera_site.ns_ip}:{LATE_ONVIF_PORT}/onvif/device_service"
    task = asyncio.create_task(watch.run())
    try:
        async with late_camera(camera_site):
            health = watch.watch("late", xaddr, "", "")
            await health.wait_status("normal", WAIT_S, checks=1)
        await health.wait_status("communication_error", WAIT_S)
        assert spool.kinds() == [("camera_failure", "late")]
        async with late_camera(camera_site):
            await health.wait_status("normal", WAIT_S)
            recovered = spool.kinds()  # before the camera's stop says Bye again
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert recovered == [("camera_failure", "late"), ("camera_recovery", "late")]


async def test_wrong_password_is_an_authentication_error_not_a_failure(
    camera_site: CameraSite, tmp_path: Path, watch_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The camera is kept with status authentication_error; no failure event; the password
    appears in no log line."""
    spool = Spool(tmp_path / "a.db")
    watch: CameraWatch = watch_factory(camera_site, spool, [])
    wrong = PASSWORD + "-wrong"
    task = asyncio.create_task(watch.run())
    with caplog.at_level(logging.DEBUG):
        try:
            health = watch.watch("auth", camera_site.auth.xaddr, USER, wrong)
            await health.wait_status("authentication_error", WAIT_S)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert watch.status("auth") == "authentication_error"
    assert spool.kinds() == []
    assert all(wrong not in r.getMessage() for r in caplog.records)


async def test_two_cameras_found_and_matched_once(
    camera_site: CameraSite, tmp_path: Path, watch_factory: Any
) -> None:
    """Both site cameras answer a probe; once watched, every later answer (probe or Hello,
    endpoint or XAddr) maps to the one camera it is, so nothing is added twice."""
    found = await probe(timeout=0.8, interfaces=[camera_site.host_ip])
    assert len(found) == 2
    watch: CameraWatch = watch_factory(camera_site, Spool(tmp_path / "d.db"), [])
    for i, device in enumerate(found):
        watch.watch(f"cam{i}", device.xaddrs[0], "", "", endpoint=device.endpoint)
    again = await probe(timeout=0.8, interfaces=[camera_site.host_ip])
    assert sorted(watch.camera_of(d) or "" for d in again) == ["cam0", "cam1"]
    moved = DiscoveredDevice(found[0].endpoint, ("http://198.51.100.9/onvif",), (), None, None)
    assert watch.camera_of(moved) == "cam0"  # same endpoint reference, new address
    await watch.close()


def test_parse_hello_and_bye() -> None:
    """ipycam's Hello (as it sends it) and a Bye with only the endpoint reference."""
    hello = (
        b'<?xml version="1.0"?><soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"'
        b' xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing"'
        b' xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery"><soap:Header>'
        b"<wsa:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Hello</wsa:Action>"
        b"</soap:Header><soap:Body><d:Hello><d:EndpointReference><wsa:Address>urn:uuid:1"
        b"</wsa:Address></d:EndpointReference><d:Types>dn:NetworkVideoTransmitter</d:Types>"
        b"<d:Scopes>onvif://www.onvif.org/name/late%20camera</d:Scopes>"
        b"<d:XAddrs>http://203.0.113.2:8280/onvif/device_service</d:XAddrs></d:Hello>"
        b"</soap:Body></soap:Envelope>"
    )
    parsed = parse_announcement(hello)
    assert parsed is not None
    assert parsed.kind == "hello"
    assert parsed.device.xaddrs == ("http://203.0.113.2:8280/onvif/device_service",)
    bye = parse_announcement(hello.replace(b"d:Hello", b"d:Bye"))
    assert bye is not None
    assert bye.kind == "bye"
