"""Imaging (CAM-3, LIVE-4 brightness), focus and forced PTZ (LIVE-5) and camera restart (DEV-2)
through the real relay API and a real agent, against the FAKE ONVIF camera (no third-party peer
has Imaging or SystemReboot; TEST-PEERS.md).

The fake answers with a Hikvision DS-2CD2646G2-IZS's payloads and stores what it is told, so
each API call is judged by what the camera ended up with, not by the API's own answer. The
fake listens on 127.0.0.1 (no network namespace needed) and is named to the agent in its
settings, as an installer does for a camera discovery cannot reach.
"""

from __future__ import annotations

import json
import urllib.error
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.e2e.conftest import AGENT_ENV_FAST, EMAIL, PASSWORD, api, registered_agent
from tests.peers import stack
from tests.peers.fake_onvif_camera import FakeOnvifCamera, serving_in_thread

pytestmark = pytest.mark.e2e

CAM_USER, CAM_PASSWORD = "admin", "Fake-cam-e2e-5"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOnvifCamera]:
    """The fake camera with credentials, served from its own thread."""
    with serving_in_thread(FakeOnvifCamera(username=CAM_USER, password=CAM_PASSWORD)) as cam:
        yield cam


@pytest.fixture(scope="module")
def old_ptz() -> Iterator[FakeOnvifCamera]:
    """A second fake playing an old PTZ camera: it moves, but lists no PTZ (forced PTZ's case)."""
    with serving_in_thread(FakeOnvifCamera(model="axis_m3045-v", ptz="unadvertised")) as cam:
        yield cam


