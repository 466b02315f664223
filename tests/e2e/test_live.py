"""The walking skeleton end to end: register a site, watch its camera live in a real browser."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import EMAIL, agent_env, api, login, portal_login
from tests.peers import stack

pytestmark = [pytest.mark.e2e, pytest.mark.netns]

FRAMES_JS = "() => { const v = document.querySelector('#single-video');"
FRAMES_JS += " return v ? v.getVideoPlaybackQuality().totalVideoFrames : 0; }"


def _online_camera(relay: stack.Relay, token: str) -> dict[str, Any] | None:
    """The first online camera of an online site, if any."""
    for device in api(relay, "GET", "/api/v1/devices", token=token)["devices"]:
        if device["online"]:
            for cam in device["cameras"]:
                if cam["online"]:
                    return dict(cam)
    return None


def _wait_frames(page: Any, above: int, timeout_s: float) -> int:
    """Poll the decoded-frame counter until it passes ``above``.

    Not ``wait_for_function``: that evaluates a string in the page, which the portal's CSP
    (no 'unsafe-eval') rightly refuses, and the test must run under the real CSP.
    """
    deadline = time.monotonic() + timeout_s
    frames = 0
    while time.monotonic() < deadline:
        frames = int(page.evaluate(FRAMES_JS))
        if frames > above:
            return frames
        page.wait_for_timeout(100)
    raise AssertionError(f"decoded frames stayed at {frames} (wanted > {above}) for {timeout_s} s")


def _watch_live(browser: Any, relay: stack.Relay, camera_id: str) -> None:
    """Log in through the portal, open the camera, and see decoded frames grow within 10 s."""
    context = browser.new_context(ignore_https_errors=True)
    page = context.new_page()
    try:
        portal_login(page, relay)
        tile = page.locator(f'.camera-tile[data-camera-id="{camera_id}"]')
        tile.wait_for(timeout=15_000)
        tile.click()
        page.wait_for_selector("#single-video", timeout=5_000)
        first = _wait_frames(page, above=0, timeout_s=10)
        _wait_frames(page, above=first + 5, timeout_s=10)
    finally:
        context.close()


# spec: DEV-10, LIVE-4
def test_register_and_watch_live_then_survive_relay_restart(
    relay: stack.Relay, agent: stack.Proc, browser: Any, wait_until: Callable[..., Any]
) -> None:
    """Site registered with email+password shows its camera live; a relay crash heals itself."""
    token = login(relay)
    cam = wait_until(lambda: _online_camera(relay, token), 60, "the camera online in /devices")
    _watch_live(browser, relay, cam["id"])

    relay.proc.kill()  # no goodbye: the agent must notice and come back by itself
    restarted = stack.start_relay(relay.data_dir, f"{relay.host}:{relay.port}")
    relay.proc = restarted.proc
    token = login(relay)
    cam = wait_until(lambda: _online_camera(relay, token), 30, "the agent back after restart")
    _watch_live(browser, relay, cam["id"])


# spec: PLAY-5
def test_snapshot_is_a_jpeg(
    relay: stack.Relay, agent: stack.Proc, wait_until: Callable[..., Any]
) -> None:
    """The snapshot endpoint answers a JPEG of the camera's current image."""
    import ssl
    import urllib.request

    token = login(relay)
    cam = wait_until(lambda: _online_camera(relay, token), 60, "the camera online")
    req = urllib.request.Request(f"{relay.url}/api/v1/cameras/{cam['id']}/snapshot")
    req.add_header("Authorization", f"Bearer {token}")
    ctx = ssl.create_default_context(cafile=str(relay.ca))
    with urllib.request.urlopen(req, context=ctx, timeout=20) as resp:
        assert resp.headers["Content-Type"].startswith("image/jpeg")
        body = resp.read()
    assert body[:2] == b"\xff\xd8"
    assert body[-2:] == b"\xff\xd9"


# spec: DEV-10, USER-3
def test_wrong_password_at_registration_is_reported_and_nothing_registered(
    relay: stack.Relay, tmp_path: Path
) -> None:
    """The CLI exits non-zero naming 400224, and leaves no identity behind."""
    result = stack.register_agent(tmp_path, relay, EMAIL, "Wrong-pass1!")
    assert result.returncode != 0
    assert "400224" in result.stderr
    assert not (tmp_path / "device.key").exists()
    status = stack.run_cli(
        [str(stack.VENV_BIN / "rmon-agent"), "status", "--data-dir", str(tmp_path)]
    )
    assert json.loads(status.stdout)["registered"] is False


# spec: SUP-1
def test_discover_lists_the_site_camera(site: dict[str, str], tmp_path: Path) -> None:
    """``rmon-agent discover`` finds the camera by WS-Discovery and reads it over ONVIF."""
    result = stack.run_cli(
        [str(stack.VENV_BIN / "rmon-agent"), "discover", "--data-dir", str(tmp_path)],
        env=agent_env(site),
    )
    assert result.returncode == 0, result.stderr
    lines = [line.split("\t") for line in result.stdout.splitlines()]
    assert [site["xaddr"], "OK"] in [line[:2] for line in lines], result.stdout
