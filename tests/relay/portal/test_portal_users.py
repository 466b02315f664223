"""Portal user management in chromium against the REAL relay app (real store, real SMTP server):
the subscriber creates a shared user and shares two of four cameras; the shared user logs in
with the mailed initial password, must set their own, and then sees only those two cameras.
Forms are filled and submitted with the keyboard (Enter), under the relay's own CSP.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from shared.models import CameraInventory
from tests.relay.conftest import OWNER, PASSWORD, add_site
from tests.relay.mail_kit import Inbox, line_value, smtp_server
from tests.relay.portal.conftest import portal_relay

CAMERAS = ("Front", "Back", "Garage", "Yard")
GUEST = "guest@example.com"
GUEST_PASSWORD = "Own-choice4!"


@pytest.fixture
async def inbox() -> AsyncIterator[tuple[Inbox, str]]:
    box = Inbox()
    with smtp_server(box) as url:
        yield box, url


@pytest.fixture
async def relay(tmp_path: Path, inbox: tuple[Inbox, str]) -> AsyncIterator[str]:
    """The real app with one site of four cameras, mailing through the test's SMTP server."""
    async with portal_relay(tmp_path / "relay", smtp_url=inbox[1]) as running:
        inventory = [CameraInventory(local_id=f"c{i}", name=n) for i, n in enumerate(CAMERAS)]
        await add_site(running.store, running.owner.id, "Shop", inventory)
        yield running.url


async def _login(page: Any, email: str, password: str) -> None:
    await page.fill("#email", email)
    await page.fill("#password", password)
    await page.press("#password", "Enter")


async def _tile_names(page: Any) -> list[str]:
    await page.wait_for_selector("#cameras-view:not([hidden]) .camera-tile")
    names: list[str] = await page.locator(".camera-tile .tile-name").all_inner_texts()
    return sorted(names)


# spec: USER-6, USER-7, CAM-2
async def test_share_two_cameras_and_the_user_sees_only_them(
    strict_page: Any, relay: str, inbox: tuple[Inbox, str]
) -> None:
    page = strict_page
    await page.goto(f"{relay}/")
    await _login(page, OWNER, PASSWORD)
    assert await _tile_names(page) == sorted(CAMERAS)

    await page.click("#nav-users")
    await page.wait_for_selector("#new-user-form")
    await page.fill("#new-user-name", "Guest")
    await page.fill("#new-user-email", GUEST)
    await page.press("#new-user-email", "Enter")
    await page.wait_for_selector("#sharing-form")
    await page.check("label:text-is('Front')")
    await page.check("label:text-is('Garage')")
    await page.focus("#sharing-form button[type=submit]")
    await page.keyboard.press("Enter")
    await page.wait_for_selector("#sharing-form .form-status:text('Shared 2 camera(s).')")

    await page.click("a:text('← Users')")  # a second user with the same address: 400229
    await page.wait_for_selector("#users-table td:text('guest@example.com')")
    await page.fill("#new-user-name", "Again")
    await page.fill("#new-user-email", GUEST)
    await page.press("#new-user-email", "Enter")
    await page.wait_for_selector(
        "#new-user-form [role=alert]:text('The specified user is already registered. "
        "(error 400229)')"
    )
    await page.click("#logout-button")

    mail = await inbox[0].wait_for(GUEST, "invited")
    await page.wait_for_selector("#login-view:not([hidden])")
    # the owner's tiles are gone from the page, not just hidden: the guest never glimpses them
    assert await page.locator(".camera-tile").count() == 0
    await _login(page, GUEST, line_value(mail, "Initial password"))
    await page.wait_for_selector("#initial-password-form")
    await page.get_by_label("Password (from the invitation e-mail)").fill(
        line_value(mail, "Initial password")
    )
    await page.get_by_label("New password").fill(GUEST_PASSWORD)
    await page.get_by_label("Confirm the password").fill(GUEST_PASSWORD)
    await page.keyboard.press("Enter")
    assert await _tile_names(page) == ["Front", "Garage"]
    assert await page.locator("#nav-users").is_hidden()


async def test_signup_form_shows_the_documented_messages(strict_page: Any, relay: str) -> None:
    """Each refusal shows the manual's words with its code (keyboard only)."""
    page = strict_page
    await page.goto(f"{relay}/#/signup")
    await page.wait_for_selector("#signup-form")
    await page.get_by_label("E-mail address").fill(OWNER)
    await page.get_by_label("Name", exact=True).fill("")
    await page.get_by_label("New password").fill(GUEST_PASSWORD)
    await page.get_by_label("Confirm the password").fill(GUEST_PASSWORD)
    await page.get_by_label("I accept the licence agreement").check()
    await page.keyboard.press("Enter")
    await page.wait_for_selector(
        "#signup-form [role=alert]:text('Cannot register since no name is specified. "
        "(error 400249)')"
    )
    await page.get_by_label("Name", exact=True).fill("Someone")
    await page.get_by_label("Name", exact=True).press("Enter")
    await page.wait_for_selector(
        "#signup-form [role=alert]:text('Your account is already registered. (error 400229)')"
    )
