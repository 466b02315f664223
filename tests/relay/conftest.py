"""Fixtures for the relay tests: a real SQLite store in tmp_path, the real app on 127.0.0.1.

Time is injected: the store (and the auth service through it) reads a :class:`FakeClock` the
test advances, so timeouts and expiries are tested without sleeping.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from relay.app import create_app
from relay.auth import Auth, token_hash
from relay.cli_account import create_account
from relay.server import RelayServer
from relay.settings import RelaySettings
from relay.store import Store, open_store
from relay.web.keys import AUTH_KEY
from shared.models import CameraInventory

PASSWORD = "Good-pass1!"
Client = TestClient[web.Request, web.Application]
OWNER = "owner@example.com"


class FakeClock:
    """A UTC clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def make_settings(data_dir: Path, **overrides: Any) -> RelaySettings:
    """Settings for tests: cheap argon2 (the cost is the operator's choice, not under test)."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "password_hash_time_cost": 1,
        "password_hash_memory_kib": 64,
        "session_idle_timeout_s": 600,
        "session_absolute_timeout_s": 3600,
        "enrollment_grant_ttl_s": 300,
    }
    values.update(overrides)
    return RelaySettings(**values)


def public_key_hex() -> str:
    """A fresh raw Ed25519 public key in hex, as the agent sends it."""
    key = Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Tests override settings by redefining this fixture (or parametrizing it)."""
    return {}


@pytest.fixture
def relay_settings(tmp_path: Path, settings_overrides: dict[str, Any]) -> RelaySettings:
    return make_settings(tmp_path / "relay", **settings_overrides)


@pytest.fixture
async def store(relay_settings: RelaySettings, clock: FakeClock) -> AsyncIterator[Store]:
    store = await open_store(relay_settings.db_url, clock=clock)
    yield store
    await store.close()


@pytest.fixture
def app(relay_settings: RelaySettings, store: Store) -> web.Application:
    return create_app(relay_settings, store)


@pytest.fixture
async def client(app: web.Application) -> AsyncIterator[Client]:
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


@pytest.fixture
def sign_up(client: Client) -> Callable[..., Any]:
    """An active subscriber with good defaults, made the operator's way (``rmon-relay account
    create``: the viewer's sign-up needs a mailed link, see test_accounts_mail.py); returns
    the account id."""

    async def create(email: str = OWNER, name: str = "Owner", password: str = PASSWORD) -> str:
        auth = client.app[AUTH_KEY]
        account = await auth.sign_up(email, name, password, licence_accepted=True)
        return account.id

    return create


@pytest.fixture
def login(client: Client) -> Callable[..., Any]:
    """POST /api/v1/auth/login; returns the JSON body (token, csrf_token, account)."""

    async def run(email: str = OWNER, password: str = PASSWORD) -> dict[str, Any]:
        resp = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert resp.status == 200, await resp.text()
        body: dict[str, Any] = await resp.json()
        return body

    return run


async def error_of(resp: Any) -> tuple[int, int]:
    """(HTTP status, error code) of an error response, checking the body's shape."""
    body = await resp.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert isinstance(body["error"]["code"], int)
    assert body["error"]["message"]
    return resp.status, body["error"]["code"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def relay(tmp_path: Path, settings_overrides: dict[str, Any]) -> AsyncIterator[RelayServer]:
    """The real relay server (HTTPS and QUIC on one port of 127.0.0.1) with one subscriber."""
    settings = make_settings(
        tmp_path / "relay-server",
        **{"listen_host": "127.0.0.1", "listen_port": 0, **settings_overrides},
    )
    await create_account(settings, OWNER, "Owner", PASSWORD)
    server = RelayServer(settings)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def add_site(
    store: Store, owner_id: str, name: str, cameras: Sequence[CameraInventory] = ()
) -> tuple[str, dict[str, str]]:
    """Enroll a site for the subscriber through a grant, as ``rmon-agent register`` does, with
    this camera inventory; returns (device id, camera name or local id → camera id)."""
    grant = f"grant-{owner_id}-{name}"
    await store.create_grant(token_hash(grant), owner_id, store.now().replace(year=2099))
    device = await store.enroll_device(
        token_hash(grant), name=name, public_key="00" * 32, agent_version="t"
    )
    assert device is not None
    if cameras:
        await store.upsert_inventory(device.id, list(cameras))
    [item] = [i for i in await store.list_devices_for(owner_id) if i.device.id == device.id]
    ids = {c.name or c.local_id: c.id for c in item.cameras}
    return device.id, ids


async def shared_user(
    auth: Auth,
    owner_id: str,
    email: str,
    *,
    name: str = "Guest",
    group_no: int = 4,
    privacy_guard: bool = False,
) -> str:
    """A shared user whose password is PASSWORD, already usable (the invitation mail and the
    forced first change are USER-6's own tests); returns the user's id."""
    user = await auth.accounts.create_shared_user(
        owner_id,
        email=email,
        name=name,
        password_hash=await auth.hash_password(PASSWORD),
        group_no=group_no,
        allow_device_settings=False,
        privacy_guard=privacy_guard,
        limit=200,
    )
    assert not isinstance(user, str), user
    await auth.accounts.set_password(user.id, user.password_hash)
    return user.id
