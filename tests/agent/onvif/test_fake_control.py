"""Imaging, focus, reboot and system log against the FAKE camera's real devices' payloads.

ipycam has none of these (TEST-PEERS.md), so the fake (``tests/peers/fake_onvif_camera.py``)
answers with the goldens of a Hikvision DS-2CD2646G2-IZS (motorised lens) and an Axis M3045-V
(fixed lens). Each test checks what the fake stored or saw, not only what the agent says.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from agent.onvif import soap
from agent.onvif.client import read_camera, system_reboot
from agent.onvif.control import ControlSession
from agent.onvif.errors import OnvifProtocolError, OnvifUnsupported
from tests.peers.fake_onvif_camera import FakeOnvifCamera

USER, PASSWORD = "admin", "Fake-cam-pass-7"


@pytest.fixture
async def hikvision() -> AsyncIterator[FakeOnvifCamera]:
    cam = FakeOnvifCamera(username=USER, password=PASSWORD)
    await cam.start()
    yield cam
    await cam.stop()


@pytest.fixture
async def session(hikvision: FakeOnvifCamera) -> AsyncIterator[ControlSession]:
    sess = ControlSession(hikvision.xaddr, USER, PASSWORD, timeout=5)
    yield sess
    await sess.close()


async def test_read_camera_gets_identity_and_profiles(hikvision: FakeOnvifCamera) -> None:
    # spec: DEV-1
    desc = await read_camera(hikvision.xaddr, USER, PASSWORD, timeout=5)
    assert (desc.manufacturer, desc.model) == ("HIKVISION", "DS-2CD2646G2-IZS")
    assert desc.serial_number.startswith("DS-2CD2646G2-IZS2022")
    assert [p.token for p in desc.profiles] == ["Profile_1", "Profile_2"]
    assert desc.profiles[0].stream_uri.startswith("rtsp://127.0.0.1:554/Streaming/Channels/101")


async def test_capabilities_list_the_cam3_fields_and_focus(session: ControlSession) -> None:
    # spec: CAM-3
    caps = await session.capabilities()
    assert caps.focus
    assert not caps.ptz
    assert {"brightness", "sharpness", "gain", "wdr_level", "backlight_compensation",
            "exposure_mode", "ir_cut_filter", "focus_mode"} <= set(caps.imaging_fields)  # fmt: skip


async def test_set_imaging_is_stored_and_checked(
    hikvision: FakeOnvifCamera, session: ControlSession
) -> None:
    # spec: CAM-3
    state = await session.set_imaging({"brightness": 60.0, "ir_cut_filter": "ON", "gain": 20.0})
    assert state.values["brightness"] == 60.0
    assert hikvision.imaging_value("Brightness") == "60.0"
    assert hikvision.imaging_value("IrCutFilter") == "ON"
    assert hikvision.imaging_value("Exposure/Gain") == "20.0"
    assert hikvision.imaging_value("Exposure/Mode") == "AUTO"  # the group's mode was kept
    with pytest.raises(OnvifProtocolError, match="incorrect"):
        await session.set_imaging({"brightness": 160.0})
    assert hikvision.imaging_value("Brightness") == "60.0"


async def test_focus_far_near_stop_and_auto(
    hikvision: FakeOnvifCamera, session: ControlSession
) -> None:
    # spec: CAM-3, LIVE-5
    await session.focus("far")
    await session.focus("near")
    await session.stop()
    assert hikvision.focus_moves == [0.5, -0.5]
    assert hikvision.focus_stops == 1
    await session.focus("auto")
    assert hikvision.imaging_value("Focus/AutoFocusMode") == "AUTO"


async def test_fixed_lens_has_no_focus_moves() -> None:
    # spec: CAM-3
    cam = FakeOnvifCamera(model="axis_m3045-v")
    await cam.start()
    sess = ControlSession(cam.xaddr, "", "", timeout=5)
    try:
        caps = await sess.capabilities()
        assert not caps.focus
        assert "focus_mode" not in caps.imaging_fields
        assert "wdr_level" not in caps.imaging_fields  # the Axis has a WDR mode, no level
        with pytest.raises(OnvifUnsupported):
            await sess.focus("far")
    finally:
        await sess.close()
        await cam.stop()
    assert cam.focus_moves == []


async def test_system_reboot_and_system_log(hikvision: FakeOnvifCamera) -> None:
    # spec: DEV-2, DEV-8
    message = await system_reboot(hikvision.xaddr, USER, PASSWORD, timeout=5)
    assert message == "Rebooting in 30 seconds"
    assert hikvision.reboots == 1
    async with soap.bounded_session(5) as http:
        answer = await soap.call(
            http,
            soap.Endpoint(hikvision.xaddr),
            "http://www.onvif.org/ver10/device/wsdl/GetSystemLog",
            '<tds:GetSystemLog xmlns:tds="http://www.onvif.org/ver10/device/wsdl">'
            "<tds:LogType>System</tds:LogType></tds:GetSystemLog>",
            soap.Credentials(USER, PASSWORD),
            timeout=5,
        )
    assert "Network Disconnected" in (soap.first_text(answer, "String") or "")
    assert hikvision.log_reads == 1


async def test_forced_ptz_reaches_an_old_camera_that_lists_no_ptz() -> None:
    # spec: LIVE-5
    """Without forcing, no PTZ; forced, the calls go to the device service URL and the camera
    carries them out; a camera without PTZ refuses even when forced."""
    old = FakeOnvifCamera(model="axis_m3045-v", ptz="unadvertised")
    plain = FakeOnvifCamera()
    for cam in (old, plain):
        await cam.start()
    sessions = [ControlSession(c.xaddr, "", "", timeout=5) for c in (old, plain)]
    try:
        assert not (await sessions[0].capabilities()).ptz
        with pytest.raises(OnvifUnsupported):
            await sessions[0].continuous_move(0.5, 0, 0)
        await sessions[0].continuous_move(0.5, 0, 0, forced=True)
        await sessions[0].stop(forced=True)
        await sessions[0].goto_home(forced=True)
        await sessions[0].relative_move(0.1, 0, 0, forced=True)
        assert old.ptz_calls == ["ContinuousMove", "Stop", "GotoHomePosition", "RelativeMove"]
        with pytest.raises(OnvifUnsupported):
            await sessions[1].continuous_move(0.5, 0, 0, forced=True)
    finally:
        for sess in sessions:
            await sess.close()
        for cam in (old, plain):
            await cam.stop()
