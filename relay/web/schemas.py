"""Request and response bodies of the JSON API (pydantic), and reading/writing them.

Input models are permissive about missing fields (they default to empty) so that the service
can answer with the documented code (400249 "name required", …) rather than a generic one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from relay.auth import Viewer
from relay.errors import ApiError
from relay.store import AccountRow, DeviceWithCameras

#: Longest string field accepted in any request body (characters).
FIELD_MAX = 1024


class In(BaseModel):
    """Base of request bodies: JSON types only, unknown fields ignored."""

    model_config = ConfigDict(strict=True, extra="ignore")


class AppDeviceIn(In):
    """USER-9: the device an app runs on, sent with its login so the viewer can unlink it."""

    name: str = Field(min_length=1, max_length=64, description="e.g. the phone's name")
    platform: Literal["android", "ios", "web"]


class LoginIn(In):
    """Credentials (USER-3); an app adds ``device`` (USER-9)."""

    email: str = Field(default="", max_length=FIELD_MAX)
    password: str = Field(default="", max_length=FIELD_MAX)
    device: AppDeviceIn | None = Field(
        default=None, description="set by mobile and desktop apps: links this login's token"
    )


class EnrollDeviceIn(In):
    """A device spending its grant (DEV-10)."""

    grant: str = Field(default="", max_length=FIELD_MAX)
    public_key: str = Field(default="", max_length=FIELD_MAX, description="raw Ed25519, hex")
    name: str = Field(default="", max_length=FIELD_MAX)
    agent_version: str = Field(default="", max_length=FIELD_MAX)


class AccountOut(BaseModel):
    """Who is logged in."""

    id: str
    email: str
    name: str
    role: str
    must_change_password: bool = Field(
        default=False, description="USER-6: change the initial password before anything else"
    )

    @classmethod
    def of(cls, account: AccountRow | Viewer) -> AccountOut:
        """From a store row or a viewer."""
        if isinstance(account, Viewer):
            return cls(
                id=account.account_id,
                email=account.email,
                name=account.name,
                role=account.role,
                must_change_password=account.must_change_password,
            )
        return cls(
            id=account.id,
            email=account.email,
            name=account.name,
            role=account.role,
            must_change_password=account.must_change_password,
        )


class LoginOut(BaseModel):
    """A new session: the token (also set as a cookie) and the CSRF token for cookie use."""

    token: str
    csrf_token: str
    account: AccountOut
    device_id: str | None = Field(
        default=None, description="USER-9: the app device this login linked (with ``device``)"
    )


class SessionOut(BaseModel):
    """The current session."""

    csrf_token: str
    account: AccountOut


class CameraOut(BaseModel):
    """A camera in a device listing."""

    id: str
    name: str
    online: bool
    status: str = Field(
        description="normal, communication_error or authentication_error (the camera refuses "
        "the agent's credentials); communication_error also while the site is offline"
    )
    model: str
    manufacturer: str
    capabilities: list[str]


class DeviceOut(BaseModel):
    """A site with its cameras."""

    id: str
    name: str
    online: bool
    agent_version: str
    last_seen_at: datetime | None
    cameras: list[CameraOut]

    @classmethod
    def of(cls, item: DeviceWithCameras) -> DeviceOut:
        """From the store; a camera of an offline site is shown offline."""
        dev = item.device
        cameras = [
            CameraOut(
                id=cam.id,
                name=cam.name,
                online=cam.online and dev.online,
                status=cam.status if dev.online else "communication_error",
                model=cam.model,
                manufacturer=cam.manufacturer,
                capabilities=list(cam.capabilities),
            )
            for cam in item.cameras
        ]
        return cls(
            id=dev.id,
            name=dev.name,
            online=dev.online,
            agent_version=dev.agent_version,
            last_seen_at=dev.last_seen_at,
            cameras=cameras,
        )


class DevicesOut(BaseModel):
    """The viewer's sites."""

    devices: list[DeviceOut]


class GrantOut(BaseModel):
    """A single-use enrollment grant."""

    grant: str
    expires_at: datetime


class EnrollDeviceOut(BaseModel):
    """The new device's id (the agent's identity from now on)."""

    device_id: str


class ErrorDetail(BaseModel):
    """Code (manual table or rmon's 9xxxx) and a message for people."""

    code: int
    message: str


class ErrorOut(BaseModel):
    """Every error body."""

    error: ErrorDetail


M = TypeVar("M", bound=BaseModel)


async def read_json(request: web.Request, model: type[M]) -> M:
    """Parse the request body into ``model``; 91001 when it is not that shape."""
    body = await request.read()
    try:
        return model.model_validate_json(body or b"{}")
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise ApiError.bad_request(f"{where}: {first['msg']}") from err


def json_out(model: BaseModel, status: int = 200) -> web.Response:
    """A JSON response from a model."""
    return web.Response(
        text=model.model_dump_json(), status=status, content_type="application/json"
    )
