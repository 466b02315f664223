"""Operator announcements through the real app and the real CLI (MSG-1, manual 5.7 and 5.8.2):
history newest first 20 a page, the maintenance history filter, the Messages popup's unread
count and newest 10, read state per viewer (a shared user reads apart from their subscriber),
404/91150 for unknown ids, and the store's read markers on PostgreSQL too."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from relay.settings import RelaySettings
from relay.store import Store
from relay.store.messages import Kind, MessageStore
from tests.relay.conftest import OWNER, Client, bearer, error_of
from tests.relay.org_kit import shared_user
from tests.relay.test_store_postgres import pg_socket, pg_store, pg_url

__all__ = ["pg_socket", "pg_store", "pg_url"]

MESSAGES = "/api/v1/messages"
WRONG_WAY_ROUND = ("--starts", "2030-03-01T02:00:00Z", "--ends", "2030-03-01T01:00:00Z")


def _messages(store: Store) -> MessageStore:
    return MessageStore(store.engine, clock=store.clock)


async def _post(store: Store, n: int, kind: Kind = "other") -> list[int]:
    """Post ``n`` messages titled "<kind> <i>" (all in the same fake instant)."""
    messages = _messages(store)
    return [(await messages.post(kind, f"{kind} {i}", f"body {i}")).id for i in range(n)]


async def _owner(sign_up: Callable[..., Any], login: Callable[..., Any]) -> str:
    await sign_up(OWNER, "Owner")
    return str((await login(OWNER))["token"])


async def _get(client: Client, token: str, path: str) -> Any:
    resp = await client.get(path, headers=bearer(token))
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def _unread(client: Client, token: str) -> int:
    return int((await _get(client, token, f"{MESSAGES}/summary"))["unread"])


# spec: MSG-1
async def test_history_is_newest_first_20_a_page_with_maintenance_history(
    client: Client, store: Store, sign_up: Callable[..., Any], login: Callable[..., Any]
) -> None:
    token = await _owner(sign_up, login)
    await _post(store, 20, "other")
    window = (datetime(2030, 2, 1, 1, tzinfo=UTC), datetime(2030, 2, 1, 3, tzinfo=UTC))
    await _messages(store).post(
        "maintenance", "Planned work", "down", starts_at=window[0], ends_at=window[1]
    )
    await _post(store, 4, "firmware_available")
    first = await _get(client, token, MESSAGES)
    assert (first["total"], first["page"], first["page_size"]) == (25, 1, 20)
    titles = [m["title"] for m in first["messages"]]
    assert titles[:5] == [*(f"firmware_available {i}" for i in (3, 2, 1, 0)), "Planned work"]
    assert titles[5:] == [f"other {i}" for i in range(19, 4, -1)]
    second = await _get(client, token, f"{MESSAGES}?page=2")
    assert [m["title"] for m in second["messages"]] == [f"other {i}" for i in range(4, -1, -1)]
    assert (await _get(client, token, f"{MESSAGES}?page=3"))["messages"] == []
    maintenance = await _get(client, token, f"{MESSAGES}?kind=maintenance")
    assert maintenance["total"] == 1
    [work] = maintenance["messages"]
    assert (work["kind"], work["read"], work["body"]) == ("maintenance", False, "down")
    starts, ends = (datetime.fromisoformat(work[k]) for k in ("starts_at", "ends_at"))
    assert (starts, ends) == window
    both = await _get(client, token, f"{MESSAGES}?kind=maintenance,firmware_available")
    assert both["total"] == 5
    for query in ("kind=news", "page=0", "page=x", "kind=other&kind=other", "sort=asc"):
        resp = await client.get(f"{MESSAGES}?{query}", headers=bearer(token))
        assert await error_of(resp) == (400, 91001), query


# spec: MSG-1
async def test_popup_summary_is_the_unread_count_and_newest_10(
    client: Client, store: Store, sign_up: Callable[..., Any], login: Callable[..., Any]
) -> None:
    token = await _owner(sign_up, login)
    assert await _get(client, token, f"{MESSAGES}/summary") == {"unread": 0, "messages": []}
    ids = await _post(store, 12)
    summary = await _get(client, token, f"{MESSAGES}/summary")
    assert summary["unread"] == 12
    assert [m["id"] for m in summary["messages"]] == ids[::-1][:10]
    resp = await client.post(f"{MESSAGES}/{ids[-1]}/read", headers=bearer(token))
    assert resp.status == 200
    assert (await resp.json())["read"] is True
    again = await client.post(f"{MESSAGES}/{ids[-1]}/read", headers=bearer(token))
    assert again.status == 200  # marking twice is fine
    assert await _unread(client, token) == 11
    newest = (await _get(client, token, f"{MESSAGES}/summary"))["messages"][0]
    assert (newest["id"], newest["read"]) == (ids[-1], True)


# spec: MSG-1
async def test_read_state_is_per_viewer_and_shared_users_see_messages(
    client: Client, store: Store, sign_up: Callable[..., Any], login: Callable[..., Any]
) -> None:
    owner = await _owner(sign_up, login)
    _, guest = await shared_user(client, owner, login, 1, [])
    other_owner_id = await sign_up("other@example.com", "Other")
    assert other_owner_id
    other = str((await login("other@example.com"))["token"])
    ids = await _post(store, 3, "firmware_available")
    assert [await _unread(client, t) for t in (owner, guest, other)] == [3, 3, 3]
    await client.post(f"{MESSAGES}/{ids[0]}/read", headers=bearer(owner))
    assert [await _unread(client, t) for t in (owner, guest, other)] == [2, 3, 3]
    resp = await client.post(f"{MESSAGES}/read-all", headers=bearer(guest))
    assert (await resp.json()) == {"marked": 3}
    assert [await _unread(client, t) for t in (owner, guest, other)] == [2, 0, 3]
    again = await client.post(f"{MESSAGES}/read-all", headers=bearer(guest))
    assert (await again.json()) == {"marked": 0}
    history = await _get(client, token=owner, path=MESSAGES)
    assert [m["read"] for m in history["messages"]] == [False, False, True]
    await _post(store, 1, "other")  # a new message is unread for everyone, the guest too
    assert [await _unread(client, t) for t in (owner, guest, other)] == [3, 1, 4]


# spec: MSG-1
async def test_unknown_message_ids_are_404_91150_and_sign_in_is_needed(
    client: Client, store: Store, sign_up: Callable[..., Any], login: Callable[..., Any]
) -> None:
    token = await _owner(sign_up, login)
    [known] = await _post(store, 1, "maintenance")
    one = await _get(client, token, f"{MESSAGES}/{known}")
    assert (one["id"], one["kind"], one["read"]) == (known, "maintenance", False)
    for bad in (str(known + 1), "abc", "-1", "9" * 40):
        resp = await client.get(f"{MESSAGES}/{bad}", headers=bearer(token))
        assert await error_of(resp) == (404, 91150), bad
        resp = await client.post(f"{MESSAGES}/{bad}/read", headers=bearer(token))
        assert await error_of(resp) == (404, 91150), bad
    for method, path in (
        ("GET", MESSAGES),
        ("GET", f"{MESSAGES}/summary"),
        ("POST", f"{MESSAGES}/read-all"),
        ("POST", f"{MESSAGES}/{known}/read"),
    ):
        resp = await client.request(method, path)
        assert await error_of(resp) == (401, 50201), path


def _cli(settings: RelaySettings, *args: str) -> subprocess.CompletedProcess[str]:
    """``rmon-relay message …`` in a child process, on the test relay's data directory."""
    argv = [sys.executable, "-m", "relay.cli", "message", *args, "--data-dir"]
    return subprocess.run(
        [*argv, str(settings.data_dir)], capture_output=True, text=True, timeout=60, check=False
    )


