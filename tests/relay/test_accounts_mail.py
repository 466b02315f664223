"""Sign-up, invitation, password reset and e-mail change end to end: the real app on 127.0.0.1,
a real SMTP server (aiosmtpd, with AUTH), links and codes taken from the received mail."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from relay.notify.mail import SmtpTarget
from tests.relay.conftest import OWNER, PASSWORD, Client, FakeClock, bearer, error_of
from tests.relay.mail_kit import Inbox, bodies, line_value, link_param, smtp_server

NEW_PASSWORD = "Fresh-start7!"
FORGOT = "/api/v1/auth/password/forgot"


@pytest.fixture
async def inbox() -> AsyncIterator[Inbox]:
    box = Inbox()
    with smtp_server(box) as url:
        box.url = url  # type: ignore[attr-defined]
        yield box


@pytest.fixture
def settings_overrides(inbox: Inbox) -> dict[str, Any]:
    return {
        "smtp_url": inbox.url,  # type: ignore[attr-defined]
        "mail_from": "rmon <noreply@rmon.test>",
        "public_url": "https://portal.rmon.test",
    }


async def _login(client: Client, email: str, password: str) -> str:
    resp = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert resp.status == 200, await resp.text()
    return str((await resp.json())["token"])


# spec: USER-1
async def test_sign_up_by_mailed_link(
    client: Client, inbox: Inbox, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The link in the mail creates the account; it works once; the password and the token
    appear in no log line of the relay (the SMTP server's own debug log is not ours)."""
    caplog.set_level(logging.DEBUG)
    body = {"email": "New@Example.com", "name": "New", "password": PASSWORD, "accept_eula": True}
    resp = await client.post("/api/v1/auth/signup", json=body)
    assert resp.status == 202, await resp.text()
    mail = await inbox.wait_for("new@example.com", "Confirm your rmon account")
    assert mail["From"] == "rmon <noreply@rmon.test>"
    text, html = bodies(mail)
    assert "https://portal.rmon.test/#/signup/confirm?token=" in text
    assert '<a href="https://portal.rmon.test/#/signup/confirm?token=' in html
    token = link_param(mail, "token")
    ours = [r.getMessage() for r in caplog.records if not r.name.startswith("mail.log")]
    assert any("mail signup sent" in line for line in ours)
    assert all(token not in line and PASSWORD not in line for line in ours)

    login = {"email": "new@example.com", "password": PASSWORD}
    assert await error_of(await client.post("/api/v1/auth/login", json=login)) == (401, 400224)
    resp = await client.post("/api/v1/auth/signup/confirm", json={"token": token})
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["account"]["role"] == "subscriber"
    token_session = await _login(client, "new@example.com", PASSWORD)
    assert (await client.get("/api/v1/me", headers=bearer(token_session))).status == 200
    again = await client.post("/api/v1/auth/signup/confirm", json={"token": token})
    assert await error_of(again) == (400, 91014)  # single use
    resp = await client.post("/api/v1/auth/signup", json=body)
    assert await error_of(resp) == (409, 400229)


# spec: USER-1
async def test_sign_up_link_expires_after_24_hours(
    client: Client, inbox: Inbox, clock: FakeClock
) -> None:
    body = {"email": "late@example.com", "name": "Late", "password": PASSWORD, "accept_eula": True}
    assert (await client.post("/api/v1/auth/signup", json=body)).status == 202
    token = link_param(await inbox.wait_for("late@example.com", "Confirm"), "token")
    clock.advance(24 * 3600 + 1)
    resp = await client.post("/api/v1/auth/signup/confirm", json={"token": token})
    assert await error_of(resp) == (400, 91014)


