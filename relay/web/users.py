"""Shared users (USER-6), their camera shares (USER-7, CAM-2) and the permission groups (USER-8).

Subscriber only: user management can never be granted to a shared user (403/91006 for them).
A user of another subscriber is 404, as is a camera that is not the subscriber's. Revoking a
share, deleting a user, or changing a user's group or flags ends their open live streams at
once (:mod:`relay.web.streams`); group and flag changes also end their sessions (50205).
"""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from relay import permissions
from relay.auth import validate_name
from relay.errors import ApiError
from relay.notify.mail import MailError
from relay.permissions import Group, Permission
from relay.store import AccountRow
from relay.web.authz import require_subscriber
from relay.web.keys import AUTH_KEY, SETTINGS_KEY, STREAMS_KEY
from relay.web.openapi import api_route
from relay.web.schemas import FIELD_MAX, In, json_out, read_json

routes = web.RouteTableDef()

GroupNo = Field(default=4, ge=1, le=4, description="permission group 1..4")


class UserIn(In):
    """A new shared user (USER-6); nothing is shared at creation (USER-7)."""

    email: str = Field(default="", max_length=FIELD_MAX)
    name: str = Field(default="", max_length=FIELD_MAX)
    group: int = GroupNo
    allow_device_settings: bool = False
    privacy_guard: bool = False


class UserPatchIn(In):
    """Fields to change; absent ones stay."""

    name: str | None = Field(default=None, max_length=FIELD_MAX)
    group: int | None = Field(default=None, ge=1, le=4)
    allow_device_settings: bool | None = None
    privacy_guard: bool | None = None


class DeleteUserIn(In):
    """The subscriber's password confirms the deletion."""

    password: str = Field(default="", max_length=FIELD_MAX)


class SharesIn(In):
    """The complete set of cameras shared with the user (replaces the previous set)."""

    cameras: list[str] = Field(default_factory=list, max_length=10000)


class UserOut(BaseModel):
    """A shared user and the cameras shared with them."""

    id: str
    email: str
    name: str
    group: int
    allow_device_settings: bool
    privacy_guard: bool
    must_change_password: bool
    cameras: list[str]

    @classmethod
    def of(cls, user: AccountRow, cameras: list[str]) -> UserOut:
        """From the store."""
        return cls(
            id=user.id,
            email=user.email,
            name=user.name,
            group=user.group_no or 4,
            allow_device_settings=user.allow_device_settings,
            privacy_guard=user.privacy_guard,
            must_change_password=user.must_change_password,
            cameras=cameras,
        )


class UsersOut(BaseModel):
    """The subscriber's shared users and the limit."""

    users: list[UserOut]
    limit: int


class GroupIO(In):
    """A permission group: its editable name and its permissions."""

    number: int = Field(default=0, ge=1, le=4)
    name: str = Field(default="", max_length=FIELD_MAX)
    permissions: list[str] = Field(default_factory=list, max_length=16)


class GroupsIO(In):
    """All four groups (PUT replaces all four)."""

    groups: list[GroupIO] = Field(default_factory=list, max_length=4)


def _groups_out(groups: list[Group]) -> GroupsIO:
    return GroupsIO(
        groups=[
            GroupIO(number=g.number, name=g.name, permissions=sorted(g.permissions)) for g in groups
        ]
    )


@api_route(
    routes, "GET", "/api/v1/users", summary="The subscriber's shared users", response=UsersOut
)
async def list_users(request: web.Request) -> web.Response:
    """With each user's shared cameras."""
    owner = await require_subscriber(request)
    rows = await request.app[AUTH_KEY].accounts.shared_users(owner.account_id)
    limit = request.app[SETTINGS_KEY].max_shared_users
    return json_out(UsersOut(users=[UserOut.of(u, c) for u, c in rows], limit=limit))


@api_route(
    routes,
    "POST",
    "/api/v1/users",
    summary="Create a shared user and mail the initial password (USER-6)",
    request=UserIn,
    response=UserOut,
    status=201,
)
async def create_user(request: web.Request) -> web.Response:
    """400229 taken, 400249/400250 name, 50303 over the limit, 91004 not an address."""
    owner = await require_subscriber(request)
    body = await read_json(request, UserIn)
    try:
        user = await request.app[AUTH_KEY].invite_shared_user(
            owner,
            email=body.email,
            name=body.name,
            group_no=body.group,
            allow_device_settings=body.allow_device_settings,
            privacy_guard=body.privacy_guard,
        )
    except MailError as err:
        raise ApiError(500, 500, "The user was created but the invitation mail failed.") from err
    return json_out(UserOut.of(user, []), status=201)


async def _user(request: web.Request) -> tuple[str, AccountRow, list[str]]:
    """(owner id, user, shares) for the URL's user, if the subscriber's; 404 otherwise."""
    owner = await require_subscriber(request)
    found = await request.app[AUTH_KEY].accounts.shared_user(
        owner.account_id, request.match_info["user_id"]
    )
    if found is None:
        raise ApiError.not_found("user")
    return owner.account_id, *found


@api_route(routes, "GET", "/api/v1/users/{user_id}", summary="One shared user", response=UserOut)
async def get_user(request: web.Request) -> web.Response:
    """404 for anyone not the subscriber's."""
    _, user, cameras = await _user(request)
    return json_out(UserOut.of(user, cameras))


