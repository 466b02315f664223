"""Favorite groups (ORG-2, manual 5.5): each viewer's own (a shared user has theirs, separate from
the subscriber's), up to 50, each with a layout (4/9/12/16/30-split or custom: free position and
size) and cameras, a camera at most once per group; rename, change layout, reorder, delete, and
one group as the start page. The subscriber can share a group's cameras with shared users
(manual 5.5.11: adds shares, never removes them).

Only cameras the viewer may see go in: each is checked with :func:`relay.web.authz.check_camera`
(the live permission, read from the store; deny by default), so a camera not shared with a shared
user is 404 exactly as it is everywhere else. A camera whose share is later revoked stays stored
but is left out of every answer until it is shared again. A group of another viewer is 404.
"""

from __future__ import annotations

from typing import cast

from aiohttp import web
from pydantic import BaseModel, Field

from relay.auth import Viewer, validate_name
from relay.errors import ApiError, Code
from relay.permissions import Permission
from relay.store import AccountRow
from relay.store.organise import (
    CANVAS,
    LAYOUTS,
    MAX_FAVORITES,
    FavoriteGroup,
    Layout,
    OrganiseStore,
    Tile,
)
from relay.web.auth import require_viewer
from relay.web.authz import check_camera, require_subscriber
from relay.web.keys import AUTH_KEY, SETTINGS_KEY, STORE_KEY
from relay.web.openapi import api_route
from relay.web.schemas import FIELD_MAX, In, json_out, read_json

routes = web.RouteTableDef()

FAVORITES = "/api/v1/favorites"
MAX_TILES_IN = 100  # longest camera list accepted in a body (the biggest layout holds 40)
Coord = Field(default=None, ge=0, le=CANVAS, description=f"custom layouts: 0…{CANVAS}")


class TileIn(In):
    """A camera in a group. Split layouts: ``slot`` is the tile (0-based; absent: the first
    free one). Custom: x, y, w, h in thousandths of the canvas are required, slot is ignored
    (the list order is the stacking order)."""

    camera_id: str = Field(default="", max_length=FIELD_MAX)
    slot: int | None = Field(default=None, ge=0, le=1000)
    x: int | None = Coord
    y: int | None = Coord
    w: int | None = Coord
    h: int | None = Coord


class FavoriteIn(In):
    """A new group: title (1-32 characters), layout, and optionally its cameras."""

    name: str = Field(default="", max_length=FIELD_MAX)
    layout: str = Field(default="", max_length=16, description="4, 9, 12, 16, 30 or custom")
    cameras: list[TileIn] = Field(default_factory=list, max_length=MAX_TILES_IN)


class FavoritePatchIn(In):
    """Fields to change; absent ones stay. A smaller split layout than the group's cameras is
    refused (91105); start_page true makes this the viewer's one start page."""

    name: str | None = Field(default=None, max_length=FIELD_MAX)
    layout: str | None = Field(default=None, max_length=16)
    start_page: bool | None = None


class TilesIn(In):
    """The group's complete camera list (replaces the previous one)."""

    cameras: list[TileIn] = Field(default_factory=list, max_length=MAX_TILES_IN)


class OrderIn(In):
    """Every one of the viewer's group ids, once each, in the new order."""

    groups: list[str] = Field(default_factory=list, max_length=MAX_FAVORITES * 2)


class TileOut(BaseModel):
    """A camera in a group and where it is shown."""

    camera_id: str
    slot: int
    x: int | None
    y: int | None
    w: int | None
    h: int | None


class FavoriteOut(BaseModel):
    """A favorite group with the cameras its viewer may see."""

    id: str
    name: str
    layout: str
    capacity: int = Field(description="how many cameras the layout holds")
    position: int
    start_page: bool
    cameras: list[TileOut]

    @classmethod
    def of(cls, group: FavoriteGroup) -> FavoriteOut:
        """From the store."""
        return cls(
            id=group.id,
            name=group.name,
            layout=group.layout,
            capacity=LAYOUTS[group.layout],
            position=group.position,
            start_page=group.start_page,
            cameras=[TileOut(**t.__dict__) for t in group.tiles],
        )


class FavoritesOut(BaseModel):
    """The viewer's groups in their order, and the limit."""

    groups: list[FavoriteOut]
    limit: int
    start_page: str | None = Field(description="the id of the start-page group, if any")


def organise(request: web.Request) -> OrganiseStore:
    """The ORG query class over the app's store engine."""
    store = request.app[STORE_KEY]
    return OrganiseStore(store.engine, clock=store.clock)


async def _account(request: web.Request, viewer: Viewer) -> AccountRow:
    """The viewer's account row (the session read it; else from the store)."""
    if viewer.account is not None:
        return viewer.account
    account = await request.app[STORE_KEY].get_account(viewer.account_id)
    if account is None:
        raise ApiError.session_expired()
    return account


def _layout(text: str) -> Layout:
    """One of the ORG-2 layouts; 91001 otherwise."""
    if text not in LAYOUTS:
        raise ApiError.bad_request("layout: one of 4, 9, 12, 16, 30, custom")
    return cast(Layout, text)


