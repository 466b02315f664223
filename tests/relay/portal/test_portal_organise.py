"""Folders (ORG-1) and favorites (ORG-2) in chromium under the relay's CSP, against the REAL
relay app and store (issue 5 acceptance: "build a 9-split favorite and a 3-level folder tree and
see them after reload").

Sites and cameras are put in the store as an agent's enrollment and inventory would; no agent is
connected, so the favorite's tiles show "Offline" — the layout, not the video, is under test
here (the tiles are the camera list's own, whose video tests/relay/portal/test_player.py and
tests/e2e cover). Waits use selectors, or poll the page with evaluate: the CSP forbids the
string evaluation that wait_for_function needs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.async_api import expect

from relay.store import Store
from relay.store.accounts import AccountStore
from relay.web.keys import AUTH_KEY
from shared.models import CameraInventory
from tests.relay.conftest import OWNER, PASSWORD, add_site, shared_user
from tests.relay.portal.conftest import portal_relay

pytestmark = pytest.mark.timeout(120)

SHOP = [f"Cam {n}" for n in range(1, 11)]  # ten cameras: one more than a 9-split holds
DEPOT = ["Gate", "Dock"]
GUEST = "guest@example.com"
T = TypeVar("T")


@dataclass(frozen=True)
class Relay:
    """The running relay and the ids the store gave its objects."""

    url: str
    store: Store
    cameras: dict[str, str]  # name → id
    guest_id: str


@pytest.fixture
async def relay(tmp_path: Path) -> AsyncIterator[Relay]:
    """The real app: sites Shop (10 cameras) and Depot (2), and a shared user."""
    async with portal_relay(tmp_path / "relay") as running:
        owner = running.owner.id
        _, cameras = await add_site(running.store, owner, "Shop", _inventory(SHOP))
        cameras |= (await add_site(running.store, owner, "Depot", _inventory(DEPOT)))[1]
        guest_id = await shared_user(running.app[AUTH_KEY], owner, GUEST)
        yield Relay(running.url, running.store, cameras, guest_id)


def _inventory(names: list[str]) -> list[CameraInventory]:
    return [CameraInventory(local_id=f"c{i}", name=n) for i, n in enumerate(names)]


async def _login(page: Any, relay: Relay, email: str = OWNER) -> None:
    await page.goto(f"{relay.url}/")
    await page.fill("#email", email)
    await page.fill("#password", PASSWORD)
    await page.press("#password", "Enter")
    await page.wait_for_selector("#topbar:not([hidden])")


async def _until(probe: Callable[[], Awaitable[T]], want: Callable[[T], bool]) -> T:
    """Poll ``probe`` until ``want`` holds (10 s); the CSP rules out wait_for_function."""
    deadline = time.monotonic() + 10
    while True:
        value = await probe()
        if want(value) or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.05)


async def _status(page: Any, scope: str, text: str) -> None:
    await page.wait_for_selector(f"{scope} .form-status:text-is('{text}')")


async def _visible_tiles(page: Any) -> list[str]:
    names: list[str] = await page.locator(
        "#camera-list .camera-tile:visible .tile-name"
    ).all_inner_texts()
    return sorted(names)


# spec: ORG-1
async def test_three_level_folder_tree_survives_reload_and_filters_cameras(
    strict_page: Any, relay: Relay
) -> None:
    page = strict_page
    await _login(page, relay)
    await page.click("#folder-settings-link")
    await page.wait_for_selector("#add-folder-form")
    for name in ("Region", "Building", "Floor"):  # each added under the one just made
        await page.fill("#folder-name", name)
        await page.press("#folder-name", "Enter")
        await page.wait_for_selector(f".folder-node[aria-current=true]:text-is('{name}')")

    await page.fill("#folder-name", "Room")  # a 4th level: the relay refuses (91101)
    await page.press("#folder-name", "Enter")
    await page.wait_for_selector(
        "[role=alert]:text-is('Folders can be created up to 3 levels deep. (error 91101)')"
    )

    await page.check("#folder-device-list label:text-is('Shop')")
    await _status(page, "#page-view", "Linked Shop.")
    await expect(page.locator("#folder-device-list input:checked")).to_be_focused()

    await page.reload()
    nested = (
        "#folder-tree li:has(> .folder-node:text-is('Region')) "
        "li:has(> .folder-node:text-is('Building')) "
        "li:has(> .folder-node:text-is('Floor'))"
    )
    await page.wait_for_selector(f"{nested} .folder-devices li:has-text('Shop')")
    assert await page.locator(".folder-node:text-is('Room')").count() == 0
    where = page.locator("#folder-device-list li:has(label:text-is('Depot')) .help")
    assert await where.inner_text() == "Unassigned"

    await page.click("nav.nav a:text-is('Cameras')")
    await page.wait_for_selector("#folder-panel:not([hidden]) .folder-filter")
    await page.wait_for_selector("#camera-list .camera-tile")
    await page.click(".folder-filter:text-is('Region')")  # a folder's sub-folders count too
    shop = await _until(lambda: _visible_tiles(page), lambda names: len(names) == len(SHOP))
    assert shop == sorted(SHOP)
    await page.click(".folder-filter:text-is('Unassigned')")
    depot = await _until(lambda: _visible_tiles(page), lambda names: len(names) == len(DEPOT))
    assert depot == sorted(DEPOT)
    await page.click(".folder-filter:text-is('All cameras')")
    every = await _until(lambda: _visible_tiles(page), lambda n: len(n) == len(SHOP + DEPOT))
    assert every == sorted(SHOP + DEPOT)


# spec: ORG-1
async def test_folder_rename_reorder_delete_and_search_with_the_keyboard(
    strict_page: Any, relay: Relay
) -> None:
    page = strict_page
    await _login(page, relay)
    await page.goto(f"{relay.url}/#/folders")
    await page.wait_for_selector("#add-folder-form")
    for name in ("North", "South"):
        await page.click(".folder-account")  # the account selected: a top-level folder
        await page.fill("#folder-name", name)
        await page.press("#folder-name", "Enter")
        await page.wait_for_selector(f".folder-node[aria-current=true]:text-is('{name}')")

    await page.focus("#folder-up")
    await page.keyboard.press("Enter")  # South before North
    await _status(page, "#page-view", "Moved.")
    order = await page.locator("#folder-tree .folder-node:not(.folder-account)").all_inner_texts()
    assert order == ["South", "North"]

    await page.fill("#folder-rename", "Sud")
    await page.press("#folder-rename", "Enter")
    await _status(page, "#page-view", "Renamed to “Sud”.")
    await page.fill("#folder-rename", "")  # an empty name: 400249 in the manual's words
    await page.press("#folder-rename", "Enter")
    await page.wait_for_selector(
        "[role=alert]:text-is('Cannot register since no name is specified. (error 400249)')"
    )

    await page.fill("#folder-device-search", "dep")
    await _until(
        lambda: page.locator("#folder-device-list label").all_inner_texts(),
        lambda names: names == ["Depot"],
    )
    await page.check("#folder-device-list label:text-is('Depot')")
    await _status(page, "#page-view", "Linked Depot.")
    await page.fill("#folder-device-search", "")
    await page.check("#folder-unassigned")
    names = await _until(
        lambda: page.locator("#folder-device-list label").all_inner_texts(),
        lambda names: names == ["Shop"],
    )
    assert names == ["Shop"]

    await page.click(".folder-node:text-is('North')")
    await page.click("#folder-delete")
    await page.click("dialog button:text-is('No')")  # No keeps it
    await page.click("#folder-delete")
    await page.click("dialog button:text-is('Yes')")
    await _status(page, "#page-view", "Deleted “North”.")
    await page.click(".folder-account")  # the account selected: Delete all folders (4.4.4)
    await page.click("#folder-delete:text-is('Delete all folders')")
    await page.click("dialog button:text-is('Yes')")
    await _status(page, "#page-view", "All folders were deleted.")
    assert await page.locator(".folder-node:not(.folder-account)").count() == 0
    await page.uncheck("#folder-unassigned")
    await _until(
        lambda: page.locator("#folder-device-list .help").all_inner_texts(),
        lambda where: where == ["Unassigned", "Unassigned"],
    )


async def _cells(page: Any) -> list[str]:
    texts: list[str] = await page.locator(".favorite-cell > span").all_inner_texts()
    return texts


# spec: ORG-2
async def test_nine_split_favorite_survives_reload_is_shared_and_opens_after_login(
    strict_page: Any, relay: Relay
) -> None:
    page = strict_page
    await _login(page, relay)
    await page.click("#nav-favorites")
    await page.wait_for_selector("#new-favorite-form")
    await page.fill("#new-favorite-title", "Lobby")
    await page.select_option("#new-favorite-layout", "9")
    await page.press("#new-favorite-title", "Enter")
    await page.wait_for_selector("#favorite-arrangement[data-layout='9']")
    for n, name in enumerate(SHOP[:9]):
        await page.check(f"#page-view label:text-is('{name}')")
        await page.wait_for_selector(f".favorite-cell[data-slot='{n}']:has-text('{name}')")
    await page.click("#page-view label:text-is('Cam 10')")  # a 10th camera: 91105
    await page.wait_for_selector("[role=alert]:has-text('(error 91105)')")
    assert not await page.is_checked("#page-view label:text-is('Cam 10')")
    await page.click("[aria-label='Move Cam 1 later']")  # swap the first two tiles
    await page.wait_for_selector(".favorite-cell[data-slot='0']:has-text('Cam 2')")
    await expect(page.locator("[aria-label='Move Cam 1 later']")).to_be_focused()

    await page.reload()
    await page.wait_for_selector(".favorite-cell[data-slot='8']:has-text('Cam 9')")
    assert await _cells(page) == [f"{i}: {n}" for i, n in enumerate(["Cam 2", "Cam 1"], 1)] + [
        f"{i}: Cam {i}" for i in range(3, 10)
    ]
    await page.click("a:text('← Back to the favorite')")
    await page.wait_for_selector("#favorite-grid[data-layout='9'] .camera-tile")
    await page.reload()  # the live view itself, from the address alone
    await page.wait_for_selector("#favorite-grid[data-layout='9'] .camera-tile")
    tiles = await page.locator("#favorite-grid .tile-name").all_inner_texts()
    assert tiles == ["Cam 2", "Cam 1", *SHOP[2:9]]
    columns = await page.evaluate(
        "() => getComputedStyle(document.getElementById('favorite-grid'))"
        ".gridTemplateColumns.split(' ').length"
    )
    assert columns == 3

    await page.click("#favorite-share")  # manual 5.5.11
    await page.check("[aria-label='Share with Guest']")
    await page.click("#favorite-share-form button[type=submit]")
    await _status(page, "#favorite-share-form", "Camera sharing is complete.")
    shared = await AccountStore(relay.store.engine, clock=relay.store.clock).shared_user(
        await _owner_id(relay), relay.guest_id
    )
    assert shared is not None
    assert sorted(shared[1]) == sorted(relay.cameras[n] for n in SHOP[:9])

    await page.click("#favorite-top-page")  # manual 5.5.12: the top page after login
    await page.wait_for_selector("#favorite-top-page[aria-pressed=true]")
    view = page.url.split("#")[1]
    await page.click("#logout-button")
    await page.wait_for_selector("#login-view:not([hidden])")
    await _login(page, relay)
    await page.wait_for_selector("#favorite-grid[data-layout='9'] .camera-tile")
    assert page.url.endswith(f"#{view}")


async def _owner_id(relay: Relay) -> str:
    owner = await relay.store.get_account_by_email(OWNER)
    assert owner is not None
    return owner.id


# spec: ORG-2
async def test_custom_layout_rename_reorder_and_delete(strict_page: Any, relay: Relay) -> None:
    page = strict_page
    await _login(page, relay)
    await page.goto(f"{relay.url}/#/favorites")
    for title, layout in (("Wall", "custom"), ("Yard", "4")):
        await page.wait_for_selector("#new-favorite-form")
        await page.fill("#new-favorite-title", title)
        await page.select_option("#new-favorite-layout", layout)
        await page.press("#new-favorite-title", "Enter")
        await page.wait_for_selector(f"#favorite-arrangement[data-layout='{layout}']")
        await page.goto(f"{relay.url}/#/favorites")

    await page.click("#favorite-list a:text-is('Wall')")
    await page.click("#favorite-edit")
    await page.wait_for_selector("#favorite-arrangement[data-layout='custom']")
    for name in ("Gate", "Dock"):
        await page.check(f"#page-view label:text-is('{name}')")
        await page.wait_for_selector(f".favorite-box:text-is('{name}')")
    form = "form.favorite-place:has(h2:text-is('Dock'))"
    for label, value in (("Left %", "50"), ("Top %", "25"), ("Width %", "50"), ("Height %", "75")):
        await page.locator(form).get_by_label(label).fill(value)
    await page.locator(form).get_by_label("Height %").press("Enter")
    await page.wait_for_selector("#page-view > .form-status:text-is('Saved.')")
    await page.select_option("#favorite-layout", "4")  # 2 cameras fit a 4-split, and back
    await page.click("#favorite-layout-form button[type=submit]")
    await page.wait_for_selector("#favorite-arrangement[data-layout='4']")
    await page.select_option("#favorite-layout", "custom")
    await page.click("#favorite-layout-form button[type=submit]")
    await page.wait_for_selector("#favorite-arrangement[data-layout='custom']")
    for label, value in (("Left %", "50"), ("Top %", "25"), ("Width %", "50"), ("Height %", "75")):
        await page.locator(form).get_by_label(label).fill(value)
    await page.locator(form).locator("button[type=submit]").click()
    await page.wait_for_selector("#page-view > .form-status:text-is('Saved.')")
    await page.fill("#favorite-title-input", "Video wall")
    await page.press("#favorite-title-input", "Enter")
    await _status(page, "#favorite-title-form", "Saved.")

    await page.click("a:text('← Back to the favorite')")
    dock = page.locator("#favorite-grid[data-layout='custom'] .camera-tile:has-text('Dock')")
    await dock.wait_for()
    place = await dock.evaluate(
        "(node) => [node.style.left, node.style.top, node.style.width, node.style.height]"
    )
    assert place == ["50%", "25%", "50%", "75%"]

    await page.click("a:text-is('All favorites')")
    await page.wait_for_selector("#favorite-sort")
    await page.click("[aria-label='Move Yard up']")
    await _status(page, "#page-view", "Saved.")
    await expect(page.locator("[aria-label='Move Yard up']")).to_be_focused()
    await page.reload()
    await page.wait_for_selector("#favorite-list")
    assert await page.locator("#favorite-list a").all_inner_texts() == ["Yard", "Video wall"]
    await page.click("[aria-label='Delete Yard']")
    await page.click("dialog button:text-is('Yes')")
    await expect(page.locator("#favorite-list a")).to_have_text(["Video wall"])
