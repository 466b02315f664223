"""Sign-up, login, lockout, sessions, cookies, bearer tokens and CSRF through the real app."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from relay.store import Store
from relay.store.schema import accounts, sessions
from tests.relay.conftest import OWNER, PASSWORD, Client, FakeClock, bearer, error_of

SIGN_UP = "/api/v1/auth/signup"
LOGIN = "/api/v1/auth/login"
SESSION = "/api/v1/auth/session"
LOGOUT = "/api/v1/auth/logout"


def _signup_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "email": OWNER,
        "name": "Owner",
        "password": PASSWORD,
        "accept_eula": True,
    }
    body.update(overrides)
    return body


# spec: USER-1, USER-2
@pytest.mark.parametrize(
    ("overrides", "status", "code"),
    [
        ({"name": ""}, 400, 400249),
        ({"name": "   "}, 400, 400249),
        ({"name": "x" * 33}, 400, 400250),
        ({"accept_eula": False}, 400, 91003),
        ({"email": "not-an-address"}, 400, 91004),
        ({"password": "Sh0rt!"}, 400, 91002),  # too short
        ({"password": "A1!" + "a" * 30}, 400, 91002),  # 33 characters
        ({"password": "alllower1!"}, 400, 91002),  # no upper case
        ({"password": "ALLUPPER1!"}, 400, 91002),  # no lower case
        ({"password": "NoDigits!!"}, 400, 91002),
        ({"password": "NoSymbol12"}, 400, 91002),
        ({"password": "Has#Other-1"}, 400, 91002),  # symbols, but none of USER-2's
        ({"password": "xOwner@example.com1"}, 400, 91002),  # contains the e-mail
        ({"password": "Aowner1!"}, 400, 91002),  # contains the e-mail's local part
        ({"password": "Password1!"}, 400, 91002),  # a common password dressed up (blocklist)
        ({"password": "P@ssw0rd2024"}, 400, 91002),  # the same with letter substitutions
        ({"name": 7}, 400, 91001),  # wrong JSON type
    ],
)
async def test_sign_up_validation_codes(
    client: Client, overrides: dict[str, Any], status: int, code: int
) -> None:
    resp = await client.post(SIGN_UP, json=_signup_body(**overrides))
    assert await error_of(resp) == (status, code)


# spec: USER-1, USER-2
async def test_sign_up_accepts_rules_and_refuses_duplicate(
    client: Client, store: Store, sign_up: Callable[..., Any]
) -> None:
    """32-character names and every allowed symbol pass (202: a link is mailed, see
    test_accounts_mail.py); a registered address, in any case, is 400229."""
    resp = await client.post(
        SIGN_UP, json=_signup_body(name="n" * 32, password="Aa1@$!%*?&/", email="Owner@Example.com")
    )
    assert resp.status == 202, await resp.text()
    async with store.engine.connect() as conn:
        assert (await conn.execute(select(accounts.c.id))).first() is None  # not before the link
    await sign_up()
    resp = await client.post(SIGN_UP, json=_signup_body(email="OWNER@example.com "))
    assert await error_of(resp) == (409, 400229)
    async with store.engine.connect() as conn:
        stored = (await conn.execute(select(accounts.c.password_hash))).scalar_one()
    assert stored.startswith("$argon2id$")


async def test_malformed_json_is_91001(client: Client) -> None:
    resp = await client.post(
        SIGN_UP, data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert await error_of(resp) == (400, 91001)


# spec: USER-3
async def test_login_success_sets_a_host_cookie_and_returns_tokens(
    client: Client, sign_up: Callable[..., Any], store: Store
) -> None:
    """__Host- cookie: Secure, HttpOnly, SameSite=Strict, Path=/; only the token's hash stored."""
    account_id = await sign_up()
    resp = await client.post(LOGIN, json={"email": "Owner@Example.com", "password": PASSWORD})
    assert resp.status == 200
    body = await resp.json()
    assert body["account"] == {
        "id": account_id,
        "email": OWNER,
        "name": "Owner",
        "role": "subscriber",
        "must_change_password": False,
    }
    assert body["token"]
    assert body["csrf_token"]
    [cookie] = resp.headers.getall("Set-Cookie")
    parts = [p.strip() for p in cookie.split(";")]
    assert parts[0] == f"__Host-rmon_session={body['token']}"
    flags = {p.split("=")[0].lower(): p for p in parts[1:]}
    assert {"secure", "httponly", "samesite", "path"} <= set(flags)
    assert flags["samesite"] == "SameSite=Strict"
    assert flags["path"] == "Path=/"
    assert "domain" not in flags  # __Host- cookies must not name a domain
    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(sessions))).all()
    assert [row.token_hash for row in rows] == [hashlib.sha256(body["token"].encode()).hexdigest()]
    assert body["token"] not in str(rows)


