"""Connection history (DEV-7) through the real app and a real SQLite store.

Rows are written the way the tunnel writes them (``set_device_online``/``record_refusal``) with
an injected clock, then read through ``GET /api/v1/connection-history``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta, timezone
from typing import Any

import pytest

from relay.store import Store
from relay.web.history import MAX_PAGE
from tests.relay.conftest import OWNER, Client, FakeClock, bearer, error_of, public_key_hex

URL = "/api/v1/connection-history"


async def _device(store: Store, clock: FakeClock, account_id: str, name: str) -> str:
    """A device enrolled into ``account_id`` (grant + enroll, as the enrollment API does)."""
    grant = f"grant-{name}"
    await store.create_grant(grant, account_id, clock.now + timedelta(minutes=5))
    device = await store.enroll_device(
        grant, name=name, public_key=public_key_hex(), agent_version="1"
    )
    assert device is not None
    return device.id


async def _cycles(store: Store, clock: FakeClock, device_id: str, count: int) -> None:
    """``count`` connect/disconnect pairs, one minute apart."""
    for _ in range(count):
        clock.advance(60)
        await store.set_device_online(device_id, True, "relay-1", reason="authenticated")
        clock.advance(60)
        await store.set_device_online(
            device_id, False, "relay-1", reason="heartbeat timeout", address="203.0.113.7:5000"
        )


async def _get(client: Client, token: str, **params: str) -> Any:
    resp = await client.get(URL, params=params, headers=bearer(token))
    assert resp.status == 200, await resp.text()
    return await resp.json()


@pytest.fixture
async def two_accounts(sign_up: Callable[..., Any]) -> tuple[str, str]:
    """Account ids of the owner and of another subscriber."""
    return await sign_up(), await sign_up("other@example.com", "Other")


@pytest.fixture
def token_of(login: Callable[..., Any]) -> Callable[..., Any]:
    """A fresh session token (log in after the fake clock moved, or the session times out)."""

    async def run(email: str = OWNER) -> str:
        return str((await login(email))["token"])

    return run


# spec: DEV-7
async def test_history_is_paged_by_50_newest_first_and_only_the_viewers_own(
    client: Client, store: Store, clock: FakeClock, two_accounts: Any, token_of: Any
) -> None:
    mine, theirs = two_accounts
    berlin = await _device(store, clock, mine, "Berlin Shop")
    london = await _device(store, clock, mine, "London")
    other = await _device(store, clock, theirs, "Berlin Other")
    await _cycles(store, clock, berlin, 30)
    await _cycles(store, clock, london, 5)
    await _cycles(store, clock, other, 3)
    token, their_token = await token_of(), await token_of("other@example.com")

    first = await _get(client, token)
    assert (first["page"], first["page_size"], first["total"]) == (1, 50, 70)
    assert len(first["items"]) == 50
    times = [item["at"] for item in first["items"]]
    assert times == sorted(times, reverse=True)
    newest = first["items"][0]
    assert newest["device_name"] == "London"
    assert newest["status"] == "disconnected"
    assert newest["reason"] == "heartbeat timeout"
    assert newest["address"] == "203.0.113.7:5000"
    assert newest["refused"] is False
    second = await _get(client, token, page="2")
    assert len(second["items"]) == 20
    assert {i["device_id"] for i in first["items"] + second["items"]} == {berlin, london}
    assert (await _get(client, token, page="3"))["items"] == []

    theirs_page = await _get(client, their_token)
    assert theirs_page["total"] == 6
    assert {i["device_id"] for i in theirs_page["items"]} == {other}


# spec: DEV-7
async def test_history_filters_by_fuzzy_name_time_range_and_status(
    client: Client, store: Store, clock: FakeClock, two_accounts: Any, token_of: Any
) -> None:
    mine, theirs = two_accounts
    berlin = await _device(store, clock, mine, "Berlin Shop")
    london = await _device(store, clock, mine, "London_1%")
    await _device(store, clock, theirs, "Berlin Other")
    start = clock.now
    await _cycles(store, clock, berlin, 3)
    await _cycles(store, clock, london, 2)
    token = await token_of()

    by_name = await _get(client, token, device="bERL")  # part of the name, any case
    assert by_name["total"] == 6
    assert {i["device_id"] for i in by_name["items"]} == {berlin}
    assert (await _get(client, token, device="n_1%"))["total"] == 4  # LIKE wildcards are literal
    assert (await _get(client, token, device="n_x"))["total"] == 0
    assert (await _get(client, token, device=london))["total"] == 4  # an exact device id too

    connected = await _get(client, token, status="connected")
    assert connected["total"] == 5
    assert {i["status"] for i in connected["items"]} == {"connected"}
    assert (await _get(client, token, status="disconnected"))["total"] == 5

    # Berlin's rows are at start+1..6 min, London's at start+7..10 min; bounds are inclusive.
    lo = (start + timedelta(minutes=2)).isoformat()
    hi = (start + timedelta(minutes=7)).isoformat()
    window = await _get(client, token, **{"from": lo, "to": hi})
    assert window["total"] == 6
    assert [i["device_id"] for i in window["items"]] == [london] + [berlin] * 5
    zulu = (start + timedelta(minutes=9)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (await _get(client, token, **{"from": zulu}))["total"] == 2
    offset = (start + timedelta(minutes=9)).astimezone(timezone(timedelta(hours=9)))
    assert (await _get(client, token, **{"from": offset.isoformat()}))["total"] == 2
    both = await _get(client, token, device="berlin", status="disconnected", **{"to": hi})
    assert both["total"] == 3


# spec: DEV-7
async def test_refusals_are_flagged_and_an_unrecorded_end_is_closed_on_reconnect(
    client: Client, store: Store, clock: FakeClock, two_accounts: Any, token_of: Any
) -> None:
    mine, _ = two_accounts
    site = await _device(store, clock, mine, "Site")
    await store.record_refusal(site, "refused: key proof failed", "198.51.100.9:4433")
    await store.record_refusal("no-such-device", "refused: key proof failed")
    clock.advance(1)
    await store.set_device_online(site, True, "relay-a", reason="authenticated")
    clock.advance(1)  # relay A is SIGKILLed: nobody writes the disconnect
    await store.set_device_online(site, True, "relay-b", reason="authenticated")
    token = await token_of()

    items = (await _get(client, token))["items"]
    assert [(i["status"], i["reason"], i["refused"]) for i in reversed(items)] == [
        ("disconnected", "refused: key proof failed", True),
        ("connected", "authenticated", False),
        ("disconnected", "connection lost (relay restarted or lost the tunnel)", False),
        ("connected", "authenticated", False),
    ]


BAD = [
    ({"page": "0"}, "page"),
    ({"page": "-1"}, "page"),
    ({"page": "two"}, "page"),
    ({"page": str(MAX_PAGE + 1)}, "page"),
    ({"status": "online"}, "status"),
    ({"from": "yesterday"}, "from"),
    ({"from": "2030-01-01T10:00:00"}, "time zone"),
    ({"to": "2030-13-01T00:00:00Z"}, "to"),
    ({"from": "2030-01-02T00:00:00Z", "to": "2030-01-01T00:00:00Z"}, "after"),
    ({"device": "x" * 65}, "device"),
    ({"state": "connected"}, "unknown parameter"),
]


# spec: DEV-7
@pytest.mark.parametrize(("params", "named"), BAD)
async def test_bad_parameters_get_a_400_that_names_them(
    client: Client, two_accounts: Any, token_of: Any, params: dict[str, str], named: str
) -> None:
    token = await token_of()
    resp = await client.get(URL, params=params, headers=bearer(token))
    assert await error_of(resp) == (400, 91001)
    assert named in (await resp.json())["error"]["message"]


async def test_repeated_parameter_and_no_session_are_refused(
    client: Client, two_accounts: Any, token_of: Any
) -> None:
    token = await token_of()
    resp = await client.get(f"{URL}?status=connected&status=disconnected", headers=bearer(token))
    assert await error_of(resp) == (400, 91001)
    assert await error_of(await client.get(URL)) == (401, 50201)


async def test_history_route_is_in_the_openapi_document(client: Client) -> None:
    doc = await (await client.get("/api/v1/openapi.json")).json()
    assert "get" in doc["paths"]["/api/v1/connection-history"]
