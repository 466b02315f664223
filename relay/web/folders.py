"""The folder tree (ORG-1, manual 4.4): a subscriber's folders, at most 3 levels deep and 100
sub-folders per folder, with their sites (devices) linked in, a device in at most one folder.

Changing the tree is the subscriber's (device management is never granted to shared users,
USER-8): those routes answer 403/91006 to a shared user. A shared user may READ the tree, pruned
to the folders that hold (themselves or below) a site with a camera shared with them and
showing only those sites, so their device tree groups like their subscriber's (manual 4.4
"displayed … on each screen") without revealing any other site. A folder or device of another
subscriber is 404/91007.

The tree is returned flat, depth first (a folder, then its sub-folders, siblings by
``position``), each folder with ``parent_id`` and ``depth``: clients nest it in one pass and the
API schema stays non-recursive.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from relay.auth import Viewer, validate_name
from relay.errors import ApiError, Code
from relay.store.organise import MAX_CHILDREN, MAX_DEPTH, FolderRow, OrganiseStore
from relay.web.auth import require_viewer
from relay.web.authz import require_subscriber
from relay.web.keys import AUTH_KEY, STORE_KEY
from relay.web.openapi import api_route
from relay.web.schemas import FIELD_MAX, In, json_out, read_json

routes = web.RouteTableDef()

FOLDERS = "/api/v1/folders"


class FolderIn(In):
    """A new folder: its name (1-32 characters) and parent (absent or null: top level)."""

    name: str = Field(default="", max_length=FIELD_MAX)
    parent_id: str | None = Field(default=None, max_length=FIELD_MAX)


class RenameIn(In):
    """A folder's new name (1-32 characters)."""

    name: str = Field(default="", max_length=FIELD_MAX)


class MoveIn(In):
    """Where a folder goes: under ``parent_id`` (null: top level) at ``position`` among its new
    siblings (0 first; null or past the end: last). Moving within the same parent reorders."""

    parent_id: str | None = Field(default=None, max_length=FIELD_MAX)
    position: int | None = Field(default=None, ge=0, le=1_000_000)


class FolderOut(BaseModel):
    """One folder: its place in the tree and the sites linked to it (device ids, by name)."""

    id: str
    name: str
    parent_id: str | None
    depth: int = Field(description="1 for a top-level folder, at most 3")
    position: int = Field(description="order among its siblings")
    devices: list[str]

    @classmethod
    def of(cls, row: FolderRow) -> FolderOut:
        """From the store."""
        return cls(
            id=row.id,
            name=row.name,
            parent_id=row.parent_id,
            depth=row.depth,
            position=row.position,
            devices=list(row.devices),
        )


class FoldersOut(BaseModel):
    """The tree, flat and depth first, with the limits it lives under."""

    folders: list[FolderOut]
    editable: bool = Field(description="false for a shared user: a read-only, pruned view")
    max_depth: int
    max_children: int


class FolderDeviceOut(BaseModel):
    """A site and the folder it is in (null: unassigned)."""

    id: str
    name: str
    online: bool
    folder_id: str | None


class FolderDevicesOut(BaseModel):
    """Sites matching the filters, by name."""

    devices: list[FolderDeviceOut]


class UnassignedOut(BaseModel):
    """What a deletion left behind: the sites that are now in no folder."""

    unassigned: list[str]


def organise(request: web.Request) -> OrganiseStore:
    """The ORG query class over the app's store engine."""
    store = request.app[STORE_KEY]
    return OrganiseStore(store.engine, clock=store.clock)


async def _shared_view(request: web.Request, viewer: Viewer) -> tuple[str, set[str]]:
    """(subscriber id, ids of the sites with a camera shared with this shared user)."""
    account = viewer.account
    if account is None or account.owner_id is None:
        raise ApiError.forbidden("Only the subscriber can do this.")
    visible = await request.app[AUTH_KEY].accounts.visible_devices(account)
    return account.owner_id, {item.device.id for item in visible}


