"""Issue 5 acceptance: 1 000 concurrent wrong-password logins for one account, spread over two
relay app instances that share one store file (two engines, as two relay processes would).

At most ``login_max_failures`` attempts may reach the password check; the account is then
locked, the right password is refused until the lock ends (injected clock), and an unknown
address gets answers that look exactly the same.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

import pytest
from aiohttp.test_utils import TestClient, TestServer
from argon2 import PasswordHasher

from relay.app import create_app
from relay.auth import Auth
from relay.settings import RelaySettings
from relay.store import Store, open_store
from relay.web.keys import AUTH_KEY
from tests.relay.conftest import OWNER, PASSWORD, Client, FakeClock, make_settings

ATTEMPTS = 1000
LOGIN = "/api/v1/auth/login"


class CountingHasher(PasswordHasher):
    """argon2id as configured, counting how many times a password reaches the check."""

    def __init__(self, settings: RelaySettings) -> None:
        super().__init__(
            time_cost=settings.password_hash_time_cost,
            memory_cost=settings.password_hash_memory_kib,
        )
        self.checks = 0
        self._lock = threading.Lock()

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        """Count, then check (runs in worker threads)."""
        with self._lock:
            self.checks += 1
        return super().verify(hash, password)


@pytest.fixture
async def two_relays(
    tmp_path: Path, clock: FakeClock
) -> AsyncIterator[tuple[list[Client], list[CountingHasher]]]:
    """Two apps, each with its own store engine on the same SQLite file."""
    settings = make_settings(tmp_path / "relay")
    stores: list[Store] = [await open_store(settings.db_url, clock=clock) for _ in range(2)]
    clients: list[Client] = []
    hashers = [CountingHasher(settings) for _ in stores]
    try:
        for store, hasher in zip(stores, hashers, strict=True):
            app = create_app(settings, store)
            app[AUTH_KEY] = Auth(settings, store, hasher=hasher)
            client: Client = TestClient(TestServer(app, host="127.0.0.1"))
            await client.start_server()
            clients.append(client)
        await clients[0].app[AUTH_KEY].sign_up(OWNER, "Owner", PASSWORD, licence_accepted=True)
        for hasher in hashers:
            hasher.checks = 0
        yield clients, hashers
    finally:
        for client in clients:
            await client.close()
        for store in stores:
            await store.close()


async def _storm(clients: list[Client], email: str) -> list[tuple[int, Any]]:
    """ATTEMPTS concurrent wrong logins, alternating between the relays."""

    async def one(i: int) -> tuple[int, Any]:
        resp = await clients[i % 2].post(LOGIN, json={"email": email, "password": "Wrong-pass9!"})
        return resp.status, await resp.json()

    return await asyncio.gather(*(one(i) for i in range(ATTEMPTS)))


def _shapes(answers: list[tuple[int, Any]]) -> set[tuple[int, int, str]]:
    return {(status, body["error"]["code"], body["error"]["message"]) for status, body in answers}


# spec: USER-3
@pytest.mark.timeout(120)
async def test_concurrent_wrong_logins_across_two_relays(
    two_relays: tuple[list[Client], list[CountingHasher]], clock: FakeClock
) -> None:
    clients, hashers = two_relays
    answers = await _storm(clients, OWNER)
    checks = sum(h.checks for h in hashers)
    assert 1 <= checks <= 5, f"{checks} attempts reached the password check"
    codes = [body["error"]["code"] for _, body in answers]
    assert codes.count(400224) + codes.count(400225) == ATTEMPTS
    assert codes.count(400225) >= ATTEMPTS - 5

    right = {"email": OWNER, "password": PASSWORD}
    for client in clients:
        resp = await client.post(LOGIN, json=right)
        assert resp.status == 429
        assert (await resp.json())["error"]["code"] == 400225
    clock.advance(899)  # the longest lock is 15 minutes
    assert (await clients[1].post(LOGIN, json=right)).status == 429
    clock.advance(2)
    resp = await clients[1].post(LOGIN, json=right)
    assert resp.status == 200, await resp.text()

    for hasher in hashers:
        hasher.checks = 0
    unknown = await _storm(clients, "nobody@example.com")
    assert _shapes(unknown) == _shapes(answers)
    assert sum(h.checks for h in hashers) <= 5
