"""Login, logout, the current session, and :func:`require_viewer` for every other handler.

A session token arrives either as ``Authorization: Bearer <token>`` (apps, CLI: no CSRF token
needed, a browser cannot attach that header cross-site) or as the session cookie (the portal:
state-changing methods must carry ``X-CSRF-Token`` equal to the session's CSRF token). The
cookie is ``__Host-rmon_session`` (Secure, HttpOnly, SameSite=Strict, Path=/) when
``cookie_secure``, else ``rmon_session`` for plain-HTTP development.
"""

from __future__ import annotations

import hmac

from aiohttp import web

from relay.auth import Viewer
from relay.errors import ApiError, Code
from relay.settings import RelaySettings
from relay.store.app_devices import AppLink
from relay.web.keys import AUTH_KEY, SETTINGS_KEY
from relay.web.openapi import api_route
from relay.web.schemas import AccountOut, LoginIn, LoginOut, SessionOut, json_out, read_json

__all__ = ["Viewer", "cookie_name", "require_viewer", "session_token", "setup_routes"]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: USER-6: all a shared user on the mailed initial password may reach (91015 elsewhere).
FIRST_LOGIN_PATHS = frozenset(
    {"/api/v1/me", "/api/v1/auth/session", "/api/v1/auth/password/change", "/api/v1/auth/logout"}
)
CSRF_HEADER = "X-CSRF-Token"
SECURE_COOKIE = "__Host-rmon_session"
PLAIN_COOKIE = "rmon_session"

routes = web.RouteTableDef()


def cookie_name(settings: RelaySettings) -> str:
    """The session cookie's name under these settings."""
    return SECURE_COOKIE if settings.cookie_secure else PLAIN_COOKIE


def session_token(request: web.Request) -> tuple[str, bool]:
    """(token, came as bearer); the bearer header wins over the cookie."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip(), True
    return request.cookies.get(cookie_name(request.app[SETTINGS_KEY]), ""), False


async def require_viewer(request: web.Request) -> Viewer:
    """The logged-in viewer, checked against the store on every call.

    Raises 401/50201 without a valid session (50205 when a change made elsewhere ended it),
    403/91005 for a cookie-authenticated state-changing request without the session's CSRF
    token, and 403/91015 while an invited shared user has not replaced the initial password.
    """
    token, bearer = session_token(request)
    viewer = await request.app[AUTH_KEY].viewer_for_token(token)
    if not bearer and request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), viewer.csrf_token.encode()):
            raise ApiError.csrf()
    if viewer.must_change_password and request.path not in FIRST_LOGIN_PATHS:
        raise ApiError.password_change_required()
    return viewer


def _set_cookie(response: web.StreamResponse, settings: RelaySettings, token: str) -> None:
    """The session cookie, living as long as the session's absolute timeout."""
    response.set_cookie(
        cookie_name(settings),
        token,
        path="/",
        secure=settings.cookie_secure,
        httponly=True,
        samesite="Strict",
        max_age=settings.session_absolute_timeout_s,
    )


@api_route(
    routes,
    "POST",
    "/api/v1/auth/login",
    summary="Log in with e-mail and password (USER-3); sets the session cookie. An app sends "
    "device {name, platform} to link this token to a mobile device it can be removed by (USER-9)",
    request=LoginIn,
    response=LoginOut,
    auth=False,
)
async def login(request: web.Request) -> web.Response:
    """Open a session; 400224 on wrong credentials, 400225 while locked."""
    body = await read_json(request, LoginIn)
    app = AppLink(body.device.name.strip() or "App", body.device.platform) if body.device else None
    result = await request.app[AUTH_KEY].login(body.email, body.password, app)
    out = LoginOut(
        token=result.token,
        csrf_token=result.viewer.csrf_token,
        account=AccountOut.of(result.viewer),
        device_id=result.app_device_id,
    )
    response = json_out(out)
    _set_cookie(response, request.app[SETTINGS_KEY], result.token)
    return response


@api_route(
    routes,
    "POST",
    "/api/v1/auth/logout",
    summary="End the session and clear the cookie (succeeds without a session too)",
    responses={"204": "logged out"},
    auth=False,
    status=204,
)
async def logout(request: web.Request) -> web.Response:
    """Delete the session server-side; a missing or timed-out session is not an error."""
    try:
        viewer: Viewer | None = await require_viewer(request)
    except ApiError as err:
        if err.code != Code.SESSION_EXPIRED:
            raise
        viewer = None
    if viewer is not None:
        await request.app[AUTH_KEY].logout(viewer)
    response = web.Response(status=204)
    settings = request.app[SETTINGS_KEY]
    response.del_cookie(
        cookie_name(settings),
        path="/",
        secure=settings.cookie_secure,
        httponly=True,
        samesite="Strict",
    )
    return response


@api_route(
    routes,
    "GET",
    "/api/v1/auth/session",
    summary="The current session's account and CSRF token",
    response=SessionOut,
)
async def session(request: web.Request) -> web.Response:
    """Who is logged in; 401/50201 when nobody."""
    viewer = await require_viewer(request)
    return json_out(SessionOut(csrf_token=viewer.csrf_token, account=AccountOut.of(viewer)))


def setup_routes(app: web.Application) -> None:
    """Register the session routes."""
    app.add_routes(routes)
