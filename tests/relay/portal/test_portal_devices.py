"""Camera settings (CAM-1), device information (DEV-1) and drag-rectangle zoom (LIVE-5) in
chromium under the relay's CSP, against the REAL relay app and store.

The site and its cameras are inserted through the store API as an agent's enrollment and
inventory would put them there, and the site is marked online in the store; no agent is
connected, so calls that go through the tunnel (device information read live, PTZ) are answered
by the relay's own "site did not answer" path. What the portal *sends* is read from the
browser's requests. Waits use selectors or poll the page (the CSP forbids string evaluation).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from relay.store import Store
from shared.models import CameraInventory
from tests.relay.conftest import OWNER, PASSWORD, add_site
from tests.relay.portal.conftest import PORTAL_RELAY_ID, portal_relay

pytestmark = pytest.mark.timeout(90)


@dataclass(frozen=True)
class Relay:
    """The running relay's URL and the ids the store gave the site and cameras."""

    url: str
    store: Store
    site: str
    cameras: dict[str, str]  # name → id
    other_site: str


def _inventory() -> list[CameraInventory]:
    return [
        CameraInventory(
            local_id="c1",
            name="Front",
            manufacturer="Acme",
            model="FD-100",
            serial_number="SN-FRONT-1",
            firmware_version="1.2.3",
        ),
        CameraInventory(
            local_id="c2",
            name="Back",
            manufacturer="Acme",
            model="BK-200",
            serial_number="SN-BACK-2",
            firmware_version="2.0.0",
            online=False,
            status="authentication_error",
        ),
        CameraInventory(
            local_id="c3",
            name="Dome",
            manufacturer="Acme",
            model="PTZ-300",
            serial_number="SN-DOME-3",
            firmware_version="3.1.0",
            capabilities=["ptz", "presets"],
        ),
    ]


@pytest.fixture
async def relay(tmp_path: Path) -> AsyncIterator[Relay]:
    """The real app: site "Shop" (marked online, three cameras) and an offline site "Depot"
    with one camera."""
    async with portal_relay(tmp_path / "relay") as running:
        store, owner = running.store, running.owner.id
        site, ids = await add_site(store, owner, "Shop", _inventory())
        await store.set_device_online(site, True, PORTAL_RELAY_ID)
        other, gate = await add_site(
            store, owner, "Depot", [CameraInventory(local_id="d1", name="Gate")]
        )
        yield Relay(running.url, store, site, ids | gate, other)


async def _login(page: Any, relay: Relay) -> None:
    await page.goto(f"{relay.url}/")
    await page.fill("#email", OWNER)
    await page.fill("#password", PASSWORD)
    await page.press("#password", "Enter")
    await page.wait_for_selector("#cameras-view:not([hidden]) .camera-tile")


def _name(relay: Relay, item: str) -> str:
    return f'#camera-settings-form input[data-id="{relay.cameras.get(item, item)}"]'


async def _open_settings_with_keyboard(page: Any) -> None:
    await page.focus("#camera-settings-link")
    await page.keyboard.press("Enter")
    await page.wait_for_selector("#camera-settings-form")


