"""The command, log and event API (DEV-2, DEV-4, DEV-8): validation, authorisation against the
store, and how stored results are shown. The site is offline here (no tunnel): commands stay
pending, logs come from what was fetched before; the tunnel path is in the QUIC tests."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from agent.logs import fetch_payload
from agent.store.logbook import LogBook, LogEntry
from relay.app import create_app
from relay.errors import Code
from relay.settings import RelaySettings
from relay.store import Store
from relay.store.commands import CommandStore
from relay.tunnel.commands import CommandPlane
from relay.web.keys import COMMANDS_KEY
from shared import models
from tests.relay.conftest import Client, bearer, error_of
from tests.relay.plane_kit import add_device

OTHER = "other@example.com"


@pytest.fixture
def app(relay_settings: RelaySettings, store: Store) -> web.Application:
    """The real app with a command plane that has no tunnel sessions (every site offline)."""
    app = create_app(relay_settings, store)
    app[COMMANDS_KEY] = CommandPlane(CommandStore(store.engine, clock=store.clock), lambda _: None)
    return app


@pytest.fixture
async def owner(sign_up: Callable[..., Any], login: Callable[..., Any]) -> dict[str, str]:
    await sign_up()
    return bearer((await login())["token"])


@pytest.fixture
async def device_id(owner: dict[str, str], store: Store) -> str:
    return await add_device(store)


async def _post(client: Client, headers: dict[str, str], device: str, body: Any) -> Any:
    return await client.post(f"/api/v1/devices/{device}/commands", json=body, headers=headers)


# spec: DEV-2
async def test_a_command_is_stored_pending_and_readable(
    client: Client, owner: dict[str, str], device_id: str
) -> None:
    resp = await _post(client, owner, device_id, {"kind": "restart", "args": {}})
    assert resp.status == 202, await resp.text()
    body = await resp.json()
    assert body["state"] == "pending"
    resp = await client.get(f"/api/v1/commands/{body['id']}", headers=owner)
    assert resp.status == 200
    got = await resp.json()
    assert (got["id"], got["kind"], got["target"], got["state"]) == (
        body["id"],
        "restart",
        "",
        "pending",
    )


async def test_unknown_or_foreign_device_is_404(
    client: Client,
    owner: dict[str, str],
    device_id: str,
    sign_up: Callable[..., Any],
    login: Callable[..., Any],
) -> None:
    resp = await _post(client, owner, "no-such-device", {"kind": "restart"})
    assert await error_of(resp) == (404, Code.NOT_FOUND)

    await sign_up(email=OTHER)
    other = bearer((await login(email=OTHER))["token"])
    resp = await _post(client, other, device_id, {"kind": "restart"})
    assert await error_of(resp) == (404, Code.NOT_FOUND)
    mine = await (await _post(client, owner, device_id, {"kind": "alarm_reset"})).json()
    resp = await client.get(f"/api/v1/commands/{mine['id']}", headers=other)
    assert await error_of(resp) == (404, Code.NOT_FOUND)
    for path in ("logs", "events"):
        resp = await client.get(f"/api/v1/devices/{device_id}/{path}", headers=other)
        assert await error_of(resp) == (404, Code.NOT_FOUND)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"kind": "format_disk"}, "unknown command kind 'format_disk'"),
        ({}, "unknown command kind ''"),
        ({"kind": "restart", "args": {"type": "error"}}, "restart does not take type"),
        ({"kind": "log_fetch", "args": {"type": "secrets"}}, "type: expected one of"),
        ({"kind": "restart", "deadline_s": 10**9}, "deadline_s: at most"),
        ({"kind": 5}, "kind"),
        ({"kind": "restart", "args": {"camera": 5}}, "args.camera"),
    ],
)
async def test_bad_commands_are_400_with_a_clear_message(
    client: Client, owner: dict[str, str], device_id: str, body: Any, words: str
) -> None:
    resp = await _post(client, owner, device_id, body)
    assert await error_of(resp) == (400, Code.BAD_REQUEST)
    assert words in (await resp.json())["error"]["message"]


# spec: DEV-2
async def test_a_camera_of_another_site_cannot_be_restarted(
    client: Client, owner: dict[str, str], device_id: str, store: Store
) -> None:
    other_site = await add_device(store)
    await store.upsert_inventory(other_site, [models.CameraInventory(local_id="cam-x")])
    account = await store.get_account_by_email("owner@example.com")
    assert account is not None
    [item] = [d for d in await store.list_devices_for(account.id) if d.cameras]
    body = {"kind": "restart", "args": {"camera": item.cameras[0].id}}
    resp = await _post(client, owner, device_id, body)
    assert await error_of(resp) == (404, Code.NOT_FOUND)
    resp = await _post(client, owner, other_site, body)
    assert resp.status == 202
    assert (await resp.json())["target"] == "cam-x"


async def test_without_a_session_it_is_401(client: Client, device_id: str) -> None:
    resp = await _post(client, {}, device_id, {"kind": "restart"})
    assert resp.status == 401


# spec: DEV-8
async def test_logs_of_an_offline_site_never_fetched_are_503(
    client: Client, owner: dict[str, str], device_id: str
) -> None:
    resp = await client.get(f"/api/v1/devices/{device_id}/logs?type=error", headers=owner)
    assert await error_of(resp) == (503, Code.DEVICE_OFFLINE)


async def _stored_log_fetch(store: Store, device_id: str, tmp_path: Path) -> None:
    """A log_fetch that ran earlier, with the agent's real payload."""
    book = LogBook(tmp_path / "agent-logs.db")
    at = 1_900_000_000.0  # 2030-03-17 17:46:40 UTC
    book.add("error", LogEntry(at, 7200, "ERROR", "agent.app", "=cmd|' /C calc'!A0"))
    book.add("error", LogEntry(at + 60, 7200, "WARNING", "agent.tunnel", "relay silent"))
    payload = fetch_payload(book, "error")
    book.close()
    commands = CommandStore(store.engine, clock=store.clock)
    row = await commands.create(
        device_id, "log_fetch", args={"type": "error"}, deadline=store.now() + timedelta(1)
    )
    result = models.CommandResult(
        id=row.id, outcome="done", result=payload, finished_at=time.time()
    )
    assert await commands.record_results(device_id, [result]) == [row.id]


