"""Account routes (USER-1, 4, 5, 10): sign-up with a mailed link, password reset with a mailed
code, password / e-mail / name changes, the current account, and deactivation.

The old ``POST /api/v1/accounts`` (active at once, no confirmation) is gone: it let anyone
skip USER-1's e-mail confirmation. Operators still create accounts directly with
``rmon-relay account create``.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from relay.errors import ApiError
from relay.notify.mail import MailError
from relay.web.auth import require_viewer
from relay.web.keys import AUTH_KEY, STREAMS_KEY
from relay.web.openapi import api_route
from relay.web.schemas import FIELD_MAX, AccountOut, In, json_out, read_json

routes = web.RouteTableDef()


class SignUpIn(In):
    """A new subscriber (USER-1, USER-2)."""

    email: str = Field(default="", max_length=FIELD_MAX)
    name: str = Field(default="", max_length=FIELD_MAX)
    password: str = Field(default="", max_length=FIELD_MAX)
    accept_eula: bool = False


class TokenIn(In):
    """The token from a mailed link."""

    token: str = Field(default="", max_length=FIELD_MAX)


class EmailIn(In):
    """An e-mail address."""

    email: str = Field(default="", max_length=FIELD_MAX)


class ResetIn(In):
    """USER-4: the address, the mailed verification code and the new password."""

    email: str = Field(default="", max_length=FIELD_MAX)
    code: str = Field(default="", max_length=FIELD_MAX)
    password: str = Field(default="", max_length=FIELD_MAX)


class PasswordChangeIn(In):
    """USER-5: the current password and the new one."""

    password: str = Field(default="", max_length=FIELD_MAX)
    new_password: str = Field(default="", max_length=FIELD_MAX)


class EmailChangeIn(In):
    """USER-5: the new address, confirmed with the password."""

    email: str = Field(default="", max_length=FIELD_MAX)
    password: str = Field(default="", max_length=FIELD_MAX)


class MePatchIn(In):
    """USER-5: the display name."""

    name: str = Field(default="", max_length=FIELD_MAX)


class PasswordIn(In):
    """A confirmation password."""

    password: str = Field(default="", max_length=FIELD_MAX)


class AcceptedOut(BaseModel):
    """The request was taken; what happens next is in the mail."""

    status: str = "accepted"


class MeOut(BaseModel):
    """The logged-in account."""

    account: AccountOut


def _mail_failed(err: MailError) -> ApiError:
    """500 with the manual's network-error wording: the mail could not go out."""
    return ApiError(500, 500, "Could not send the e-mail. Please retry after a while.")


@api_route(
    routes,
    "POST",
    "/api/v1/auth/signup",
    summary="Sign up (USER-1): mails a confirmation link valid 24 h; nothing exists until used",
    request=SignUpIn,
    response=AcceptedOut,
    auth=False,
    status=202,
)
async def signup(request: web.Request) -> web.Response:
    """400229 registered, 400249/400250 name, 91002 password rules, 91003 licence, 91004."""
    body = await read_json(request, SignUpIn)
    try:
        await request.app[AUTH_KEY].request_signup(
            body.email, body.name, body.password, licence_accepted=body.accept_eula
        )
    except MailError as err:
        raise _mail_failed(err) from err
    return json_out(AcceptedOut(), status=202)


@api_route(
    routes,
    "POST",
    "/api/v1/auth/signup/confirm",
    summary="Use the sign-up link's token: the account is created (USER-1)",
    request=TokenIn,
    response=MeOut,
    auth=False,
    status=201,
)
async def signup_confirm(request: web.Request) -> web.Response:
    """91014 unknown, used or expired link; 400229 if the address was registered since."""
    body = await read_json(request, TokenIn)
    account = await request.app[AUTH_KEY].confirm_signup(body.token)
    return json_out(MeOut(account=AccountOut.of(account)), status=201)


@api_route(
    routes,
    "POST",
    "/api/v1/auth/password/forgot",
    summary="Mail a verification code for a new password (USER-4); same answer for any address",
    request=EmailIn,
    response=AcceptedOut,
    auth=False,
    status=202,
)
async def password_forgot(request: web.Request) -> web.Response:
    """Always 202 (an unknown address is not revealed)."""
    body = await read_json(request, EmailIn)
    try:
        await request.app[AUTH_KEY].forgot_password(body.email)
    except MailError as err:
        raise _mail_failed(err) from err
    return json_out(AcceptedOut(), status=202)


