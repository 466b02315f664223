"""Portal messages in chromium against the REAL relay app (real store, real routes), under the
relay's own CSP and driven with the keyboard (MSG-1, manual 5.7 and 5.8.2): the Messages button
shows the unread count, its popup the newest 10; opening one marks it read; "To list" leads to
the message history and its Maintenance history tab; "Mark all as read" clears the badge for
this viewer only — a shared user of the same subscriber still sees every message unread.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from relay.store.messages import MessageStore
from relay.web.keys import AUTH_KEY
from tests.relay.conftest import OWNER, PASSWORD, shared_user
from tests.relay.portal.conftest import portal_relay

GUEST = "guest@example.com"
OTHERS = 11  # "other" notices besides the one maintenance notice: 12 in all


@pytest.fixture
async def relay(tmp_path: Path) -> AsyncIterator[str]:
    """The real app: a subscriber, their shared user, 12 messages (the maintenance notice
    oldest, so the popup's newest 10 leave it out)."""
    async with portal_relay(tmp_path / "relay") as running:
        await shared_user(running.app[AUTH_KEY], running.owner.id, GUEST)
        messages = MessageStore(running.store.engine, clock=running.store.clock)
        start, end = datetime(2030, 2, 1, 1, tzinfo=UTC), datetime(2030, 2, 1, 3, tzinfo=UTC)
        await messages.post(
            "maintenance", "Relay upgrade", "Short outage.", starts_at=start, ends_at=end
        )
        for i in range(OTHERS):
            running.clock.advance(60)
            await messages.post("other", f"Notice {i}", f"Text of notice {i}.")
        yield running.url


async def _login(page: Any, email: str) -> None:
    await page.fill("#email", email)
    await page.fill("#password", PASSWORD)
    await page.press("#password", "Enter")
    await page.wait_for_selector("#topbar:not([hidden])")


async def _badge(page: Any, count: int) -> None:
    if count:
        await page.wait_for_selector(f"#messages-count:not([hidden]):text-is('{count}')")
    else:
        await page.wait_for_selector("#messages-count", state="hidden")


# spec: MSG-1
async def test_messages_button_popup_and_history_with_the_keyboard(
    strict_page: Any, relay: str
) -> None:
    page = strict_page
    await page.goto(f"{relay}/")
    await _login(page, OWNER)
    await _badge(page, 12)
    assert await page.get_attribute("#messages-button", "aria-label") == "Messages, 12 unread"

    await page.focus("#messages-button")
    await page.keyboard.press("Enter")
    await page.wait_for_selector("#messages-popup-list")
    assert await page.get_attribute("#messages-button", "aria-expanded") == "true"
    titles = await page.locator("#messages-popup-list .message-title").all_inner_texts()
    assert titles == [f"Notice {i}" for i in range(OTHERS - 1, 0, -1)]  # newest 10
    # Focus went to the newest message's title: Enter opens it in place and marks it read.
    await page.keyboard.press("Enter")
    await page.wait_for_selector(
        "#messages-popup-list li.read .message-body >> text=Text of notice 10."
    )
    await _badge(page, 11)
    await page.keyboard.press("Escape")
    await page.wait_for_selector("#messages-popup", state="hidden")
    await page.wait_for_selector("#messages-button:focus")

    await page.keyboard.press("Enter")  # open again, then follow "To list"
    await page.wait_for_selector("#messages-to-list")
    await page.focus("#messages-to-list")
    await page.keyboard.press("Enter")
    await page.wait_for_selector("#messages-history")
    assert await page.locator("#messages-history details").count() == 12
    assert await page.locator("#messages-history details.read").count() == 1

    await page.focus("a.tab:text-is('Maintenance history')")
    await page.keyboard.press("Enter")
    await page.wait_for_selector("h1:text-is('Maintenance history')")
    [entry] = await page.locator("#messages-history details").all()
    await entry.locator("summary").focus()
    await page.keyboard.press("Enter")  # open: the body, the window, and marked read
    await page.wait_for_selector("#messages-history details.read[open] >> text=Short outage.")
    assert "Maintenance window:" in await entry.inner_text()
    await _badge(page, 10)

    await page.focus("#messages-button")
    await page.keyboard.press("Enter")
    await page.wait_for_selector("#messages-read-all")
    await page.focus("#messages-read-all")
    await page.keyboard.press("Enter")
    await _badge(page, 0)
    assert await page.get_attribute("#messages-button", "aria-label") == "Messages"
    await page.keyboard.press("Escape")

    await page.click("#logout-button")  # read state is per viewer: the shared user's is intact
    await page.wait_for_selector("#login-view:not([hidden])")
    await _login(page, GUEST)
    await _badge(page, 12)


# spec: MSG-1
async def test_a_popup_view_link_opens_the_maintenance_history(
    strict_page: Any, relay: str
) -> None:
    """ "View" links open the message in its history (maintenance notices in the maintenance
    history, manual 5.7 ③), marking it read; an unknown id shows the documented message."""
    page = strict_page
    await page.goto(f"{relay}/#/messages?kind=maintenance&id=1")
    await _login(page, OWNER)
    await page.goto(f"{relay}/#/messages?kind=maintenance&id=1")
    await page.wait_for_selector("#message-1[open] >> text=Short outage.")
    await _badge(page, 11)
    await page.goto(f"{relay}/#/messages?id=999")
    await page.wait_for_selector("[role=alert]:text('This message does not exist. (error 91150)')")