# spec: DEV-8
async def test_logs_show_the_latest_fetch_in_site_or_viewer_time_and_as_csv(
    client: Client, owner: dict[str, str], device_id: str, store: Store, tmp_path: Path
) -> None:
    await _stored_log_fetch(store, device_id, tmp_path)
    base = f"/api/v1/devices/{device_id}/logs?type=error"

    local = await (await client.get(base, headers=owner)).json()
    assert local["stale"] is True
    assert [e["time"] for e in local["entries"]] == [
        "2030-03-17T19:47:40+02:00",
        "2030-03-17T19:46:40+02:00",
    ]
    viewer = await (
        await client.get(base + "&tz=viewer&viewer_tz=Asia/Tokyo", headers=owner)
    ).json()
    assert viewer["time_zone"] == "Asia/Tokyo"
    assert viewer["entries"][0]["time"] == "2030-03-18T02:47:40+09:00"

    resp = await client.get(base + "&format=csv", headers=owner)
    assert resp.status == 200
    assert resp.content_type == "text/csv"
    rows = list(csv.reader(io.StringIO(await resp.text())))
    assert rows[0] == ["time", "level", "source", "message"]
    assert rows[2][3] == "'=cmd|' /C calc'!A0"  # a formula is defused, not run by a spreadsheet


@pytest.mark.parametrize(
    "query", ["type=secrets", "tz=mars", "format=xml", "tz=viewer&viewer_tz=Not/AZone"]
)
async def test_bad_log_queries_are_400(
    client: Client, owner: dict[str, str], device_id: str, query: str
) -> None:
    resp = await client.get(f"/api/v1/devices/{device_id}/logs?{query}", headers=owner)
    assert await error_of(resp) == (400, Code.BAD_REQUEST)


async def test_events_are_listed_in_order_after_a_sequence_number(
    client: Client, owner: dict[str, str], device_id: str, store: Store
) -> None:
    commands = CommandStore(store.engine, clock=store.clock)
    events = [
        models.Event(seq=s, kind="motion", camera="cam-1", at=1_900_000_000 + s, payload={"n": s})
        for s in (3, 1, 2)
    ]
    assert await commands.store_events(device_id, events) == 3
    assert await commands.store_events(device_id, events[:1]) == 3  # a replay stores nothing

    resp = await client.get(f"/api/v1/devices/{device_id}/events?after=1", headers=owner)
    body = await resp.json()
    assert [e["seq"] for e in body["events"]] == [2, 3]
    assert body["next_after"] == 3
    assert body["events"][0]["payload"] == {"n": 2}
    resp = await client.get(f"/api/v1/devices/{device_id}/events?after=x", headers=owner)
    assert await error_of(resp) == (400, Code.BAD_REQUEST)
