"""The app's shell: OpenAPI covers every route, error bodies, security headers, the portal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from relay.cli_account import create_account
from relay.errors import ApiError
from relay.settings import RelaySettings
from relay.store import Store, open_store
from relay.web.portal import PORTAL_DIR
from tests.relay.conftest import OWNER, PASSWORD, Client, error_of


async def test_openapi_lists_every_route(client: Client, app: web.Application) -> None:
    """Each (method, path) the router holds is an operation in the document."""
    resp = await client.get("/api/v1/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"] == "3.1.0"
    registered = set()
    for resource in app.router.resources():
        info = resource.get_info()
        path = info.get("path") or info.get("formatter") or info["prefix"] + "/{filename}"
        for route in resource:
            registered.add((route.method.lower(), path))
    documented = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    assert registered
    assert registered <= documented
    for needed in [
        ("post", "/api/v1/auth/login"),
        ("post", "/api/v1/auth/logout"),
        ("get", "/api/v1/auth/session"),
        ("post", "/api/v1/auth/signup"),
        ("get", "/api/v1/devices"),
        ("post", "/api/v1/enroll/grant"),
        ("post", "/api/v1/enroll/device"),
        ("get", "/api/v1/openapi.json"),
        ("get", "/api/v1/cameras/{camera_id}/live"),
        ("get", "/"),
    ]:
        assert needed in documented
    login = doc["paths"]["/api/v1/auth/login"]["post"]
    ref = login["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert login["requestBody"]["required"] is False  # every field defaults: no body is {}
    assert ref.rsplit("/", 1)[1] in doc["components"]["schemas"]
    assert login["security"] == []
    assert doc["paths"]["/api/v1/devices"]["get"]["security"]
    snapshot = doc["paths"]["/api/v1/cameras/{camera_id}/snapshot"]["get"]
    assert snapshot["parameters"][0]["name"] == "camera_id"


async def test_error_bodies_for_unknown_routes_and_methods(client: Client) -> None:
    assert await error_of(await client.get("/api/v1/nothing-here")) == (404, 91007)
    resp = await client.delete("/api/v1/devices")
    assert await error_of(resp) == (405, 91008)
    assert "GET" in resp.headers["Allow"]  # RFC 9110: a 405 says which methods there are
    # A literal route shadows the parameter route after it: only its own methods are listed.
    resp = await client.options("/api/v1/favorites/order")
    assert (resp.status, resp.headers["Allow"]) == (405, "POST")
    resp = await client.post("/api/v1/folders/devices")
    assert (resp.status, resp.headers["Allow"]) == (405, "GET,HEAD")


@pytest.fixture
async def crashing_client(relay_settings: RelaySettings, store: Store) -> AsyncIterator[Client]:
    """The real app plus a route that fails, and one that refuses with an ApiError."""
    from relay.app import create_app

    app = create_app(relay_settings, store)

    async def crash(request: web.Request) -> web.Response:
        raise RuntimeError("secret detail")

    async def refuse(request: web.Request) -> web.Response:
        raise ApiError.device_offline()

    app.router.add_get("/api/v1/test/crash", crash)
    app.router.add_get("/api/v1/test/refuse", refuse)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


async def test_unexpected_errors_are_a_generic_500(crashing_client: Client) -> None:
    resp = await crashing_client.get("/api/v1/test/crash")
    assert await error_of(resp) == (500, 500)
    assert "secret" not in await resp.text()
    resp = await crashing_client.get("/api/v1/test/refuse")
    assert await error_of(resp) == (503, 50115)


@pytest.mark.parametrize("path", ["/", "/api/v1/devices", "/portal/api.js", "/api/v1/nope"])
async def test_security_headers_on_every_response(client: Client, path: str) -> None:
    resp = await client.get(path)
    csp = resp.headers["Content-Security-Policy"]
    for directive in [
        "default-src 'self'",
        "media-src 'self' blob:",
        "img-src 'self' blob: data:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ]:
        assert directive in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "no-referrer"


async def test_portal_files_are_served(client: Client) -> None:
    """/portal/… from relay/portal/; / is its index.html once the portal has one."""
    resp = await client.get("/portal/api.js")
    assert resp.status == 200
    assert (await resp.read()) == (PORTAL_DIR / "api.js").read_bytes()
    assert (await client.get("/portal/../settings.py")).status == 404
    resp = await client.get("/")
    if (PORTAL_DIR / "index.html").is_file():
        assert resp.status == 200
        assert resp.content_type == "text/html"
    else:
        assert resp.status == 404


# spec: USER-1
async def test_cli_account_create_validates_like_sign_up(tmp_path: Path) -> None:
    """``rmon-relay account create``: same rules as the API, errors as ApiError."""
    settings = RelaySettings(
        data_dir=tmp_path / "cli", password_hash_time_cost=1, password_hash_memory_kib=64
    )
    account_id = await create_account(settings, OWNER, "Owner", PASSWORD)
    with pytest.raises(ApiError) as dup:
        await create_account(settings, OWNER.upper(), "Owner", PASSWORD)
    assert dup.value.code == 400229
    with pytest.raises(ApiError) as weak:
        await create_account(settings, "b@example.com", "B", "weak")
    assert weak.value.code == 91002
    store = await open_store(settings.db_url)
    try:
        account = await store.get_account(account_id)
    finally:
        await store.close()
    assert account is not None
    assert account.email == OWNER
