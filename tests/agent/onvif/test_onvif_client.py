"""read_camera and fetch_snapshot against real ipycam cameras in a network namespace."""

from __future__ import annotations

import gc
import io
import logging
import time
import warnings

import av
import pytest

from agent.onvif.client import fetch_snapshot, read_camera
from agent.onvif.errors import OnvifAuthError, OnvifError, OnvifUnreachable
from tests.agent.onvif.onvif_site import PASSWORD, USER, CameraSite

pytestmark = pytest.mark.netns

WRONG_PASSWORD = "Wx3-wrong-camera-pass"


def _chain_text(err: BaseException) -> str:
    """Text of an exception and all its causes, as a log line with a traceback would show."""
    parts = []
    seen: BaseException | None = err
    while seen is not None:
        parts += [repr(seen), str(seen)]
        seen = seen.__cause__ or seen.__context__
    return "\n".join(parts)


async def test_read_camera_returns_identity_and_both_profiles(camera_site: CameraSite) -> None:
    """Identity from GetDeviceInformation, main and sub profiles with RTSP and snapshot URIs."""
    cam = camera_site.open
    desc = await read_camera(cam.xaddr, "", "", timeout=10)
    assert (desc.xaddr, desc.manufacturer, desc.model) == (cam.xaddr, "PythonCam", "VirtualCam-1")
    assert desc.serial_number == "DEMO-" + cam.xaddr.split("//")[1].split("/")[0].replace(":", "-")
    assert desc.firmware_version
    assert desc.hardware_id
    assert desc.mac is None  # ipycam: GetNetworkInterfaces is "Action not supported"
    main, sub = desc.profiles
    assert (main.encoding, main.width, main.height, main.fps) == ("H264", 640, 360, 15.0)
    assert (sub.encoding, sub.width, sub.height) == ("H264", 320, 180)
    assert (main.stream_uri, sub.stream_uri) == (cam.rtsp_main, cam.rtsp_sub)
    assert main.snapshot_uri == sub.snapshot_uri == cam.snapshot_uri


async def test_snapshot_is_a_decodable_jpeg_of_moving_video(camera_site: CameraSite) -> None:
    """The snapshot URI gives a JPEG PyAV decodes at 640x360, and it changes as frames go by."""
    uri = camera_site.open.snapshot_uri
    jpeg = await fetch_snapshot(uri, "", "", timeout=5)
    assert jpeg.startswith(b"\xff\xd8\xff")
    with av.open(io.BytesIO(jpeg), "r") as container:
        frame = next(container.decode(video=0))
    assert (frame.width, frame.height) == (640, 360)
    deadline = time.monotonic() + 3  # 15 fps: the next frame differs within ~70 ms
    while await fetch_snapshot(uri, "", "", timeout=5) == jpeg:
        assert time.monotonic() < deadline, "snapshot never changed"


async def test_auth_camera_with_right_credentials(camera_site: CameraSite) -> None:
    """WS-UsernameToken digest for ONVIF and HTTP Basic (answering the 401) for the snapshot."""
    cam = camera_site.auth
    desc = await read_camera(cam.xaddr, USER, PASSWORD, timeout=10)
    assert [p.width for p in desc.profiles] == [640, 320]
    jpeg = await fetch_snapshot(desc.profiles[0].snapshot_uri, USER, PASSWORD, timeout=5)
    assert jpeg.startswith(b"\xff\xd8\xff")


async def test_wrong_password_is_an_auth_error_that_never_shows_it(
    camera_site: CameraSite, caplog: pytest.LogCaptureFixture
) -> None:
    """401 + "Sender not authorized" is OnvifAuthError; the password is in no text or log."""
    caplog.set_level(logging.DEBUG)  # every library's debug output included
    cam = camera_site.auth
    with pytest.raises(OnvifAuthError) as onvif_err:
        await read_camera(cam.xaddr, USER, WRONG_PASSWORD, timeout=10)
    with pytest.raises(OnvifAuthError) as snap_err:
        await fetch_snapshot(cam.snapshot_uri, USER, WRONG_PASSWORD, timeout=5)
    for err in (onvif_err.value, snap_err.value):
        assert cam.xaddr.split("/onvif")[0] in str(err)  # says which camera
        for secret in (WRONG_PASSWORD, PASSWORD):
            assert secret not in _chain_text(err)
            assert secret not in caplog.text


async def test_no_credentials_on_auth_camera_is_an_auth_error(camera_site: CameraSite) -> None:
    """Empty strings (never None) reach the camera and are refused like a wrong password."""
    with pytest.raises(OnvifAuthError):
        await read_camera(camera_site.auth.xaddr, "", "", timeout=10)
    with pytest.raises(OnvifAuthError):
        await fetch_snapshot(camera_site.auth.snapshot_uri, "", "", timeout=5)


async def test_silent_address_is_unreachable_within_the_timeout(camera_site: CameraSite) -> None:
    """Nobody holds the address (ARP goes unanswered): OnvifUnreachable at the deadline."""
    xaddr = f"http://{camera_site.silent_ip}:8080/onvif/device_service"
    started = time.monotonic()
    with pytest.raises(OnvifUnreachable, match="no answer within 1 s"):
        await read_camera(xaddr, USER, PASSWORD, timeout=1.0)
    assert time.monotonic() - started < 2.0


async def test_no_unclosed_sessions_left_behind(
    camera_site: CameraSite, caplog: pytest.LogCaptureFixture
) -> None:
    """Success and failure both close the zeep/aiohttp sessions (no ResourceWarning, no log)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        await read_camera(camera_site.open.xaddr, "", "", timeout=10)
        with pytest.raises(OnvifError):
            await read_camera(camera_site.auth.xaddr, USER, WRONG_PASSWORD, timeout=10)
        await fetch_snapshot(camera_site.open.snapshot_uri, "", "", timeout=5)
        gc.collect()
    unclosed = [w for w in caught if "nclosed" in str(w.message)]
    assert not unclosed
    assert "nclosed" not in caplog.text
