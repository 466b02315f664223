"""Device routes: the viewer's sites and their cameras."""

from __future__ import annotations

from aiohttp import web

from relay.web.auth import require_viewer
from relay.web.keys import STORE_KEY
from relay.web.openapi import api_route
from relay.web.schemas import DeviceOut, DevicesOut, json_out

routes = web.RouteTableDef()


@api_route(
    routes,
    "GET",
    "/api/v1/devices",
    summary="The logged-in subscriber's sites with their cameras",
    response=DevicesOut,
)
async def list_devices(request: web.Request) -> web.Response:
    """Sites and cameras the viewer owns (shared users' shares come later)."""
    viewer = await require_viewer(request)
    items = await request.app[STORE_KEY].list_devices_for(viewer.account_id)
    return json_out(DevicesOut(devices=[DeviceOut.of(item) for item in items]))


def setup_routes(app: web.Application) -> None:
    """Register the device routes."""
    app.add_routes(routes)
