"""ONVIF events: the topic parsers on four vendors' captures, the hardened SOAP parser, and the
PullPoint loop end to end against the fake camera (tests/peers/fake_onvif_camera.py) into a
real event spool."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from agent.onvif import soap
from agent.onvif.errors import OnvifAuthError, OnvifProtocolError
from agent.onvif.event_parsers import (
    CAMERA_SITE_ALARM,
    parse_pull_response,
    parse_soap,
)
from agent.onvif.events import EventSubscriber, SubscriberSettings
from agent.store.spool import EventSpool
from tests.peers.fake_onvif_camera import GOLDEN, HOSTILE, VENDORS, FakeOnvifCamera

FAST = SubscriberSettings(
    subscription_s=60, pull_timeout_s=0.5, call_timeout_s=2, backoff_min_s=0.05, backoff_max_s=0.2
)


def _golden(name: str) -> bytes:
    return (GOLDEN / f"{name}.xml").read_bytes()


def _summary(name: str) -> list[tuple[str, bool | None, str]]:
    return [(e.kind, e.state, e.operation) for e in parse_pull_response(_golden(name))]


# --- parsers on vendors' captures ---------------------------------------------------------------


def test_axis_events() -> None:  # spec: EVT-1
    """Axis tnsaxis: topics: PIR, VMD4 (per-profile suffix), I/O port, tampering, audio level."""
    assert _summary("axis_m3045-v_pull_messages") == [
        ("camera_human", False, "Initialized"),
        (CAMERA_SITE_ALARM, None, "Initialized"),  # Device/Status/SystemReady: unknown topic
        ("camera_human", True, "Changed"),
        ("camera_motion", True, "Changed"),
        ("camera_digital_input", True, "Changed"),
        ("camera_tamper", True, "Changed"),
        ("camera_audio", True, "Changed"),
    ]


def test_hikvision_events() -> None:  # spec: EVT-1
    """Hikvision rule-engine topics; a line crossing (unknown, a pulse) has no state."""
    assert _summary("hikvision_ds-2cd2143g0-i_pull_messages") == [
        ("camera_motion", True, "Changed"),
        ("camera_tamper", True, "Changed"),
        ("camera_digital_input", True, "Changed"),
        ("camera_human", True, "Changed"),
        (CAMERA_SITE_ALARM, None, "Changed"),
        ("camera_motion", False, "Changed"),
    ]


def test_dahua_events() -> None:  # spec: EVT-1
    """Dahua: MotionAlarm with its Initialized dump, scene change as tamper, sound, SD card."""
    assert _summary("dahua_ipc-hdw2431t_pull_messages") == [
        ("camera_motion", False, "Initialized"),
        ("camera_motion", True, "Changed"),
        ("camera_tamper", True, "Changed"),
        ("camera_audio", True, "Changed"),
        ("camera_storage", True, "Changed"),
    ]


def test_hanwha_events() -> None:  # spec: EVT-1
    """Hanwha: cell motion, sound, tamper, blur (tamper), alarm input, relay (command alarm)."""
    assert _summary("hanwha_xnv-8080r_pull_messages") == [
        ("camera_motion", True, "Changed"),
        ("camera_audio", True, "Changed"),
        ("camera_tamper", True, "Changed"),
        ("camera_tamper", True, "Changed"),
        ("camera_digital_input", True, "Changed"),
        ("camera_command_alarm", True, "Changed"),
    ]


def test_event_payload_carries_time_topic_and_items() -> None:  # spec: EVT-1
    """The spooled payload: class, state, normalised topic, camera time, source and data."""
    event = parse_pull_response(_golden("hikvision_ds-2cd2143g0-i_pull_messages"))[0]
    assert event.payload() == {
        "class": CAMERA_SITE_ALARM,
        "state": True,
        "topic": "RuleEngine/CellMotionDetector/Motion",
        "camera_time": "2024-03-11T18:21:14+00:00",
        "operation": "Changed",
        "source": {
            "VideoSourceConfigurationToken": "VideoSourceToken",
            "VideoAnalyticsConfigurationToken": "VideoAnalyticsToken",
            "Rule": "MyMotionDetectorRule",
        },
        "data": {"IsMotion": "true"},
    }


def test_unknown_topic_logged_once_with_payload(caplog: pytest.LogCaptureFixture) -> None:
    """An unknown topic is an event (camera site alarm) and is logged once, with its XML."""
    body = _golden("hikvision_ds-2cd2143g0-i_pull_messages").replace(
        b"LineDetector/Crossed", b"LineDetector/NeverSeenBefore"
    )
    with caplog.at_level(logging.INFO, logger="agent.onvif.event_parsers"):
        parse_pull_response(body)
        parse_pull_response(body)
    lines = [r.getMessage() for r in caplog.records if "NeverSeenBefore" in r.getMessage()]
    assert len(lines) == 1
    assert "MyLineDetector1" in lines[0]


# --- hostile SOAP -------------------------------------------------------------------------------


@pytest.mark.parametrize("attack", sorted(HOSTILE))
def test_hostile_bodies_refused_fast(attack: str) -> None:
    """XXE, entity expansion and a 10 MB body are refused, each well within 2 s."""
    start = time.monotonic()
    with pytest.raises(OnvifProtocolError):
        parse_soap(HOSTILE[attack])
    assert time.monotonic() - start < 2.0


def test_doctype_hidden_by_utf16_still_refused() -> None:
    """A DTD the byte check cannot see (UTF-16) is refused after parsing, unexpanded."""
    body = HOSTILE["xxe"].replace(b'version="1.0"', b'version="1.0" encoding="UTF-16"')
    with pytest.raises(OnvifProtocolError):
        parse_soap(body.decode().encode("utf-16"))


# --- the PullPoint loop against the fake camera -------------------------------------------------


class SpoolSink:
    """A real event spool, with a way to wait for N events without sleeping."""

    def __init__(self, path: Path) -> None:
        self.spool = EventSpool(
            sqlite_utils.Database(path), max_age_s=3600, max_bytes=10**7, clock=time.time
        )
        self._grew = asyncio.Event()

    def __call__(self, kind: str, camera: str, payload: dict[str, Any]) -> int:
        seq = self.spool.append(kind, camera, payload)
        self._grew.set()
        return seq

    async def wait_for(self, count: int, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.spool) < count:
                self._grew.clear()
                await self._grew.wait()


@pytest.fixture
async def axis() -> AsyncIterator[FakeOnvifCamera]:
    cam = FakeOnvifCamera(vendor="axis")
    await cam.start()
    yield cam
    await cam.stop()


async def _running(sub: EventSubscriber) -> asyncio.Task[None]:
    return asyncio.create_task(sub.run())


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_pullpoint_events_land_in_spool_in_order(
    axis: FakeOnvifCamera, tmp_path: Path
) -> None:  # spec: EVT-1
    """Axis's pull answer then Hikvision's: every event spooled in order with camera id and
    kind; inactive Initialized dumps are not events; Axis's SubscriptionId is echoed."""
    sink = SpoolSink(tmp_path / "a.db")
    sub = EventSubscriber("cam-1", axis.xaddr, "", "", sink, settings=FAST)
    axis.push("axis_m3045-v_pull_messages")
    axis.push("hikvision_ds-2cd2143g0-i_pull_messages")
    task = await _running(sub)
    try:
        await sink.wait_for(5 + 6)
    finally:
        await _stop(task)
    events = sink.spool.batch()
    assert [e.seq for e in events] == sorted(e.seq for e in events)
    assert {e.camera for e in events} == {"cam-1"}
    assert [e.kind for e in events][:5] == [
        "camera_human",
        "camera_motion",
        "camera_digital_input",
        "camera_tamper",
        "camera_audio",
    ]
    assert events[1].payload["camera_time"] == "2024-03-11T10:21:16.102331+00:00"
    assert events[5].kind == "camera_motion"  # Hikvision's answer came second
    assert "1" in axis.echoed_ids
    assert axis.unsubscribes == 1