# spec: CAM-1, DEV-1
async def test_rename_several_at_once_limit_error_and_device_page(
    strict_page: Any, relay: Relay
) -> None:
    page = strict_page
    await _login(page, relay)
    await _open_settings_with_keyboard(page)
    assert await page.locator("#names-limit").inner_text() == (
        "Names of sites and cameras can be up to 20 characters. "
        "Change several names, then apply them together."
    )

    # Two cameras and a site in one PATCH, typed and submitted with the keyboard.
    patches: list[Any] = []
    page.on(
        "request",
        lambda r: patches.append(r.post_data_json) if r.method == "PATCH" else None,
    )
    await page.fill(_name(relay, "Front"), "Front gate")
    await page.fill(_name(relay, "Back"), "Back garden")
    await page.fill(_name(relay, relay.site), "Main shop")
    await page.press(_name(relay, relay.site), "Enter")
    await page.wait_for_selector("#names-status:text-is('Renamed 3 device(s).')")
    assert len(patches) == 1
    assert sorted(patches[0], key=lambda i: i["name"]) == [
        {"id": relay.cameras["Back"], "name": "Back garden"},
        {"id": relay.cameras["Front"], "name": "Front gate"},
        {"id": relay.site, "name": "Main shop"},
    ]

    await page.reload()
    await page.wait_for_selector("#camera-settings-form")
    assert await page.input_value(_name(relay, "Front")) == "Front gate"
    assert await page.input_value(_name(relay, "Back")) == "Back garden"
    assert await page.input_value(_name(relay, "Dome")) == "Dome"
    assert await page.input_value(_name(relay, relay.site)) == "Main shop"

    # 21 characters: the counter says so, the relay refuses, nothing (not even Dome) changes.
    await page.fill(_name(relay, "Dome"), "Dome 2")
    await page.fill(_name(relay, "Front"), "A" * 21)
    front = page.locator(_name(relay, "Front"))
    counter = page.locator(f"#{await front.get_attribute('id')}-count")
    assert await counter.inner_text() == "21 / 20"
    await page.press(_name(relay, "Front"), "Enter")
    await page.wait_for_selector(
        "#names-status[role=alert]:text-is('Camera Front gate: at most 20 characters "
        "(error 91001)')"
    )
    assert await front.get_attribute("aria-invalid") == "true"
    assert await page.evaluate("document.activeElement.dataset.id") == relay.cameras["Front"]
    await page.reload()
    await page.wait_for_selector("#camera-settings-form")
    assert await page.input_value(_name(relay, "Front")) == "Front gate"
    assert await page.input_value(_name(relay, "Dome")) == "Dome"

    # The camera list shows the new names; the site header leads to its device information.
    await page.click("a:text-is('← Cameras')")
    await page.wait_for_selector(".site-name:text-is('Main shop')")
    tiles = sorted(await page.locator(".camera-tile .tile-name").all_inner_texts())
    assert tiles == ["Back garden", "Dome", "Front gate", "Gate"]
    await page.click(f'.site[data-device-id="{relay.site}"] .site-info-link')
    await page.wait_for_selector("#camera-info")
    assert await page.locator("#site-info-title").inner_text() == "Site Main shop"

    rows = {
        name: page.locator(f'#camera-info tr[data-camera-id="{relay.cameras[name]}"]')
        for name in ("Front", "Back", "Dome")
    }
    back = await rows["Back"].locator("th, td").all_inner_texts()
    assert back[:5] == ["Back garden", "Authentication error", "Acme", "BK-200", "SN-BACK-2"]
    assert back[6] == "2.0.0"
    front_cells = await rows["Front"].locator("th, td").all_inner_texts()
    assert front_cells[:2] == ["Front gate", "Normal"]
    assert front_cells[3:5] == ["FD-100", "SN-FRONT-1"]
    assert await rows["Dome"].get_attribute("data-status") == "normal"
    # No agent holds the tunnel: the site's live information is a communication error.
    site_status = page.locator(".site-info [data-status]")
    assert await site_status.inner_text() == "Communication error"

    # The offline site's camera: communication error, as the device list says.
    await page.goto(f"{relay.url}/#/device/{relay.other_site}")
    await page.wait_for_selector("#site-info-title:text-is('Site Depot')")
    gate = page.locator(f'#camera-info tr[data-camera-id="{relay.cameras["Gate"]}"] td').first
    assert await gate.inner_text() == "Communication error"


async def _ptz_bodies(page: Any, bodies: list[dict[str, Any]], count: int) -> None:
    """Poll until ``count`` PTZ requests were sent (10 s at most)."""
    deadline = time.monotonic() + 10
    while len(bodies) < count:
        assert time.monotonic() < deadline, f"PTZ requests so far: {bodies}"
        await asyncio.sleep(0.05)


def _record_ptz_requests(page: Any) -> list[dict[str, Any]]:
    """The JSON bodies of every PTZ request the page sends from now on, in order."""
    bodies: list[dict[str, Any]] = []
    page.on(
        "request",
        lambda r: (
            bodies.append(r.post_data_json)
            if r.method == "POST" and r.url.endswith("/ptz")
            else None
        ),
    )
    return bodies