# spec: MSG-1
async def test_operator_posts_and_lists_messages_with_the_cli(
    client: Client,
    relay_settings: RelaySettings,
    sign_up: Callable[..., Any],
    login: Callable[..., Any],
) -> None:
    token = await _owner(sign_up, login)
    posted = await asyncio.to_thread(
        _cli,
        relay_settings,
        "post",
        *("--kind", "maintenance", "--title", "Relay upgrade", "--body", "Short outage."),
        *("--starts", "2030-03-01T01:00:00Z", "--ends", "2030-03-01T02:00:00+00:00"),
    )
    assert posted.returncode == 0, posted.stderr
    assert posted.stdout.startswith("message posted: ")
    refused = [
        ("--kind", "maintenance", "--title", " ", "--body", "b"),
        ("--kind", "other", "--title", "t", "--body", "b", "--starts", "2030-03-01T01:00:00Z"),
        ("--kind", "maintenance", "--title", "t", "--body", "b", "--starts", "2030-03-01"),
        ("--kind", "maintenance", "--title", "t", "--body", "b", *WRONG_WAY_ROUND),
    ]
    for args in refused:
        result = await asyncio.to_thread(_cli, relay_settings, "post", *args)
        assert (result.returncode, result.stderr[:20]) == (2, "message not posted: "), args
    listed = await asyncio.to_thread(_cli, relay_settings, "list")
    assert listed.returncode == 0, listed.stderr
    [line] = listed.stdout.splitlines()
    assert "\tmaintenance\tRelay upgrade [2030-03-01T01:00:00+00:00 to 2030-03-01T02:00:00" in line
    maintenance = await _get(client, token, f"{MESSAGES}?kind=maintenance")
    assert [m["title"] for m in maintenance["messages"]] == ["Relay upgrade"]
    assert await _unread(client, token) == 1