@pytest.mark.parametrize("settings_overrides", [{"cookie_secure": False}])
async def test_plain_cookie_when_not_secure(
    client: Client, sign_up: Callable[..., Any], settings_overrides: dict[str, Any]
) -> None:
    """For plain-HTTP development: rmon_session, HttpOnly and Strict but not Secure."""
    await sign_up()
    resp = await client.post(LOGIN, json={"email": OWNER, "password": PASSWORD})
    [cookie] = resp.headers.getall("Set-Cookie")
    assert cookie.startswith("rmon_session=")
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Secure" not in cookie
    token = (await resp.json())["token"]
    resp = await client.get(SESSION, headers={"Cookie": f"rmon_session={token}"})
    assert resp.status == 200


# spec: USER-3
async def test_wrong_password_and_unknown_user_get_the_same_answer(
    client: Client, sign_up: Callable[..., Any]
) -> None:
    await sign_up()
    wrong = await client.post(LOGIN, json={"email": OWNER, "password": "Wrong-pass1!"})
    unknown = await client.post(LOGIN, json={"email": "nobody@example.com", "password": PASSWORD})
    assert await error_of(wrong) == (401, 400224)
    assert await error_of(unknown) == (401, 400224)
    assert await wrong.json() == await unknown.json()
    assert "Set-Cookie" not in wrong.headers


# spec: USER-3
async def test_lockout_after_repeated_failures_then_unlocks(
    client: Client, sign_up: Callable[..., Any], clock: FakeClock
) -> None:
    """Five failures lock the address (even the right password is refused) for up to 15 min."""
    await sign_up()
    codes = []
    for _ in range(5):
        resp = await client.post(LOGIN, json={"email": OWNER, "password": "Wrong-pass1!"})
        codes.append((await error_of(resp))[1])
    assert codes == [400224] * 4 + [400225]
    resp = await client.post(LOGIN, json={"email": OWNER, "password": PASSWORD})
    assert await error_of(resp) == (429, 400225)
    clock.advance(15 * 60)  # the longest lock there is
    resp = await client.post(LOGIN, json={"email": OWNER, "password": PASSWORD})
    assert resp.status == 200
    resp = await client.post(LOGIN, json={"email": OWNER, "password": "Wrong-pass1!"})
    assert await error_of(resp) == (401, 400224)  # success cleared the counter


# spec: USER-3
async def test_unknown_addresses_lock_too(client: Client) -> None:
    """Locking does not reveal which addresses have accounts."""
    codes = []
    for _ in range(6):
        resp = await client.post(LOGIN, json={"email": "ghost@example.com", "password": "x"})
        codes.append((await error_of(resp))[1])
    assert codes[-1] == 400225


