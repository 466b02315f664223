"""PTZ, presets, home and device information through the real relay and agent, on ipycam.

The camera's own report (ONVIF GetStatus, read by the test straight from ipycam) is the judge:
an API call counts only when the camera's position changed accordingly.
"""

from __future__ import annotations

import asyncio
import time
import urllib.error
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from agent.onvif.control import ControlSession
from agent.onvif.models import PtzPosition
from tests.e2e.conftest import api, login
from tests.peers import stack

pytestmark = [pytest.mark.e2e, pytest.mark.netns]

NEAR = 0.03


def camera_position(xaddr: str) -> PtzPosition:
    """What ipycam reports (GetStatus), read by the test itself over ONVIF.

    In a thread of its own: Playwright's sync API keeps an event loop running in this one.
    """

    async def read() -> PtzPosition:
        sess = ControlSession(xaddr, "", "", timeout=5)
        try:
            return await sess.status()
        finally:
            await sess.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(read())).result()


def ptz_camera(relay: stack.Relay, token: str) -> dict[str, Any] | None:
    """The first online camera that reports PTZ, once the agent's inventory says so."""
    for device in api(relay, "GET", "/api/v1/devices", token=token)["devices"]:
        for cam in device["cameras"]:
            if device["online"] and cam["online"] and "ptz" in cam["capabilities"]:
                return dict(cam)
    return None


def wait_position(
    xaddr: str, check: Callable[[PtzPosition], bool], what: str, timeout: float = 10
) -> PtzPosition:
    """Poll the camera's reported position until ``check`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        pos = camera_position(xaddr)
        if check(pos):
            return pos
        assert time.monotonic() < deadline, f"camera never {what}: {pos}"
        time.sleep(0.05)


def at(pos: PtzPosition, pan: float, tilt: float, zoom: float) -> bool:
    """Within NEAR of the given position."""
    return all(abs(a - b) < NEAR for a, b in ((pos.pan, pan), (pos.tilt, tilt), (pos.zoom, zoom)))


def ptz_camera_at_home(
    relay: stack.Relay, xaddr: str, wait_until: Callable[..., Any]
) -> dict[str, Any]:
    """The PTZ camera as the API lists it, sent home and seen there by the camera itself: where
    every portal test that moves it starts."""
    token = login(relay)
    cam: dict[str, Any] = wait_until(lambda: ptz_camera(relay, token), 60, "the PTZ camera online")
    api(relay, "POST", f"/api/v1/cameras/{cam['id']}/ptz", {"action": "home"}, token)
    wait_position(xaddr, lambda p: at(p, 0, 0, 0), "at home before the test")
    return cam


@pytest.fixture
def ptz_cam(
    relay: stack.Relay, agent: stack.Proc, site: dict[str, str], wait_until: Callable[..., Any]
) -> dict[str, Any]:
    """The site camera (with PTZ) as the API lists it, plus a token and its xaddr."""
    token = login(relay)
    cam = wait_until(lambda: ptz_camera(relay, token), 60, "the PTZ camera online in /devices")
    return {**cam, "token": token, "xaddr": site["xaddr"]}


# spec: LIVE-5
def test_move_stop_and_home_through_the_api(relay: stack.Relay, ptz_cam: dict[str, Any]) -> None:
    """Continuous move pans the camera until stop; home brings it back to 0, 0, 0."""
    url, token, xaddr = f"/api/v1/cameras/{ptz_cam['id']}/ptz", ptz_cam["token"], ptz_cam["xaddr"]
    assert api(relay, "POST", url, {"action": "home"}, token) == {"ok": True}
    wait_position(xaddr, lambda p: at(p, 0, 0, 0), "at home")
    api(relay, "POST", url, {"action": "move", "pan": 0.5, "tilt": 0.3, "zoom": 0}, token)
    moved = wait_position(xaddr, lambda p: p.pan > 0.1 and p.tilt > 0.05, "moved up-right")
    api(relay, "POST", url, {"action": "stop"}, token)
    stopped = camera_position(xaddr)
    assert stopped.pan >= moved.pan
    later = time.monotonic() + 0.3  # a still camera over a few of its 60 Hz ticks
    while time.monotonic() < later:
        assert at(camera_position(xaddr), stopped.pan, stopped.tilt, stopped.zoom)
    api(relay, "POST", url, {"action": "centre", "x": 0.25, "y": 0.5}, token)
    wait_position(xaddr, lambda p: at(p, stopped.pan - 0.25, stopped.tilt, 0), "centred left")
    api(relay, "POST", url, {"action": "home"}, token)
    wait_position(xaddr, lambda p: at(p, 0, 0, 0), "back home")


# spec: LIVE-5
def test_presets_register_rename_goto(relay: stack.Relay, ptz_cam: dict[str, Any]) -> None:
    """Register preset 2 at a position, rename it (position kept), go home, go to preset 2."""
    base, token, xaddr = f"/api/v1/cameras/{ptz_cam['id']}", ptz_cam["token"], ptz_cam["xaddr"]
    api(relay, "POST", f"{base}/ptz", {"action": "home"}, token)
    api(
        relay,
        "POST",
        f"{base}/ptz",
        {"action": "area_zoom", "x": 0.5, "y": 0, "w": 0.5, "h": 0.5},
        token,
    )
    target = wait_position(xaddr, lambda p: at(p, 0.25, 0.25, 0.5), "zoomed to the top-right")
    listed = api(relay, "PUT", f"{base}/presets/2", {"name": "Gate"}, token)
    assert {"slot": 2, "name": "Gate"}.items() <= _slot(listed, 2).items()
    renamed = api(relay, "PATCH", f"{base}/presets/2", {"name": "Gate west"}, token)
    assert _slot(renamed, 2)["name"] == "Gate west"
    assert _slot(renamed, 1)["token"] == "home"  # ipycam's own home preset is number 1
    api(relay, "POST", f"{base}/ptz", {"action": "home"}, token)
    wait_position(xaddr, lambda p: at(p, 0, 0, 0), "at home")
    api(relay, "POST", f"{base}/presets/2/goto", None, token)
    wait_position(xaddr, lambda p: at(p, target.pan, target.tilt, target.zoom), "at preset 2")
    assert _slot(api(relay, "GET", f"{base}/presets", token=token), 2)["name"] == "Gate west"
    with pytest.raises(urllib.error.HTTPError) as missing:
        api(relay, "POST", f"{base}/presets/9/goto", None, token)
    assert missing.value.code == 404


def _slot(listing: dict[str, Any], n: int) -> dict[str, Any]:
    return next(p for p in listing["presets"] if p["slot"] == n)


# spec: DEV-1, CAM-3
def test_device_information_and_unsupported_imaging(
    relay: stack.Relay, ptz_cam: dict[str, Any], site: dict[str, str]
) -> None:
    """Camera and site information with status normal; imaging on ipycam is 409/90008."""
    token = ptz_cam["token"]
    detail = api(relay, "GET", f"/api/v1/cameras/{ptz_cam['id']}", token=token)
    assert detail["status"] == "normal"
    assert detail["device"]["address"] == site["camera_ip"]
    assert detail["device"]["model"] == "VirtualCam-1"
    assert {"ptz", "presets", "home"} <= set(detail["capabilities"])
    info = api(relay, "GET", f"/api/v1/devices/{detail['site']['id']}/information", token=token)
    assert info["status"] == "normal"
    assert info["hostname"]
    with pytest.raises(urllib.error.HTTPError) as err:
        api(relay, "GET", f"/api/v1/cameras/{ptz_cam['id']}/imaging", token=token)
    assert err.value.code == 409
    assert b"90008" in err.value.read()