def _prune(tree: list[FolderRow], visible: set[str]) -> list[FolderRow]:
    """Only the folders with a visible site in them or below, showing only visible sites."""
    kept_devices = {f.id: tuple(d for d in f.devices if d in visible) for f in tree}
    parent = {f.id: f.parent_id for f in tree}
    keep: set[str] = set()
    for folder_id, devices in kept_devices.items():
        node: str | None = folder_id if devices else None
        while node is not None and node not in keep:
            keep.add(node)
            node = parent[node]
    return [
        FolderRow(f.id, f.parent_id, f.name, f.depth, f.position, kept_devices[f.id])
        for f in tree
        if f.id in keep
    ]


@api_route(
    routes,
    "GET",
    FOLDERS,
    summary="The folder tree, flat and depth first (ORG-1); a shared user gets a read-only view "
    "pruned to the folders holding sites shared with them",
    response=FoldersOut,
)
async def list_folders(request: web.Request) -> web.Response:
    """The subscriber's whole tree, or a shared user's pruned, read-only view of it."""
    viewer = await require_viewer(request)
    if viewer.role == "subscriber":
        tree = await organise(request).folder_tree(viewer.account_id)
    else:
        owner_id, visible = await _shared_view(request, viewer)
        tree = _prune(await organise(request).folder_tree(owner_id), visible)
    return json_out(
        FoldersOut(
            folders=[FolderOut.of(f) for f in tree],
            editable=viewer.role == "subscriber",
            max_depth=MAX_DEPTH,
            max_children=MAX_CHILDREN,
        )
    )


@api_route(
    routes,
    "GET",
    f"{FOLDERS}/devices",
    summary="Sites with their folder; ?q= searches names (case-insensitive, anywhere in the "
    "name), ?unassigned=true keeps sites in no folder (ORG-1)",
    response=FolderDevicesOut,
)
async def list_folder_devices(request: web.Request) -> web.Response:
    """The manual's device list beside the tree (4.4 ⑤-⑦); a shared user sees only the sites
    with a camera shared with them."""
    viewer = await require_viewer(request)
    search = request.query.get("q", "")[:FIELD_MAX]
    flag = request.query.get("unassigned", "false").lower()
    if flag not in ("true", "false", "1", "0"):
        raise ApiError.bad_request("unassigned: true or false")
    only: set[str] | None = None
    owner_id = viewer.account_id
    if viewer.role != "subscriber":
        owner_id, only = await _shared_view(request, viewer)
    rows = await organise(request).folder_devices(
        owner_id, search=search, unassigned=flag in ("true", "1"), only=only
    )
    return json_out(
        FolderDevicesOut(
            devices=[
                FolderDeviceOut(id=d.id, name=d.name, online=d.online, folder_id=folder)
                for d, folder in rows
            ]
        )
    )


def _refuse(result: str, what: str = "folder") -> ApiError:
    """The API error for a store refusal of a folder change."""
    if result == "depth":
        return ApiError.org_limit(
            Code.FOLDER_DEPTH, f"Folders can be created up to {MAX_DEPTH} levels deep."
        )
    if result == "limit":
        return ApiError.org_limit(
            Code.FOLDER_LIMIT, f"Up to {MAX_CHILDREN} folders can be linked to one folder."
        )
    if result == "cycle":
        return ApiError.bad_request("parent_id: a folder cannot move into itself or below it")
    return ApiError.not_found(what)


async def _folder_out(request: web.Request, owner_id: str, folder_id: str) -> web.Response:
    for row in await organise(request).folder_tree(owner_id):
        if row.id == folder_id:
            return json_out(FolderOut.of(row))
    raise ApiError.not_found("folder")


@api_route(
    routes,
    "POST",
    FOLDERS,
    summary="Create a folder at the top level or under parent_id, as its last child; at most "
    "3 levels (91101) and 100 sub-folders per folder (91102) (ORG-1)",
    request=FolderIn,
    response=FolderOut,
    status=201,
)
async def create_folder(request: web.Request) -> web.Response:
    """400249/400250 for the name; 404 for a parent that is not the subscriber's."""
    owner = await require_subscriber(request)
    body = await read_json(request, FolderIn)
    name = validate_name(body.name)
    result = await organise(request).create_folder(owner.account_id, name, body.parent_id)
    if isinstance(result, str):
        raise _refuse(result)
    return json_out(FolderOut.of(result), status=201)