# spec: USER-3
async def test_concurrent_wrong_logins_are_all_counted(
    client: Client, sign_up: Callable[..., Any], store: Store
) -> None:
    """50 concurrent wrong logins leave failures at exactly 50, across refusals and locks."""
    await sign_up()
    responses = await asyncio.gather(
        *(client.post(LOGIN, json={"email": OWNER, "password": f"Wrong-{i}!"}) for i in range(50))
    )
    codes = {(await error_of(resp))[1] for resp in responses}
    assert codes <= {400224, 400225}
    assert 400225 in codes
    lock = await store.login_lock(OWNER)
    assert lock is not None
    assert lock.failures == 50
    resp = await client.post(LOGIN, json={"email": OWNER, "password": PASSWORD})
    assert await error_of(resp) == (429, 400225)


# spec: USER-3, APP-3
async def test_bearer_token_works_without_csrf(
    client: Client, sign_up: Callable[..., Any], login: Callable[..., Any]
) -> None:
    await sign_up()
    body = await login()
    resp = await client.get(SESSION, headers=bearer(body["token"]))
    assert resp.status == 200
    session = await resp.json()
    assert session["account"]["email"] == OWNER
    assert session["csrf_token"] == body["csrf_token"]
    resp = await client.post(LOGOUT, headers=bearer(body["token"]))  # state change, no CSRF
    assert resp.status == 204
    resp = await client.get(SESSION, headers=bearer(body["token"]))
    assert await error_of(resp) == (401, 50201)


async def test_no_or_bad_token_is_50201(client: Client) -> None:
    assert await error_of(await client.get(SESSION)) == (401, 50201)
    resp = await client.get(SESSION, headers=bearer("made-up"))
    assert await error_of(resp) == (401, 50201)
    resp = await client.get("/api/v1/devices", headers={"Cookie": "__Host-rmon_session=nope"})
    assert await error_of(resp) == (401, 50201)


async def test_csrf_is_required_for_cookie_state_changes(
    client: Client, sign_up: Callable[..., Any], login: Callable[..., Any]
) -> None:
    """A cookie-authenticated POST needs X-CSRF-Token; GETs do not."""
    await sign_up()
    body = await login()
    cookie = {"Cookie": f"__Host-rmon_session={body['token']}"}
    assert (await client.get(SESSION, headers=cookie)).status == 200
    resp = await client.post(LOGOUT, headers=cookie)
    assert await error_of(resp) == (403, 91005)
    resp = await client.post(LOGOUT, headers={**cookie, "X-CSRF-Token": "wrong"})
    assert await error_of(resp) == (403, 91005)
    assert (await client.get(SESSION, headers=cookie)).status == 200  # still logged in
    resp = await client.post(LOGOUT, headers={**cookie, "X-CSRF-Token": body["csrf_token"]})
    assert resp.status == 204
    assert "Max-Age=0" in resp.headers["Set-Cookie"]
    assert await error_of(await client.get(SESSION, headers=cookie)) == (401, 50201)


async def test_logout_without_a_session_still_clears_the_cookie(client: Client) -> None:
    resp = await client.post(LOGOUT)
    assert resp.status == 204
    assert resp.headers["Set-Cookie"].startswith("__Host-rmon_session=")


# spec: USER-3
@pytest.mark.parametrize(
    "settings_overrides", [{"session_idle_timeout_s": 100, "session_absolute_timeout_s": 250}]
)
async def test_session_idle_and_absolute_timeouts(
    client: Client,
    sign_up: Callable[..., Any],
    login: Callable[..., Any],
    clock: FakeClock,
    settings_overrides: dict[str, Any],
) -> None:
    """Activity keeps a session alive until the absolute limit; idleness ends it sooner."""
    await sign_up()
    token = (await login())["token"]
    for _ in range(3):  # 3 x 80 s = 240 s of activity, each gap under the idle limit
        clock.advance(80)
        assert (await client.get(SESSION, headers=bearer(token))).status == 200
    clock.advance(10)  # 250 s after login
    assert await error_of(await client.get(SESSION, headers=bearer(token))) == (401, 50201)

    token = (await login())["token"]
    clock.advance(99)
    assert (await client.get(SESSION, headers=bearer(token))).status == 200
    clock.advance(100)
    assert await error_of(await client.get(SESSION, headers=bearer(token))) == (401, 50201)