async def _tiles(
    request: web.Request, viewer: Viewer, layout: Layout, items: list[TileIn]
) -> list[Tile]:
    """Check a camera list against ORG-2 and the viewer's rights; the tiles to store.

    91104 a camera twice, 91105 more than the layout holds, 404 a camera the viewer may not
    see (checked for every camera, deny by default), 91001 a bad slot or custom geometry.
    """
    ids = [item.camera_id for item in items]
    if len(set(ids)) != len(ids):
        raise ApiError.org_limit(
            Code.FAVORITE_DUPLICATE, "You cannot register the same camera twice in one favorite."
        )
    capacity = LAYOUTS[layout]
    if len(items) > capacity:
        raise ApiError.org_limit(
            Code.LAYOUT_FULL,
            f"This layout holds {capacity} cameras; choose a bigger layout to add more.",
        )
    for camera_id in ids:
        await check_camera(request, viewer, Permission.LIVE, camera_id)
    if layout == "custom":
        return [_custom(index, item) for index, item in enumerate(items)]
    taken = {item.slot for item in items if item.slot is not None}
    if len(taken) != sum(item.slot is not None for item in items) or any(
        slot >= capacity for slot in taken
    ):
        raise ApiError.bad_request(f"slot: each slot once, 0…{capacity - 1}")
    free = (slot for slot in range(capacity) if slot not in taken)
    return [
        Tile(item.camera_id, item.slot if item.slot is not None else next(free)) for item in items
    ]


def _custom(index: int, item: TileIn) -> Tile:
    """A custom tile: all four coordinates, a non-empty area inside the canvas."""
    x, y, w, h = item.x, item.y, item.w, item.h
    if x is None or y is None or w is None or h is None or w < 1 or h < 1:
        raise ApiError.bad_request("cameras: a custom layout needs x, y, w, h (w, h at least 1)")
    if x + w > CANVAS or y + h > CANVAS:
        raise ApiError.bad_request(f"cameras: a custom tile must lie within 0…{CANVAS}")
    return Tile(item.camera_id, index, x, y, w, h)


async def _group_out(request: web.Request, account: AccountRow, group_id: str) -> FavoriteOut:
    group = await organise(request).favorite(account, group_id)
    if group is None:
        raise ApiError.not_found("favorite")
    return FavoriteOut.of(group)


@api_route(
    routes,
    "GET",
    FAVORITES,
    summary="The viewer's favorite groups in order, with the cameras they may see (ORG-2)",
    response=FavoritesOut,
)
async def list_favorites(request: web.Request) -> web.Response:
    """Also which group is the start page."""
    viewer = await require_viewer(request)
    groups = await organise(request).favorites(await _account(request, viewer))
    start = next((g.id for g in groups if g.start_page), None)
    return json_out(
        FavoritesOut(
            groups=[FavoriteOut.of(g) for g in groups], limit=MAX_FAVORITES, start_page=start
        )
    )


@api_route(
    routes,
    "POST",
    FAVORITES,
    summary="Create a favorite group (at most 50: 91103) with a layout and optional cameras, "
    "each once (91104), visible to the viewer (404) and fitting the layout (91105) (ORG-2)",
    request=FavoriteIn,
    response=FavoriteOut,
    status=201,
)
async def create_favorite(request: web.Request) -> web.Response:
    """Added at the end of the viewer's list."""
    viewer = await require_viewer(request)
    body = await read_json(request, FavoriteIn)
    name = validate_name(body.name)
    layout = _layout(body.layout)
    tiles = await _tiles(request, viewer, layout, body.cameras)
    store = organise(request)
    group_id = await store.create_favorite(viewer.account_id, name, layout)
    if group_id == "limit":
        raise ApiError.org_limit(
            Code.FAVORITE_LIMIT, f"You can create up to {MAX_FAVORITES} favorite groups."
        )
    if tiles:
        await store.set_favorite_tiles(viewer.account_id, group_id, tiles)
    account = await _account(request, viewer)
    return json_out(await _group_out(request, account, group_id), status=201)


@api_route(
    routes,
    "POST",
    f"{FAVORITES}/order",
    summary="Reorder the favorite groups: every group id once, in the new order (ORG-2)",
    request=OrderIn,
    response=FavoritesOut,
)
async def reorder_favorites(request: web.Request) -> web.Response:
    """91001 unless the list names each of the viewer's groups exactly once."""
    viewer = await require_viewer(request)
    body = await read_json(request, OrderIn)
    if not await organise(request).reorder_favorites(viewer.account_id, body.groups):
        raise ApiError.bad_request("groups: list each of your favorite groups exactly once")
    return await list_favorites(request)


@api_route(
    routes,
    "GET",
    f"{FAVORITES}/{{group_id}}",
    summary="One favorite group (ORG-2)",
    response=FavoriteOut,
)
async def get_favorite(request: web.Request) -> web.Response:
    """404 for a group that is not the viewer's."""
    viewer = await require_viewer(request)
    account = await _account(request, viewer)
    return json_out(await _group_out(request, account, request.match_info["group_id"]))


