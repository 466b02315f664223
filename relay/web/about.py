"""Help's service version and version history (MSG-2).

No sign-in is needed: the version is what a user quotes to support, including when they cannot
log in, and it reveals nothing about any account (the package version is public on the registry).
"""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel

from relay.versions import HISTORY, service_version
from relay.web.openapi import api_route
from relay.web.schemas import json_out

routes = web.RouteTableDef()


class ReleaseOut(BaseModel):
    """One release in the history."""

    version: str
    date: str
    notes: str


class AboutOut(BaseModel):
    """The running version and the history, newest first."""

    version: str
    history: list[ReleaseOut]


@api_route(
    routes,
    "GET",
    "/api/v1/about",
    summary="The service version and version history (MSG-2); no sign-in needed",
    response=AboutOut,
    auth=False,
)
async def about(request: web.Request) -> web.Response:
    """Version and history from relay/versions.py."""
    history = [ReleaseOut(version=r.version, date=r.date, notes=r.notes) for r in HISTORY]
    return json_out(AboutOut(version=service_version(), history=history))


def setup_routes(app: web.Application) -> None:
    """Register the about route."""
    app.add_routes(routes)
