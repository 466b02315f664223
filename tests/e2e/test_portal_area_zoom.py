"""Drag-rectangle zoom and the device information page in Debian's chromium, against the real
relay, agent and ipycam (LIVE-5, DEV-1).

Dragging a rectangle over the top-right quarter of the image must send ``area_zoom`` with that
rectangle and leave ipycam (as it reports itself) centred on it and zoomed in; the site's device
information page must show the agent and the camera as the agent read them, status Normal.
The portal's CSP forbids eval: waits use selectors, positions are polled from the camera.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.conftest import portal_login
from tests.e2e.test_camera_control import at, ptz_camera_at_home, wait_position
from tests.peers import stack

pytestmark = [pytest.mark.e2e, pytest.mark.netns]

# The displayed image inside the stage (object-fit: contain), as the portal computes it.
IMAGE_BOX = """() => {
  const video = document.getElementById("single-video");
  const box = video.getBoundingClientRect();
  const vw = video.videoWidth, vh = video.videoHeight;
  if (!vw || !vh) return { x: box.left, y: box.top, width: box.width, height: box.height };
  const scale = Math.min(box.width / vw, box.height / vh);
  const width = vw * scale, height = vh * scale;
  return {
    x: box.left + (box.width - width) / 2, y: box.top + (box.height - height) / 2, width, height,
  };
}"""


# spec: LIVE-5, DEV-1
def test_drag_rectangle_zooms_ipycam_and_device_page_shows_it(
    relay: stack.Relay,
    agent: stack.Proc,
    site: dict[str, str],
    browser: Any,
    wait_until: Callable[..., Any],
) -> None:
    xaddr = site["xaddr"]
    cam = ptz_camera_at_home(relay, xaddr, wait_until)
    context = browser.new_context(ignore_https_errors=True)
    page = context.new_page()
    sent: list[Any] = []
    page.on(
        "request",
        lambda r: sent.append(r.post_data_json) if r.url.endswith("/ptz") else None,
    )
    try:
        portal_login(page, relay)
        page.locator(f'.camera-tile[data-camera-id="{cam["id"]}"]').click(timeout=15_000)
        page.locator('[data-ptz="right"]').wait_for(timeout=10_000)
        _wait_video(page)  # the image's size decides where the picture sits in the stage
        box = page.evaluate(IMAGE_BOX)

        # From the image's centre to past its top-right corner: the top-right quarter.
        with page.expect_response(lambda r: r.url.endswith("/ptz")) as answer:
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] * 0.8, box["y"] + box["height"] * 0.2, steps=4)
            page.mouse.move(box["x"] + box["width"] + 30, box["y"] - 30, steps=4)
            page.mouse.up()
        assert answer.value.status == 200
        zoom = {"action": "area_zoom", "x": 0.5, "y": 0, "w": 0.5, "h": 0.5}
        assert answer.value.request.post_data_json == zoom
        wait_position(xaddr, lambda p: at(p, 0.25, 0.25, 0.5), "zoomed to the top-right")
        assert page.locator("#single-error").is_hidden()  # (also delivers pending events)
        assert [b["action"] for b in sent] == ["area_zoom"]  # no move, centre or stop

        page.click("#back-button")
        page.locator(".site-info-link").first.click(timeout=10_000)
        row = page.locator(f'#camera-info tr[data-camera-id="{cam["id"]}"]')
        row.wait_for(timeout=15_000)
        cells = row.locator("th, td").all_inner_texts()
        assert cells[1] == "Normal"
        assert cells[3] == "VirtualCam-1"
        assert cells[7].startswith(site["camera_ip"])
        assert page.locator(".site-info [data-status]").inner_text() == "Normal"
    finally:
        context.close()


def _wait_video(page: Any, timeout: float = 20) -> None:
    """Poll until the live video has decoded a frame (its intrinsic size is known)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate("document.getElementById('single-video').videoWidth"):
        assert time.monotonic() < deadline, "the live video never showed a frame"
        page.wait_for_timeout(100)