@api_route(
    routes,
    "POST",
    "/api/v1/auth/password/reset",
    summary="Set a new password with the mailed code (USER-4): 400210 expired, 400211 wrong",
    request=ResetIn,
    responses={"204": "password changed; every session ended"},
    auth=False,
    status=204,
)
async def password_reset(request: web.Request) -> web.Response:
    """Check the code (5 tries), then the password rules; then every session ends."""
    body = await read_json(request, ResetIn)
    await request.app[AUTH_KEY].reset_password(body.email, body.code, body.password)
    return web.Response(status=204)


@api_route(
    routes,
    "POST",
    "/api/v1/auth/password/change",
    summary="Change the password (USER-5; USER-6's first login): other sessions end (50205)",
    request=PasswordChangeIn,
    responses={"204": "changed"},
    status=204,
)
async def password_change(request: web.Request) -> web.Response:
    """400224 when the current password is wrong; 91002 for the rules."""
    viewer = await require_viewer(request)
    body = await read_json(request, PasswordChangeIn)
    await request.app[AUTH_KEY].change_password(viewer, body.password, body.new_password)
    return web.Response(status=204)


@api_route(
    routes,
    "POST",
    "/api/v1/auth/email/change",
    summary="Change the e-mail address (USER-5): mails a link to the new address",
    request=EmailChangeIn,
    response=AcceptedOut,
    status=202,
)
async def email_change(request: web.Request) -> web.Response:
    """400224 wrong password, 400229 address taken, 91004 not an address."""
    viewer = await require_viewer(request)
    body = await read_json(request, EmailChangeIn)
    try:
        await request.app[AUTH_KEY].request_email_change(viewer, body.email, body.password)
    except MailError as err:
        raise _mail_failed(err) from err
    return json_out(AcceptedOut(), status=202)


@api_route(
    routes,
    "POST",
    "/api/v1/auth/email/confirm",
    summary="Use the e-mail change link: the address changes and every session ends (USER-5)",
    request=TokenIn,
    responses={"204": "changed; log in again with the new address"},
    auth=False,
    status=204,
)
async def email_confirm(request: web.Request) -> web.Response:
    """91014 unknown, used or expired link; 400229 if the address was registered since."""
    body = await read_json(request, TokenIn)
    await request.app[AUTH_KEY].confirm_email_change(body.token)
    return web.Response(status=204)


@api_route(routes, "GET", "/api/v1/me", summary="The logged-in account", response=MeOut)
async def me(request: web.Request) -> web.Response:
    """Also reachable on the initial password (the portal learns it must ask for a new one)."""
    viewer = await require_viewer(request)
    return json_out(MeOut(account=AccountOut.of(viewer)))


@api_route(
    routes,
    "PATCH",
    "/api/v1/me",
    summary="Change the display name (USER-5)",
    request=MePatchIn,
    response=MeOut,
)
async def me_patch(request: web.Request) -> web.Response:
    """400249 empty, 400250 longer than 32."""
    viewer = await require_viewer(request)
    body = await read_json(request, MePatchIn)
    auth = request.app[AUTH_KEY]
    await auth.change_name(viewer, body.name)
    account = await auth.store.get_account(viewer.account_id)
    if account is None:
        raise ApiError.session_expired()
    return json_out(MeOut(account=AccountOut.of(account)))


@api_route(
    routes,
    "POST",
    "/api/v1/me/deactivate",
    summary="Deactivate the account with its password (USER-10): everything is deleted",
    request=PasswordIn,
    responses={"204": "deleted"},
    status=204,
)
async def deactivate(request: web.Request) -> web.Response:
    """400224 wrong password. A subscriber takes devices, cameras and shared users along."""
    viewer = await require_viewer(request)
    body = await read_json(request, PasswordIn)
    auth = request.app[AUTH_KEY]
    users = await auth.accounts.shared_users(viewer.account_id)
    await auth.deactivate(viewer, body.password)
    request.app[STREAMS_KEY].revoke_accounts([viewer.account_id, *(u.id for u, _ in users)])
    return web.Response(status=204)


def setup_routes(app: web.Application) -> None:
    """Register the account routes."""
    app.add_routes(routes)