@api_route(
    routes,
    "PATCH",
    "/api/v1/users/{user_id}",
    summary="Rename a shared user or change their group and flags (rights changes: 50205)",
    request=UserPatchIn,
    response=UserOut,
)
async def patch_user(request: web.Request) -> web.Response:
    """A change of group or flags ends the user's sessions and open streams."""
    owner_id, user, _ = await _user(request)
    body = await read_json(request, UserPatchIn)
    values: dict[str, object] = {}
    if body.name is not None:
        values["name"] = validate_name(body.name)
    for field, column in (
        ("group", "group_no"),
        ("allow_device_settings", "allow_device_settings"),
        ("privacy_guard", "privacy_guard"),
    ):
        value = getattr(body, field)
        if value is not None:
            values[column] = value
    accounts = request.app[AUTH_KEY].accounts
    if values:
        await accounts.update_shared_user(owner_id, user.id, **values)
        if set(values) - {"name"}:
            request.app[STREAMS_KEY].revoke(user.id)
    found = await accounts.shared_user(owner_id, user.id)
    if found is None:
        raise ApiError.not_found("user")
    return json_out(UserOut.of(*found))


@api_route(
    routes,
    "DELETE",
    "/api/v1/users/{user_id}",
    summary="Delete a shared user; needs the subscriber's password (400224) (USER-6)",
    request=DeleteUserIn,
    responses={"204": "deleted; their streams end"},
    status=204,
)
async def delete_user(request: web.Request) -> web.Response:
    """Their sessions, shares and streams end with them."""
    owner = await require_subscriber(request)
    body = await read_json(request, DeleteUserIn)
    user_id = request.match_info["user_id"]
    await request.app[AUTH_KEY].delete_shared_user(owner, user_id, body.password)
    request.app[STREAMS_KEY].revoke(user_id)
    return web.Response(status=204)


@api_route(
    routes,
    "PUT",
    "/api/v1/users/{user_id}/shares",
    summary="Set the cameras shared with a user (USER-7; at most 10 users per camera, CAM-2)",
    request=SharesIn,
    response=UserOut,
)
async def put_shares(request: web.Request) -> web.Response:
    """404 for a camera not the subscriber's; 91013 when a camera would exceed 10 users;
    91016 for a camera that does not fit the user's privacy-guard flag."""
    owner_id, user, _ = await _user(request)
    body = await read_json(request, SharesIn)
    limit = request.app[SETTINGS_KEY].max_users_per_camera
    accounts = request.app[AUTH_KEY].accounts
    result = await accounts.set_shares(owner_id, user.id, body.cameras, per_camera=limit)
    if result == "not_found":
        raise ApiError.not_found("camera")
    if result == "limit":
        raise ApiError.share_limit(limit)
    if result == "privacy":
        raise ApiError.privacy_guard_mismatch(user.privacy_guard)
    if isinstance(result, list) and result:
        request.app[STREAMS_KEY].revoke(user.id, result)
    found = await accounts.shared_user(owner_id, user.id)
    if found is None:
        raise ApiError.not_found("user")
    return json_out(UserOut.of(*found))


@api_route(
    routes,
    "GET",
    "/api/v1/permission-groups",
    summary="The four permission groups (USER-8)",
    response=GroupsIO,
)
async def get_groups(request: web.Request) -> web.Response:
    """Defaults until the subscriber saves their own."""
    owner = await require_subscriber(request)
    return json_out(_groups_out(await request.app[AUTH_KEY].accounts.groups(owner.account_id)))


@api_route(
    routes,
    "PUT",
    "/api/v1/permission-groups",
    summary="Save all four groups' names and permissions; live is always on, device and user "
    "management are refused (USER-8); shared users log in again (50205)",
    request=GroupsIO,
    response=GroupsIO,
)
async def put_groups(request: web.Request) -> web.Response:
    """400 (91001) for a missing group, an unknown permission or a subscriber-only one."""
    owner = await require_subscriber(request)
    body = await read_json(request, GroupsIO)
    groups = _parse_groups(body)
    auth = request.app[AUTH_KEY]
    await auth.accounts.put_groups(owner.account_id, groups)
    users = await auth.accounts.shared_users(owner.account_id)
    request.app[STREAMS_KEY].revoke_accounts(u.id for u, _ in users)
    return json_out(_groups_out(await auth.accounts.groups(owner.account_id)))


def _parse_groups(body: GroupsIO) -> list[Group]:
    """Exactly groups 1-4, names 1-32 characters, grantable permissions only; live added."""
    if sorted(g.number for g in body.groups) != list(permissions.GROUP_NUMBERS):
        raise ApiError.bad_request("groups: give each of the groups 1, 2, 3 and 4 once")
    out = []
    for g in sorted(body.groups, key=lambda g: g.number):
        name = g.name.strip()
        if not name:
            raise ApiError.name_required()
        if len(name) > permissions.GROUP_NAME_MAX:
            raise ApiError.name_too_long(permissions.GROUP_NAME_MAX)
        try:
            granted = permissions.parse(g.permissions)
        except ValueError as err:
            raise ApiError.bad_request(f"groups: unknown permission in {g.permissions}") from err
        if granted & permissions.SUBSCRIBER_ONLY:
            raise ApiError.forbidden(
                "Device management and user management cannot be granted to shared users."
            )
        out.append(Group(g.number, name, granted | {Permission.LIVE}))
    return out


def setup_routes(app: web.Application) -> None:
    """Register the user and permission routes."""
    app.add_routes(routes)