async def test_dropped_subscription_is_resubscribed(
    axis: FakeOnvifCamera, tmp_path: Path
) -> None:  # spec: EVT-1
    """The camera forgets the subscription (a reboot): the loop subscribes again and the next
    events still arrive."""
    sink = SpoolSink(tmp_path / "b.db")
    sub = EventSubscriber("cam-2", axis.xaddr, "", "", sink, settings=FAST)
    axis.push("dahua_ipc-hdw2431t_pull_messages")
    task = await _running(sub)
    try:
        await sink.wait_for(4)
        axis.drop_subscriptions()
        await axis.wait_until(lambda: axis.creates >= 2)
        axis.push("hanwha_xnv-8080r_pull_messages")
        await sink.wait_for(4 + 6)
    finally:
        await _stop(task)
    assert sub.subscriptions_created == 2
    assert [e.kind for e in sink.spool.batch()][4:] == [
        "camera_motion",
        "camera_audio",
        "camera_tamper",
        "camera_tamper",
        "camera_digital_input",
        "camera_command_alarm",
    ]


async def test_subscription_renewed_before_it_ends(axis: FakeOnvifCamera, tmp_path: Path) -> None:
    """With a 1 s subscription the loop renews at 80 % and keeps the same subscription."""
    settings = SubscriberSettings(subscription_s=1, pull_timeout_s=0.5, call_timeout_s=2)
    sub = EventSubscriber(
        "cam-3", axis.xaddr, "", "", SpoolSink(tmp_path / "c.db"), settings=settings
    )
    task = await _running(sub)
    try:
        await axis.wait_until(lambda: axis.renews >= 2)
    finally:
        await _stop(task)
    assert axis.creates == 1


