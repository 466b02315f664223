"""Enrollment routes (DEV-10), called by ``rmon-agent register`` over HTTPS.

The installer's e-mail and password buy a single-use grant valid ``enrollment_grant_ttl_s``;
the agent then spends it with its freshly made Ed25519 public key and gets its device id.
"""

from __future__ import annotations

from aiohttp import web

from relay.web.keys import AUTH_KEY
from relay.web.openapi import api_route
from relay.web.schemas import (
    EnrollDeviceIn,
    EnrollDeviceOut,
    GrantOut,
    LoginIn,
    json_out,
    read_json,
)

routes = web.RouteTableDef()


@api_route(
    routes,
    "POST",
    "/api/v1/enroll/grant",
    summary="Trade the subscriber's credentials for a single-use enrollment grant (DEV-10)",
    request=LoginIn,
    response=GrantOut,
    auth=False,
)
async def grant(request: web.Request) -> web.Response:
    """400224 on wrong credentials, 400225 while locked (the login lockout applies)."""
    body = await read_json(request, LoginIn)
    issued = await request.app[AUTH_KEY].issue_grant(body.email, body.password)
    return json_out(GrantOut(grant=issued.grant, expires_at=issued.expires_at))


@api_route(
    routes,
    "POST",
    "/api/v1/enroll/device",
    summary="Register a device with a grant and its Ed25519 public key (DEV-10)",
    request=EnrollDeviceIn,
    response=EnrollDeviceOut,
    auth=False,
    status=201,
)
async def enroll_device(request: web.Request) -> web.Response:
    """91009 unknown grant, 91010 already used, 91011 expired, 91012 bad public key."""
    body = await read_json(request, EnrollDeviceIn)
    device = await request.app[AUTH_KEY].enroll_device(
        body.grant, body.public_key, body.name, body.agent_version
    )
    return json_out(EnrollDeviceOut(device_id=device.id), status=201)


def setup_routes(app: web.Application) -> None:
    """Register the enrollment routes."""
    app.add_routes(routes)