# spec: USER-4
async def test_password_reset_by_mailed_code(
    client: Client, sign_up: Callable[..., Any], inbox: Inbox, clock: FakeClock
) -> None:
    """Wrong code 400211, expired 400210; the right code sets the password and ends every
    session (50205); unknown addresses get the same 202 and no mail."""
    await sign_up()
    old_session = await _login(client, OWNER, PASSWORD)
    assert (await client.post(FORGOT, json={"email": "x@y.com"})).status == 202
    resp = await client.post(FORGOT, json={"email": OWNER})
    assert resp.status == 202
    mail = await inbox.wait_for(OWNER, "Notice of Initialization of Password")
    code = line_value(mail, "Verification code")
    assert link_param(mail, "email") == OWNER
    reset = "/api/v1/auth/password/reset"
    wrong = {"email": OWNER, "code": "00000000" if code != "00000000" else "11111111"}
    resp = await client.post(reset, json={**wrong, "password": NEW_PASSWORD})
    assert await error_of(resp) == (400, 400211)
    resp = await client.post(reset, json={"email": OWNER, "code": code, "password": NEW_PASSWORD})
    assert resp.status == 204, await resp.text()
    resp = await client.get("/api/v1/me", headers=bearer(old_session))
    assert await error_of(resp) == (401, 50205)
    await _login(client, OWNER, NEW_PASSWORD)
    resp = await client.post(reset, json={"email": OWNER, "code": code, "password": PASSWORD})
    assert await error_of(resp) == (400, 400211)  # used up with the change

    assert (await client.post(FORGOT, json={"email": OWNER})).status == 202
    code = line_value(await inbox.wait_for(OWNER, "Initialization"), "Verification code")
    clock.advance(31 * 60)
    resp = await client.post(reset, json={"email": OWNER, "code": code, "password": PASSWORD})
    assert await error_of(resp) == (400, 400210)


# spec: USER-4
async def test_reset_code_allows_five_tries(
    client: Client, sign_up: Callable[..., Any], inbox: Inbox
) -> None:
    await sign_up()
    assert (await client.post(FORGOT, json={"email": OWNER})).status == 202
    code = line_value(await inbox.wait_for(OWNER, "Initialization"), "Verification code")
    bad = "12345678" if code != "12345678" else "87654321"
    body = {"email": OWNER, "code": bad, "password": NEW_PASSWORD}
    for _ in range(5):
        resp = await client.post("/api/v1/auth/password/reset", json=body)
        assert await error_of(resp) == (400, 400211)
    body["code"] = code  # right, but too late: the code is spent
    resp = await client.post("/api/v1/auth/password/reset", json=body)
    assert await error_of(resp) == (400, 400210)


# spec: USER-5
async def test_email_change_by_link_forces_logout(
    client: Client, sign_up: Callable[..., Any], inbox: Inbox
) -> None:
    await sign_up()
    token = await _login(client, OWNER, PASSWORD)
    other = await _login(client, OWNER, PASSWORD)
    change = "/api/v1/auth/email/change"
    resp = await client.post(
        change,
        json={"email": "moved@example.com", "password": "Wrong-pass1!"},
        headers=bearer(token),
    )
    assert await error_of(resp) == (403, 400224)
    resp = await client.post(
        change, json={"email": "moved@example.com", "password": PASSWORD}, headers=bearer(token)
    )
    assert resp.status == 202, await resp.text()
    mail = await inbox.wait_for("moved@example.com", "Confirm your new rmon e-mail")
    assert (await client.get("/api/v1/me", headers=bearer(token))).status == 200  # not yet
    resp = await client.post(
        "/api/v1/auth/email/confirm", json={"token": link_param(mail, "token")}
    )
    assert resp.status == 204
    for session in (token, other):
        assert await error_of(await client.get("/api/v1/me", headers=bearer(session))) == (
            401,
            50205,
        )
    fresh = await _login(client, "moved@example.com", PASSWORD)
    me = await (await client.get("/api/v1/me", headers=bearer(fresh))).json()
    assert me["account"]["email"] == "moved@example.com"