@api_route(
    routes,
    "DELETE",
    FOLDERS,
    summary="Delete ALL folders (manual 4.4.4); their sites become unassigned, never deleted",
    response=UnassignedOut,
)
async def delete_all_folders(request: web.Request) -> web.Response:
    """Returns the sites that were in a folder."""
    owner = await require_subscriber(request)
    gone = await organise(request).delete_folder(owner.account_id, None)
    return json_out(UnassignedOut(unassigned=gone or []))


@api_route(
    routes,
    "PATCH",
    f"{FOLDERS}/{{folder_id}}",
    summary="Rename a folder (ORG-1)",
    request=RenameIn,
    response=FolderOut,
)
async def rename_folder(request: web.Request) -> web.Response:
    """400249/400250 for the name."""
    owner = await require_subscriber(request)
    body = await read_json(request, RenameIn)
    folder_id = request.match_info["folder_id"]
    if not await organise(request).rename_folder(
        owner.account_id, folder_id, validate_name(body.name)
    ):
        raise ApiError.not_found("folder")
    return await _folder_out(request, owner.account_id, folder_id)


@api_route(
    routes,
    "POST",
    f"{FOLDERS}/{{folder_id}}/move",
    summary="Move or reorder a folder with its sub-folders: new parent (null: top level) and "
    "position among its siblings; the depth limit counts the whole moved sub-tree (ORG-1)",
    request=MoveIn,
    response=FoldersOut,
)
async def move_folder(request: web.Request) -> web.Response:
    """91101 too deep, 91102 the new parent is full, 91001 into itself; returns the tree."""
    owner = await require_subscriber(request)
    body = await read_json(request, MoveIn)
    result = await organise(request).move_folder(
        owner.account_id, request.match_info["folder_id"], body.parent_id, body.position
    )
    if result != "ok":
        raise _refuse(result)
    tree = await organise(request).folder_tree(owner.account_id)
    return json_out(
        FoldersOut(
            folders=[FolderOut.of(f) for f in tree],
            editable=True,
            max_depth=MAX_DEPTH,
            max_children=MAX_CHILDREN,
        )
    )


@api_route(
    routes,
    "DELETE",
    f"{FOLDERS}/{{folder_id}}",
    summary="Delete a folder and its sub-folders; their sites are unassigned (become "
    "'unassigned devices'), never deleted (ORG-1)",
    response=UnassignedOut,
)
async def delete_folder(request: web.Request) -> web.Response:
    """Returns the sites that were in the deleted folders."""
    owner = await require_subscriber(request)
    gone = await organise(request).delete_folder(owner.account_id, request.match_info["folder_id"])
    if gone is None:
        raise ApiError.not_found("folder")
    return json_out(UnassignedOut(unassigned=gone))


@api_route(
    routes,
    "PUT",
    f"{FOLDERS}/{{folder_id}}/devices/{{device_id}}",
    summary="Link a site to a folder; a site already in another folder moves here (a site is "
    "in at most one folder) (ORG-1)",
    response=FolderOut,
)
async def link_device(request: web.Request) -> web.Response:
    """404 for a folder or site that is not the subscriber's."""
    owner = await require_subscriber(request)
    folder_id = request.match_info["folder_id"]
    linked = await organise(request).link_device(
        owner.account_id, folder_id, request.match_info["device_id"]
    )
    if not linked:
        raise ApiError.not_found("folder or device")
    return await _folder_out(request, owner.account_id, folder_id)


@api_route(
    routes,
    "DELETE",
    f"{FOLDERS}/{{folder_id}}/devices/{{device_id}}",
    summary="Take a site out of a folder (it becomes unassigned) (ORG-1)",
    responses={"204": "unlinked"},
    status=204,
)
async def unlink_device(request: web.Request) -> web.Response:
    """404 when the site is not in this folder of the subscriber's."""
    owner = await require_subscriber(request)
    unlinked = await organise(request).unlink_device(
        owner.account_id, request.match_info["folder_id"], request.match_info["device_id"]
    )
    if not unlinked:
        raise ApiError.not_found("device in this folder")
    return web.Response(status=204)


def setup_routes(app: web.Application) -> None:
    """Register the folder routes (``/folders/devices`` before ``/folders/{folder_id}``)."""
    app.add_routes(routes)
