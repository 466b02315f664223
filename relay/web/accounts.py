"""Account routes: sign-up (USER-1, USER-2)."""

from __future__ import annotations

from aiohttp import web

from relay.web.keys import AUTH_KEY
from relay.web.openapi import api_route
from relay.web.schemas import AccountOut, SignUpIn, SignUpOut, json_out, read_json

routes = web.RouteTableDef()


@api_route(
    routes,
    "POST",
    "/api/v1/accounts",
    summary="Sign up as a subscriber (USER-1); the account is active at once",
    request=SignUpIn,
    response=SignUpOut,
    auth=False,
    status=201,
)
async def sign_up(request: web.Request) -> web.Response:
    """Create a subscriber account.

    E-mail confirmation (USER-1's 24 h link) is later work: the account is active at once.
    Errors: 400229 registered, 400249 no name, 400250 name too long, 91002 password rules,
    91003 licence not accepted, 91004 not an e-mail address.
    """
    body = await read_json(request, SignUpIn)
    account = await request.app[AUTH_KEY].sign_up(
        body.email, body.name, body.password, licence_accepted=body.licence_accepted
    )
    return json_out(SignUpOut(account=AccountOut.of(account)), status=201)


def setup_routes(app: web.Application) -> None:
    """Register the account routes."""
    app.add_routes(routes)
