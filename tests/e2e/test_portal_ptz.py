"""The single view's PTZ controls in Debian's chromium, against the real relay, agent and ipycam.

Pressing and holding a direction button must move the camera (as ipycam itself reports it) and
releasing it must stop it; presets are registered, renamed and recalled, and Home goes home.
The portal's CSP forbids eval, so nothing here uses ``wait_for_function`` with a string.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from agent.onvif.models import PtzPosition
from tests.e2e.conftest import portal_login
from tests.e2e.test_camera_control import (
    at,
    camera_position,
    ptz_camera_at_home,
    wait_position,
)
from tests.peers import stack

pytestmark = [pytest.mark.e2e, pytest.mark.netns]


def _option_text(page: Any, slot: int) -> str:
    return str(page.locator(f'#preset-select option[value="{slot}"]').inner_text())


def _wait_option(page: Any, slot: int, text: str, timeout: float = 10) -> None:
    """Poll the preset list until slot ``slot`` shows ``text``."""
    deadline = time.monotonic() + timeout
    while text not in (shown := _option_text(page, slot)):
        assert time.monotonic() < deadline, f"preset {slot} shows {shown!r}, wanted {text!r}"
        page.wait_for_timeout(100)


# spec: LIVE-5
def test_hold_direction_then_presets_and_home_in_chromium(
    relay: stack.Relay,
    agent: stack.Proc,
    site: dict[str, str],
    browser: Any,
    wait_until: Callable[..., Any],
) -> None:
    """Hold ▶: the camera pans while held and stops on release; preset 2 register/rename/goto."""
    xaddr = site["xaddr"]
    cam = ptz_camera_at_home(relay, xaddr, wait_until)
    context = browser.new_context(ignore_https_errors=True)
    page = context.new_page()
    try:
        portal_login(page, relay)
        page.locator(f'.camera-tile[data-camera-id="{cam["id"]}"]').click(timeout=15_000)
        right = page.locator('[data-ptz="right"]')
        right.wait_for(timeout=10_000)

        right.hover()
        page.mouse.down()
        moved = wait_position(xaddr, lambda p: p.pan > 0.1, "panning right while held")
        page.mouse.up()
        settled = _wait_still(xaddr, timeout=5)
        assert moved.pan <= settled.pan < 1.0  # it stopped on release, not at the end stop
        assert settled.tilt == pytest.approx(0.0, abs=0.03)

        page.select_option("#preset-select", "2")
        page.fill("#preset-name", "Gate")
        page.click("#preset-register")
        _wait_option(page, 2, "Gate")
        page.fill("#preset-name", "Gate west")
        page.click("#preset-rename")
        _wait_option(page, 2, "Gate west")

        page.click("#ptz-home")
        wait_position(xaddr, lambda p: at(p, 0, 0, 0), "home after clicking Home")
        page.click("#preset-goto")
        wait_position(
            xaddr, lambda p: at(p, settled.pan, settled.tilt, settled.zoom), "at preset 2"
        )
        assert page.locator("#single-error").is_hidden()
    finally:
        context.close()


def _wait_still(xaddr: str, timeout: float) -> PtzPosition:
    """The position once two reads 0.2 s apart agree (the camera has stopped moving)."""
    deadline = time.monotonic() + timeout
    before = camera_position(xaddr)
    while True:
        time.sleep(0.2)  # the observation window itself, not a wait for an event
        now = camera_position(xaddr)
        if at(now, before.pan, before.tilt, before.zoom):
            return now
        assert time.monotonic() < deadline, f"camera still moving: {before} → {now}"
        before = now
