"""Authorisation for routes and streams: who the caller is and what they may do, read from the
store on every call (DESIGN.md, Security model: account → device → camera share → permission
group, never a cache).

Deny by default: a camera the caller may not see is 404 (its existence is not confirmed); a
camera they see without the permission the route needs is 403/91006. Subscriber-only areas
(device management, user management) are 403 for shared users.
"""

from __future__ import annotations

from aiohttp import web

from relay.auth import Viewer
from relay.errors import ApiError
from relay.permissions import Permission
from relay.store.accounts import CameraAccess
from relay.web.auth import require_viewer
from relay.web.keys import AUTH_KEY

__all__ = ["CameraAccess", "Permission", "camera_access", "require_subscriber"]


async def camera_access(
    request: web.Request, permission: Permission, camera_id: str | None = None
) -> tuple[Viewer, CameraAccess]:
    """The viewer and the camera (``camera_id`` or the URL's ``{camera_id}``), if the viewer
    holds ``permission`` on it; 404 when they cannot see the camera at all, 403 otherwise."""
    viewer = await require_viewer(request)
    return viewer, await check_camera(request, viewer, permission, camera_id)


async def check_camera(
    request: web.Request, viewer: Viewer, permission: Permission, camera_id: str | None = None
) -> CameraAccess:
    """:func:`camera_access` for a viewer already known."""
    wanted = camera_id if camera_id is not None else request.match_info["camera_id"]
    account = viewer.account
    if account is None:
        raise ApiError.not_found("camera")
    access = await request.app[AUTH_KEY].accounts.camera_access(account, wanted)
    if access is None:
        raise ApiError.not_found("camera")
    if permission not in access.permissions:
        raise ApiError.forbidden(f"Your permission group does not allow {permission.value}.")
    return access


async def require_subscriber(request: web.Request) -> Viewer:
    """The viewer if they are a subscriber (user and device management); 403 otherwise."""
    viewer = await require_viewer(request)
    if viewer.role != "subscriber":
        raise ApiError.forbidden("Only the subscriber can do this.")
    return viewer