async def test_camera_clock_two_hours_off(tmp_path: Path) -> None:
    """A camera whose clock is 2 h ahead: the token's Created follows its clock, events flow."""
    cam = FakeOnvifCamera(vendor="hanwha", username="op", password="pw-1", clock_offset_s=7200)
    await cam.start()
    sink = SpoolSink(tmp_path / "d.db")
    sub = EventSubscriber("cam-4", cam.xaddr, "op", "pw-1", sink, settings=FAST)
    cam.push("hanwha_xnv-8080r_pull_messages")
    task = await _running(sub)
    try:
        await sink.wait_for(6)
    finally:
        await _stop(task)
        await cam.stop()


async def test_wrong_credentials_are_an_auth_error(tmp_path: Path) -> None:
    """The camera's NotAuthorized fault becomes OnvifAuthError; the loop keeps backing off."""
    cam = FakeOnvifCamera(vendor="dahua", username="op", password="right")
    await cam.start()
    try:
        async with soap.bounded_session(2) as session:
            with pytest.raises(OnvifAuthError):
                await soap.call(
                    session,
                    soap.Endpoint(cam.xaddr),
                    "x/GetDeviceInformation",
                    '<tds:GetDeviceInformation xmlns:tds="http://www.onvif.org/ver10/device/wsdl"/>',
                    soap.Credentials("op", "wrong"),
                    timeout=2,
                )
    finally:
        await cam.stop()


@pytest.mark.parametrize("attack", sorted(HOSTILE))
async def test_hostile_camera_refused_and_agent_keeps_serving(
    attack: str, axis: FakeOnvifCamera
) -> None:
    """A camera answering with an attack: the call fails within 2 s as a protocol error, and
    the next call to a sane camera from the same loop works."""
    evil = FakeOnvifCamera(hostile=attack)
    await evil.start()
    body = '<tds:GetDeviceInformation xmlns:tds="http://www.onvif.org/ver10/device/wsdl"/>'
    try:
        async with soap.bounded_session(5) as session:
            start = time.monotonic()
            with pytest.raises(OnvifProtocolError):
                await soap.call(session, soap.Endpoint(evil.xaddr), "x", body, None, timeout=5)
            assert time.monotonic() - start < 2.0
            root = await soap.call(session, soap.Endpoint(axis.xaddr), "x", body, None, timeout=5)
            assert soap.first_text(root, "Manufacturer") == "HIKVISION"
    finally:
        await evil.stop()


@pytest.mark.parametrize("attack", sorted(HOSTILE))
async def test_hostile_camera_refused_by_the_zeep_client(attack: str) -> None:
    """The same attacks against onvif-zeep-async's path (read_camera): an OnvifError in 2 s."""
    from agent.onvif.client import read_camera

    evil = FakeOnvifCamera(hostile=attack)
    await evil.start()
    try:
        start = time.monotonic()
        with pytest.raises(OnvifProtocolError) as caught:
            await read_camera(evil.xaddr, "", "", timeout=5)
        assert time.monotonic() - start < 2.0
        # refused by our limits (agent/onvif/_limits.py), not merely failing later on
        assert "DTDForbidden" in str(caught.value) or "bytes refused" in str(caught.value)
    finally:
        await evil.stop()


def test_vendors_have_their_goldens() -> None:
    """At least three vendors' create and pull captures exist for the fake to serve."""
    for prefix in VENDORS.values():
        assert (GOLDEN / f"{prefix}_create_pullpoint_subscription.xml").exists()
        assert (GOLDEN / f"{prefix}_pull_messages.xml").exists()