# spec: MSG-1
async def test_every_message_route_is_in_the_openapi_document(client: Client) -> None:
    doc = await (await client.get("/api/v1/openapi.json")).json()
    expected = {
        (MESSAGES, "get"),
        (f"{MESSAGES}/summary", "get"),
        (f"{MESSAGES}/read-all", "post"),
        (f"{MESSAGES}/{{message_id}}", "get"),
        (f"{MESSAGES}/{{message_id}}/read", "post"),
    }
    found = {(p, m) for p, ops in doc["paths"].items() for m in ops if p.startswith(MESSAGES)}
    assert {(p, m) for p, m in found if m != "head"} == expected
    assert all(doc["paths"][p][m]["security"] for p, m in expected)
    assert "maintenance history" in doc["paths"][MESSAGES]["get"]["summary"]


# spec: MSG-1
async def test_postgres_read_markers_race_and_cascade(pg_store: Store) -> None:
    messages = _messages(pg_store)
    owner = await pg_store.create_account("o@example.com", "O", "h")
    assert owner is not None
    posted = [await messages.post("other", f"m{i}", "b") for i in range(5)]
    # Two tabs (or relays) marking at once: no duplicate-key error, each marker once.
    marks = await asyncio.gather(
        *(messages.mark_read(owner.id, posted[0].id) for _ in range(10)),
        messages.mark_all_read(owner.id),
        messages.mark_all_read(owner.id),
    )
    assert all(marks[:10])
    assert sum(marks[10:]) in (4, 5)  # the other four, plus the first if it won the race
    assert await messages.summary(owner.id, 10) == (0, await _all(messages, owner.id))
    assert not await messages.mark_read(owner.id, 10_000)
    page = await messages.page(owner.id, ["other"], offset=2, limit=2)
    assert ([r.title for r in page.rows], page.total) == (["m2", "m1"], 5)


async def _all(messages: MessageStore, account_id: str) -> list[Any]:
    return (await messages.page(account_id, [], offset=0, limit=100)).rows