@api_route(
    routes,
    "PATCH",
    f"{FAVORITES}/{{group_id}}",
    summary="Rename a group, change its layout (not below its camera count: 91105) or make it "
    "the start page (one per viewer) (ORG-2)",
    request=FavoritePatchIn,
    response=FavoriteOut,
)
async def patch_favorite(request: web.Request) -> web.Response:
    """Changing the layout keeps the cameras in their order (custom: on a starting grid)."""
    viewer = await require_viewer(request)
    body = await read_json(request, FavoritePatchIn)
    group_id = request.match_info["group_id"]
    name = validate_name(body.name) if body.name is not None else None
    layout = _layout(body.layout) if body.layout is not None else None
    result = await organise(request).update_favorite(
        viewer.account_id, group_id, name=name, layout=layout, start_page=body.start_page
    )
    if result == "not_found":
        raise ApiError.not_found("favorite")
    if result == "full":
        raise ApiError.org_limit(
            Code.LAYOUT_FULL, "The group has more cameras than this layout holds."
        )
    account = await _account(request, viewer)
    return json_out(await _group_out(request, account, group_id))


@api_route(
    routes,
    "PUT",
    f"{FAVORITES}/{{group_id}}/cameras",
    summary="Set a group's cameras and their tiles: each once (91104), visible to the viewer "
    "(404), fitting the layout (91105) (ORG-2)",
    request=TilesIn,
    response=FavoriteOut,
)
async def put_favorite_cameras(request: web.Request) -> web.Response:
    """Replaces the whole list; an empty list empties the group."""
    viewer = await require_viewer(request)
    body = await read_json(request, TilesIn)
    group_id = request.match_info["group_id"]
    store = organise(request)
    layout = await store.favorite_layout(viewer.account_id, group_id)
    if layout is None:
        raise ApiError.not_found("favorite")
    tiles = await _tiles(request, viewer, layout, body.cameras)
    if await store.set_favorite_tiles(viewer.account_id, group_id, tiles) == "not_found":
        raise ApiError.not_found("favorite")
    account = await _account(request, viewer)
    return json_out(await _group_out(request, account, group_id))


class ShareIn(In):
    """The shared users (ids) who get the group's cameras."""

    users: list[str] = Field(default_factory=list, max_length=1000)


class ShareOut(BaseModel):
    """Which cameras were shared with whom (each user's complete share list after it)."""

    cameras: list[str]
    users: dict[str, list[str]]


@api_route(
    routes,
    "POST",
    f"{FAVORITES}/{{group_id}}/share",
    summary="Share a favorite group's cameras with shared users (subscriber only; adds to their "
    "shares, never removes; at most 10 users per camera: 91013) (ORG-2, manual 5.5.11)",
    request=ShareIn,
    response=ShareOut,
)
async def share_favorite(request: web.Request) -> web.Response:
    """404 for a user who is not the subscriber's; each user's shares change atomically (the
    per-camera limit is checked under the subscriber's row lock), users one after another."""
    owner = await require_subscriber(request)
    body = await read_json(request, ShareIn)
    account = await _account(request, owner)
    group = await organise(request).favorite(account, request.match_info["group_id"])
    if group is None:
        raise ApiError.not_found("favorite")
    cameras = [t.camera_id for t in group.tiles]
    accounts = request.app[AUTH_KEY].accounts
    current: dict[str, list[str]] = {}
    for user_id in dict.fromkeys(body.users):
        found = await accounts.shared_user(owner.account_id, user_id)
        if found is None:
            raise ApiError.not_found("user")
        current[user_id] = found[1]
    limit = request.app[SETTINGS_KEY].max_users_per_camera
    out: dict[str, list[str]] = {}
    for user_id, shared in current.items():
        wanted = sorted(set(shared) | set(cameras))
        result = await accounts.set_shares(
            owner.account_id, user_id, wanted, per_camera=limit, skip_privacy_misfits=True
        )
        if result == "limit":
            raise ApiError.share_limit(limit)
        found = await accounts.shared_user(owner.account_id, user_id)
        if result == "not_found" or found is None:
            raise ApiError.not_found("user")
        out[user_id] = found[1]  # cameras that do not fit the user's privacy guard left out
    return json_out(ShareOut(cameras=cameras, users=out))


@api_route(
    routes,
    "DELETE",
    f"{FAVORITES}/{{group_id}}",
    summary="Delete a favorite group (its cameras are not touched) (ORG-2)",
    responses={"204": "deleted"},
    status=204,
)
async def delete_favorite(request: web.Request) -> web.Response:
    """404 for a group that is not the viewer's."""
    viewer = await require_viewer(request)
    if not await organise(request).delete_favorite(
        viewer.account_id, request.match_info["group_id"]
    ):
        raise ApiError.not_found("favorite")
    return web.Response(status=204)


def setup_routes(app: web.Application) -> None:
    """Register the favorite routes (``/favorites/order`` before ``/favorites/{group_id}``)."""
    app.add_routes(routes)
