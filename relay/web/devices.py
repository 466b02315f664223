"""Device routes: the viewer's sites and their cameras."""

from __future__ import annotations

from aiohttp import web

from relay.web.auth import require_viewer
from relay.web.keys import AUTH_KEY, STORE_KEY
from relay.web.openapi import api_route
from relay.web.schemas import DeviceOut, DevicesOut, json_out

routes = web.RouteTableDef()


@api_route(
    routes,
    "GET",
    "/api/v1/devices",
    summary="The viewer's sites with their cameras (a shared user: only shared cameras)",
    response=DevicesOut,
)
async def list_devices(request: web.Request) -> web.Response:
    """The subscriber's own sites and cameras; a shared user sees only the sites with a camera
    shared with them, and only those cameras (USER-7)."""
    viewer = await require_viewer(request)
    if viewer.role == "shared" and viewer.account is not None:
        items = await request.app[AUTH_KEY].accounts.visible_devices(viewer.account)
    else:
        items = await request.app[STORE_KEY].list_devices_for(viewer.account_id)
    return json_out(DevicesOut(devices=[DeviceOut.of(item) for item in items]))


def setup_routes(app: web.Application) -> None:
    """Register the device routes."""
    app.add_routes(routes)