# spec: LIVE-5
async def test_drag_rectangle_sends_area_zoom_and_click_wheel_still_work(
    strict_page: Any, relay: Relay
) -> None:
    page = strict_page
    bodies = _record_ptz_requests(page)
    await _login(page, relay)
    await page.click(f'.camera-tile[data-camera-id="{relay.cameras["Dome"]}"]')
    await page.wait_for_selector('[data-ptz="right"]')
    box = await page.locator("#single-video").bounding_box()
    assert box is not None
    assert box["width"] > 100
    assert box["height"] > 100

    def at(fx: float, fy: float) -> tuple[float, float]:
        return box["x"] + fx * box["width"], box["y"] + fy * box["height"]

    # Drag from (0.2, 0.3) to (0.65, 0.8) of the image: one area_zoom, no move before it.
    await page.mouse.move(*at(0.2, 0.3))
    await page.mouse.down()
    await page.mouse.move(*at(0.4, 0.5), steps=3)
    assert await page.locator("#single-stage .zoom-rect").count() == 1  # drawn while dragging
    await page.mouse.move(*at(0.65, 0.8), steps=3)
    await page.mouse.up()
    await _ptz_bodies(page, bodies, 1)
    (zoom,) = bodies
    assert zoom["action"] == "area_zoom"
    assert zoom["x"] == pytest.approx(0.2, abs=0.002)
    assert zoom["y"] == pytest.approx(0.3, abs=0.002)
    assert zoom["w"] == pytest.approx(0.45, abs=0.002)
    assert zoom["h"] == pytest.approx(0.5, abs=0.002)
    assert await page.locator("#single-stage .zoom-rect").count() == 0

    # Dragged up and left, past the image's edge: the same rectangle, clamped to the image.
    await page.mouse.move(*at(0.9, 0.6))
    await page.mouse.down()
    await page.mouse.move(*at(0.5, 0.1), steps=3)
    await page.mouse.move(box["x"] + box["width"] + 40, box["y"] - 30, steps=3)
    await page.mouse.up()
    await _ptz_bodies(page, bodies, 2)
    drag = bodies[1]
    assert drag["action"] == "area_zoom"
    assert (drag["x"], drag["y"]) == (pytest.approx(0.9, abs=0.002), 0)
    assert drag["w"] == pytest.approx(0.1, abs=0.002)
    assert drag["h"] == pytest.approx(0.6, abs=0.002)
    assert drag["x"] + drag["w"] <= 1

    # A click still centres; the wheel still zooms and stops.
    await page.mouse.click(*at(0.75, 0.25))
    await _ptz_bodies(page, bodies, 3)
    assert bodies[2]["action"] == "centre"
    assert (bodies[2]["x"], bodies[2]["y"]) == (
        pytest.approx(0.75, abs=0.002),
        pytest.approx(0.25, abs=0.002),
    )
    await page.mouse.wheel(0, -100)
    await _ptz_bodies(page, bodies, 5)
    assert bodies[3] == {"action": "move", "zoom": 0.5}
    assert bodies[4] == {"action": "stop"}
    # The relay answered every call: no agent holds this site's tunnel.
    await page.wait_for_selector("#single-error:not([hidden])")


# spec: LIVE-5
async def test_forced_ptz_toggle_shows_the_pad_and_sends_forced(
    strict_page: Any, relay: Relay
) -> None:
    """Manual 5.3.12: a camera that reports no PTZ offers "Forced PTZ operation"; ON shows the
    PTZ buttons and every action carries forced: true; OFF hides them again; a PTZ camera has
    no toggle (it needs none)."""
    page = strict_page
    bodies = _record_ptz_requests(page)
    await _login(page, relay)
    await page.click(f'.camera-tile[data-camera-id="{relay.cameras["Front"]}"]')
    toggle = page.locator("#ptz-forced")
    await toggle.wait_for()
    assert await toggle.get_attribute("aria-pressed") == "false"
    assert await page.locator('[data-ptz="right"]').count() == 0
    await toggle.click()
    await page.wait_for_selector('[data-ptz="right"]')
    assert await page.locator("#ptz-forced").get_attribute("aria-pressed") == "true"
    await page.locator("#ptz-home").click()
    await _ptz_bodies(page, bodies, 1)
    assert bodies[0] == {"action": "home", "forced": True}
    await page.locator("#ptz-forced").click()
    await page.wait_for_selector('[data-ptz="right"]', state="detached")
    await page.goto(f"{relay.url}/#/")
    await page.click(f'.camera-tile[data-camera-id="{relay.cameras["Dome"]}"]')
    await page.wait_for_selector('[data-ptz="right"]')
    assert await page.locator("#ptz-forced").count() == 0