# spec: USER-5
async def test_password_and_name_change(
    client: Client, sign_up: Callable[..., Any], inbox: Inbox
) -> None:
    """The changing session stays, the others end with 50205; names follow USER-1's rules."""
    await sign_up()
    token, other = await _login(client, OWNER, PASSWORD), await _login(client, OWNER, PASSWORD)
    url = "/api/v1/auth/password/change"
    bad = {"password": "Wrong-pass1!", "new_password": NEW_PASSWORD}
    assert await error_of(await client.post(url, json=bad, headers=bearer(token))) == (403, 400224)
    weak = {"password": PASSWORD, "new_password": "Password1!"}
    assert await error_of(await client.post(url, json=weak, headers=bearer(token))) == (400, 91002)
    good = {"password": PASSWORD, "new_password": NEW_PASSWORD}
    assert (await client.post(url, json=good, headers=bearer(token))).status == 204
    assert (await client.get("/api/v1/me", headers=bearer(token))).status == 200
    assert await error_of(await client.get("/api/v1/me", headers=bearer(other))) == (401, 50205)
    resp = await client.patch("/api/v1/me", json={"name": "x" * 33}, headers=bearer(token))
    assert await error_of(resp) == (400, 400250)
    resp = await client.patch("/api/v1/me", json={"name": "Renamed"}, headers=bearer(token))
    assert (await resp.json())["account"]["name"] == "Renamed"


# spec: USER-6
async def test_invitation_mail_and_first_login_password_change(
    client: Client, sign_up: Callable[..., Any], inbox: Inbox
) -> None:
    """The invited user logs in with the mailed password, may do nothing but change it, then
    uses the service; deleting them needs the subscriber's password (400224)."""
    await sign_up()
    owner = await _login(client, OWNER, PASSWORD)
    user = {"email": "guest@example.com", "name": "Guest", "group": 2}
    resp = await client.post("/api/v1/users", json=user, headers=bearer(owner))
    assert resp.status == 201, await resp.text()
    user_id = (await resp.json())["id"]
    mail = await inbox.wait_for("guest@example.com", "invited")
    initial = line_value(mail, "Initial password")
    session = await _login(client, "guest@example.com", initial)
    me = await (await client.get("/api/v1/me", headers=bearer(session))).json()
    assert me["account"]["must_change_password"] is True
    resp = await client.get("/api/v1/devices", headers=bearer(session))
    assert await error_of(resp) == (403, 91015)
    change = {"password": initial, "new_password": NEW_PASSWORD}
    resp = await client.post("/api/v1/auth/password/change", json=change, headers=bearer(session))
    assert resp.status == 204
    assert (await client.get("/api/v1/devices", headers=bearer(session))).status == 200
    resp = await client.get("/api/v1/users", headers=bearer(session))
    assert await error_of(resp) == (403, 91006)  # user management: never for shared users

    url = f"/api/v1/users/{user_id}"
    resp = await client.delete(url, json={"password": "Wrong-pass1!"}, headers=bearer(owner))
    assert await error_of(resp) == (403, 400224)
    resp = await client.delete(url, json={"password": PASSWORD}, headers=bearer(owner))
    assert resp.status == 204
    assert await error_of(await client.get("/api/v1/me", headers=bearer(session))) == (401, 50201)


# spec: USER-10
async def test_deactivate_deletes_everything(
    client: Client, sign_up: Callable[..., Any], inbox: Inbox
) -> None:
    await sign_up()
    owner = await _login(client, OWNER, PASSWORD)
    resp = await client.post(
        "/api/v1/users", json={"email": "g@example.com", "name": "G"}, headers=bearer(owner)
    )
    assert resp.status == 201
    initial = line_value(await inbox.wait_for("g@example.com", "invited"), "Initial password")
    url = "/api/v1/me/deactivate"
    wrong = await client.post(url, json={"password": "Wrong-pass1!"}, headers=bearer(owner))
    assert await error_of(wrong) == (403, 400224)
    assert (
        await client.post(url, json={"password": PASSWORD}, headers=bearer(owner))
    ).status == 204
    for email, password in ((OWNER, PASSWORD), ("g@example.com", initial)):
        resp = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert await error_of(resp) == (401, 400224)


def test_smtp_urls_parse_and_hide_the_password() -> None:
    target = SmtpTarget.parse("smtps://me%40x.com:p%2Fss@mail.example.com")
    assert (target.scheme, target.host, target.port) == ("smtps", "mail.example.com", 465)
    assert (target.username, target.password) == ("me@x.com", "p/ss")
    assert "p/ss" not in repr(target)
    assert SmtpTarget.parse("smtp+starttls://mail.example.com").port == 587
    with pytest.raises(ValueError, match="scheme"):
        SmtpTarget.parse("http://mail.example.com")
