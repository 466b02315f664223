"""Mobile app devices (USER-9, APP-2; manual 5.2.6 "Unassociate Mobile APP"): the apps linked to
the viewer's account, and removing one.

An app links itself by logging in with ``device`` (``POST /api/v1/auth/login``); the device is
bound to that login's token. Removing it deletes the token in the same transaction, so the app's
next call is 401/50201 on every relay. Each viewer — subscriber or shared user — sees and removes
only their own apps; another account's device id is 404/91007, never 403, so ids are not
confirmed. (Not ``/api/v1/devices``: those are the subscriber's sites.)
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import BaseModel, Field

from relay.errors import ApiError
from relay.store.app_devices import AppDeviceRow, Platform
from relay.web.auth import require_viewer
from relay.web.keys import AUTH_KEY
from relay.web.openapi import api_route
from relay.web.schemas import json_out

routes = web.RouteTableDef()

APP_DEVICES = "/api/v1/me/devices"


class AppDeviceOut(BaseModel):
    """One linked app."""

    id: str
    name: str
    platform: Platform
    created_at: datetime = Field(description="when the app logged in and was linked")
    last_seen_at: datetime = Field(description="its last call (to within a minute)")
    current: bool = Field(description="true for the device making this request")

    @classmethod
    def of(cls, row: AppDeviceRow, token_hash: str) -> AppDeviceOut:
        """From the store; ``token_hash`` is the caller's, to flag their own device."""
        return cls(
            id=row.id,
            name=row.name,
            platform=row.platform,
            created_at=row.created_at,
            last_seen_at=row.last_seen_at,
            current=row.token_hash == token_hash,
        )


class AppDevicesOut(BaseModel):
    """The viewer's linked apps, newest first."""

    devices: list[AppDeviceOut]


@api_route(
    routes,
    "GET",
    APP_DEVICES,
    summary="The mobile app devices linked to the viewer's account (USER-9): name, platform, "
    "when linked, last seen; only apps whose login is still valid",
    response=AppDevicesOut,
)
async def list_app_devices(request: web.Request) -> web.Response:
    """A timed-out or superseded login (50201/50205) is no longer a linked device."""
    viewer = await require_viewer(request)
    rows = await request.app[AUTH_KEY].app_devices_of(viewer)
    return json_out(AppDevicesOut(devices=[AppDeviceOut.of(r, viewer.token_hash) for r in rows]))


@api_route(
    routes,
    "DELETE",
    f"{APP_DEVICES}/{{device_id}}",
    summary="Remove (unassociate) one of the viewer's app devices (USER-9); its token is "
    "revoked at once: the app's next call is 401/50201",
    responses={"204": "removed"},
    status=204,
)
async def remove_app_device(request: web.Request) -> web.Response:
    """404/91007 for a device that is not the viewer's (or was removed already)."""
    viewer = await require_viewer(request)
    auth = request.app[AUTH_KEY]
    revoked = await auth.app_devices.remove(viewer.account_id, request.match_info["device_id"])
    if revoked is None:
        raise ApiError.not_found("mobile device")
    return web.Response(status=204)


def setup_routes(app: web.Application) -> None:
    """Register the app device routes."""
    app.add_routes(routes)