@pytest.fixture(scope="module")
def agent(
    relay: stack.Relay,
    fake: FakeOnvifCamera,
    old_ptz: FakeOnvifCamera,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[stack.Proc]:
    """A registered agent that knows both fakes from its settings."""
    cameras = [
        {"xaddr": fake.xaddr, "username": CAM_USER, "password": CAM_PASSWORD},
        {"xaddr": old_ptz.xaddr},
    ]
    env = {
        **AGENT_ENV_FAST,
        "RMON_AGENT_CAMERAS": json.dumps(cameras),
        "RMON_AGENT_DISCOVERY_INTERFACES": json.dumps(["127.0.0.1"]),
        "RMON_AGENT_MDNS_DISCOVERY": "false",
    }
    with registered_agent(relay, tmp_path_factory, env) as proc:
        yield proc


def _listed(relay: stack.Relay, agent: stack.Proc, model: str) -> dict[str, Any]:
    """The camera of ``model`` as the API lists it once its imaging fields are known."""
    import time

    login = {"email": EMAIL, "password": PASSWORD}
    token = api(relay, "POST", "/api/v1/auth/login", login)["token"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for device in api(relay, "GET", "/api/v1/devices", token=token)["devices"]:
            for camera in device["cameras"]:
                caps = camera["capabilities"]
                if device["online"] and camera["model"] == model and "imaging:brightness" in caps:
                    return {**camera, "device_id": device["id"], "token": token}
        time.sleep(0.2)  # the relay offers no push signal for inventory changes
    raise AssertionError(f"no {model} with imaging listed:\n{agent.log()[-3000:]}")


@pytest.fixture(scope="module")
def cam(relay: stack.Relay, agent: stack.Proc) -> dict[str, Any]:
    """The Hikvision fake as the API lists it, with a token."""
    return _listed(relay, agent, "DS-2CD2646G2-IZS")


@pytest.fixture(scope="module")
def old_cam(relay: stack.Relay, agent: stack.Proc) -> dict[str, Any]:
    """The old PTZ fake as the API lists it, with a token."""
    return _listed(relay, agent, "M3045-V")


def _imaging(relay: stack.Relay, cam: dict[str, Any], body: Any = None) -> dict[str, Any]:
    method = "PATCH" if body is not None else "GET"
    result: dict[str, Any] = api(
        relay, method, f"/api/v1/cameras/{cam['id']}/imaging", body, cam["token"]
    )
    return result


def _error(call: Callable[[], Any]) -> tuple[int, str]:
    with pytest.raises(urllib.error.HTTPError) as err:
        call()
    return err.value.code, err.value.read().decode()


# spec: CAM-3, LIVE-4
def test_brightness_plus_minus_reset_changes_the_camera(
    relay: stack.Relay, fake: FakeOnvifCamera, cam: dict[str, Any]
) -> None:
    """The portal's buttons as API calls: + and - a tenth of the range, reset to the middle."""
    state = _imaging(relay, cam)
    assert state["values"]["brightness"] == 50
    low, high = state["ranges"]["brightness"]["min"], state["ranges"]["brightness"]["max"]
    step = (high - low) / 10
    up = _imaging(relay, cam, {"brightness": state["values"]["brightness"] + step})
    assert up["values"]["brightness"] == 60
    assert fake.imaging_value("Brightness") == "60.0"
    down = _imaging(relay, cam, {"brightness": up["values"]["brightness"] - 2 * step})
    assert fake.imaging_value("Brightness") == "40.0"
    assert down["values"]["brightness"] == 40
    _imaging(relay, cam, {"brightness": (low + high) / 2})
    assert fake.imaging_value("Brightness") == "50.0"


# spec: CAM-3
def test_cam3_fields_the_camera_offers_are_set(
    relay: stack.Relay, fake: FakeOnvifCamera, cam: dict[str, Any]
) -> None:
    """Gain, sharpness, noise/WDR, backlight, exposure, day/night: each stored by the camera;
    a value outside its range or a mode it does not list changes nothing."""
    offered = _imaging(relay, cam)
    assert {"gain", "sharpness", "wdr_level", "wide_dynamic_range", "backlight_compensation",
            "exposure_mode", "exposure_time", "ir_cut_filter", "focus_mode"} <= set(
        offered["values"])  # fmt: skip
    assert "ON" in offered["modes"]["ir_cut_filter"]
    patch = {"gain": 30, "sharpness": 70, "wide_dynamic_range": "ON", "wdr_level": 80,
             "backlight_compensation": "ON", "exposure_mode": "MANUAL", "exposure_time": 10000,
             "ir_cut_filter": "OFF"}  # fmt: skip
    after = _imaging(relay, cam, patch)
    assert {k: after["values"][k] for k in patch} == patch
    stored = {
        "Exposure/Gain": "30.0", "Sharpness": "70.0", "WideDynamicRange/Mode": "ON",
        "WideDynamicRange/Level": "80.0", "BacklightCompensation/Mode": "ON",
        "Exposure/Mode": "MANUAL", "Exposure/ExposureTime": "10000.0", "IrCutFilter": "OFF",
    }  # fmt: skip
    assert {path: fake.imaging_value(path) for path in stored} == stored
    status, body = _error(lambda: _imaging(relay, cam, {"sharpness": 500}))
    assert status == 502
    assert "90010" in body
    status, _ = _error(lambda: _imaging(relay, cam, {"ir_cut_filter": "SOMETIMES"}))
    assert status == 400
    assert fake.imaging_value("Sharpness") == "70.0"
    assert fake.imaging_value("IrCutFilter") == "OFF"


# spec: LIVE-5, CAM-3
def test_focus_far_near_and_auto(
    relay: stack.Relay, fake: FakeOnvifCamera, cam: dict[str, Any]
) -> None:
    """Hold far, release, hold near, release, then auto: the lens got each move and stop."""
    assert "focus" in cam["capabilities"]
    url = f"/api/v1/cameras/{cam['id']}/ptz"
    moves, stops = len(fake.focus_moves), fake.focus_stops
    for mode in ("far", "near"):
        assert api(relay, "POST", url, {"action": "focus", "mode": mode}, cam["token"])["ok"]
        api(relay, "POST", url, {"action": "stop"}, cam["token"])
    assert fake.focus_moves[moves:] == [0.5, -0.5]
    assert fake.focus_stops == stops + 2
    api(relay, "POST", url, {"action": "focus", "mode": "auto"}, cam["token"])
    assert fake.imaging_value("Focus/AutoFocusMode") == "AUTO"


# spec: DEV-2
def test_camera_restart_command_reaches_the_camera(
    relay: stack.Relay,
    fake: FakeOnvifCamera,
    cam: dict[str, Any],
    wait_until: Callable[..., Any],
) -> None:
    """POST a restart for the camera: the command ends done and the camera got SystemReboot."""
    body = {"kind": "restart", "args": {"camera": cam["id"]}}
    command = api(relay, "POST", f"/api/v1/devices/{cam['device_id']}/commands", body, cam["token"])
    url = f"/api/v1/commands/{command['id']}"

    def finished() -> dict[str, Any] | None:
        row: dict[str, Any] = api(relay, "GET", url, token=cam["token"])
        return row if row["finished_at"] else None

    done = wait_until(finished, 30, "the restart command to finish")
    assert done["state"] == "done", done
    assert fake.reboots == 1


# spec: LIVE-5
def test_forced_ptz_moves_an_old_camera_that_reports_no_ptz(
    relay: stack.Relay, old_ptz: FakeOnvifCamera, old_cam: dict[str, Any], cam: dict[str, Any]
) -> None:
    """Manual 5.3.12: without forcing, PTZ is refused as unsupported; with forced PTZ on, move,
    stop, home and click-to-centre reach the camera; a camera without PTZ still refuses."""
    assert "ptz" not in old_cam["capabilities"]
    url, token = f"/api/v1/cameras/{old_cam['id']}/ptz", old_cam["token"]
    move = {"action": "move", "pan": 0.5, "tilt": 0, "zoom": 0}
    status, body = _error(lambda: api(relay, "POST", url, move, token))
    assert (status, "90008" in body) == (409, True)
    assert old_ptz.ptz_calls == []
    for action in (move, {"action": "stop"}, {"action": "home"},
                   {"action": "centre", "x": 0.25, "y": 0.5}):  # fmt: skip
        assert api(relay, "POST", url, {**action, "forced": True}, token) == {"ok": True}
    assert old_ptz.ptz_calls == ["ContinuousMove", "Stop", "GotoHomePosition", "RelativeMove"]
    plain = f"/api/v1/cameras/{cam['id']}/ptz"
    status, body = _error(lambda: api(relay, "POST", plain, {**move, "forced": True}, token))
    assert (status, "90008" in body) == (409, True)
