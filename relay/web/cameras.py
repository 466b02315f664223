"""Camera control and device information (issue 4 items 3 and 5): PTZ, presets, imaging, DEV-1.

Every call is authorised against the store (:func:`require_camera_permission`), validated here
(clear 400s before anything enters the tunnel), then served by the site's agent as a small
request stream with a JSON answer. The agent's failures arrive as status and code and are
passed on: camera unreachable 503/50115, credentials refused 502/90009, operation the camera
lacks 409/90008, camera fault 502/90010, site offline 503/50115.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any, Literal, Self

from aiohttp import web
from pydantic import BaseModel, Field, RootModel, model_validator

from relay import permissions
from relay.errors import ApiError
from relay.store import CameraRow
from relay.store.names import rename_owned
from relay.tunnel.broker import BrokerError
from relay.web.auth import require_viewer
from relay.web.authz import check_camera
from relay.web.keys import BROKER_KEY, STORE_KEY
from relay.web.openapi import api_route
from relay.web.schemas import FIELD_MAX, In, json_out, read_json
from shared import models, quic
from shared.tunnel.errors import FrameError

routes = web.RouteTableDef()

#: CAM-1: names of sites and cameras.
NAME_MAX = 20
#: Most items in one rename.
RENAME_MAX = 100
#: Longest wait for a control answer (a camera's SOAP call is ~10 ms; ONVIF timeout 10 s).
CONTROL_TIMEOUT_S = 15.0
#: Device information is shown even when the camera is slow: wait less, report the error.
INFO_TIMEOUT_S = 6.0
MAX_ANSWER = 256 * 1024

Permission = Literal["camera_view", "camera_control", "camera_settings"]
_PERMISSIONS = {
    "camera_view": permissions.Permission.LIVE,
    "camera_control": permissions.Permission.CAMERA_CONTROL,
    "camera_settings": permissions.Permission.CAMERA_SETTINGS,
}


async def require_camera_permission(
    request: web.Request, camera_id: str, permission: Permission
) -> CameraRow:
    """The camera if the viewer holds ``permission`` on it; 404 otherwise (never 403).

    Read from the store on every call (issue 5): the subscriber holds every permission on
    their own cameras; a shared user holds their permission group's on the cameras shared
    with them ("camera_view" is USER-8's always-on live permission).
    """
    viewer = await require_viewer(request)
    try:
        access = await check_camera(request, viewer, _PERMISSIONS[permission], camera_id)
    except ApiError as err:
        raise ApiError.not_found("camera") from err
    return access.camera


async def ask_agent(
    request: web.Request, device_id: str, req: models.Request, timeout: float
) -> Any:
    """Send ``req`` to the site's agent and parse its JSON answer; ApiError on failure."""
    broker = request.app[BROKER_KEY]
    try:
        _, stream = await broker.open(device_id, req, timeout=timeout)
    except BrokerError as err:
        raise ApiError(err.status, err.code, err.message) from err
    body = bytearray()
    try:
        async with asyncio.timeout(timeout):
            while (frame := await stream.read_frame()) is not None:
                body += frame.payload
                if len(body) > MAX_ANSWER:
                    raise ApiError(502, 90007, "The site's answer was too large.")
    except (TimeoutError, quic.StreamReset, FrameError) as err:
        raise ApiError(504, 50115, "The site did not answer.") from err
    finally:
        stream.reset(quic.RESET_CANCELLED)
    return json.loads(body or b"{}")


async def _control(
    request: web.Request, camera: CameraRow, kind: models.RequestKind, args: BaseModel
) -> Any:
    """One control request for ``camera`` with ``args``."""
    req = models.Request(kind=kind, camera=camera.local_id, args=args.model_dump())
    return await ask_agent(request, camera.device_id, req, CONTROL_TIMEOUT_S)


def _slot(request: web.Request) -> int:
    """The preset number in the URL: 1..10 (LIVE-5), else 400."""
    raw = request.match_info["n"]
    if not raw.isdigit() or not 1 <= int(raw) <= models.MAX_PRESETS:
        raise ApiError.bad_request(f"preset number must be 1-{models.MAX_PRESETS}")
    return int(raw)


# --- bodies -------------------------------------------------------------------------------------

Speed = Field(default=0.0, ge=-1.0, le=1.0)
Part = Field(default=0.0, ge=0.0, le=1.0)


class PtzIn(In):
    """A PTZ action (LIVE-5). Speeds are -1..1; rectangles and points are image fractions.

    ``forced`` is the portal's "Forced PTZ operation" (manual 5.3.12) for old PTZ cameras that
    do not report PTZ: the action is sent anyway, and a camera without PTZ refuses it (409
    90008, or 502 90010 with the camera's fault).
    """

    action: Literal["move", "stop", "home", "focus", "area_zoom", "centre"]
    pan: float = Speed
    tilt: float = Speed
    zoom: float = Speed
    mode: Literal["far", "near", "auto"] | None = None
    x: float = Part
    y: float = Part
    w: float = Part
    h: float = Part
    forced: bool = Field(
        default=False,
        description="forced PTZ: send to a camera that did not report PTZ (old cameras)",
    )

    @model_validator(mode="after")
    def _complete(self) -> Self:
        """Focus needs a mode; a rectangle needs a size and must lie inside the image."""
        if self.action == "focus" and self.mode is None:
            raise ValueError("focus needs mode far, near or auto")
        if self.action == "area_zoom":
            if self.w <= 0 or self.h <= 0:
                raise ValueError("area_zoom needs w and h above 0")
            if self.x + self.w > 1 or self.y + self.h > 1:
                raise ValueError("area_zoom rectangle must lie inside the image (x+w, y+h <= 1)")
        return self

    def args(self) -> models.PtzArgs:
        """As the tunnel's typed args."""
        data = self.model_dump()
        data["mode"] = data["mode"] or "stop"
        return models.PtzArgs.model_validate(data)


class PresetIn(In):
    """A preset's name (optional when registering)."""

    name: str = Field(default="", max_length=models.PRESET_NAME_LEN)


class RenameItem(In):
    """One site or camera and its new name."""

    id: str = Field(min_length=1, max_length=FIELD_MAX)
    name: str = Field(max_length=FIELD_MAX)


class RenameIn(RootModel[Annotated[list[RenameItem], Field(min_length=1, max_length=RENAME_MAX)]]):
    """Several renames at once (CAM-1): ``[{"id": …, "name": …}, …]``."""


class ImagingPatchIn(BaseModel):
    """Imaging fields to change (only those the camera offers; see GET …/imaging)."""

    brightness: float | None = None
    contrast: float | None = None
    color_saturation: float | None = None
    sharpness: float | None = None
    gain: float | None = None
    exposure_time: float | None = None
    backlight_level: float | None = None
    wdr_level: float | None = None
    backlight_compensation: str | None = None
    wide_dynamic_range: str | None = None
    exposure_mode: str | None = None
    ir_cut_filter: str | None = None
    focus_mode: str | None = None


class OkOut(BaseModel):
    """The camera accepted the action."""

    ok: bool


class PresetOut(BaseModel):
    """One numbered preset."""

    slot: int
    name: str
    token: str


class PresetsOut(BaseModel):
    """The camera's presets by number (at most ``max``)."""

    presets: list[PresetOut]
    max: int


class ImagingRangeOut(BaseModel):
    """Bounds of a numeric field."""

    min: float
    max: float


class ImagingOut(BaseModel):
    """Imaging values the camera offers, with ranges and choices (CAM-3)."""

    values: dict[str, float | str]
    ranges: dict[str, ImagingRangeOut]
    modes: dict[str, list[str]]


class SiteRef(BaseModel):
    """The site a camera belongs to."""

    id: str
    name: str
    online: bool


class DeviceInfoOut(BaseModel):
    """DEV-1 device information of a camera."""

    manufacturer: str
    model: str
    serial_number: str
    firmware_version: str
    mac: str | None
    address: str | None
    dhcp: bool | None


class CameraDetailOut(BaseModel):
    """A camera: name, site, status, device information and capabilities."""

    id: str
    name: str
    site: SiteRef
    online: bool
    status: Literal["normal", "communication_error", "authentication_error"]
    error: str
    device: DeviceInfoOut
    capabilities: list[str]


class SiteInfoOut(BaseModel):
    """DEV-1 device information of a site's agent."""

    id: str
    name: str
    online: bool
    status: Literal["normal", "communication_error"]
    agent_version: str
    model: str
    serial_number: str
    firmware_version: str
    hostname: str
    network: list[dict[str, str]]


class RenamedOut(BaseModel):
    """How many sites and cameras were renamed."""

    renamed: int


# --- routes -------------------------------------------------------------------------------------


@api_route(
    routes,
    "GET",
    "/api/v1/cameras/{camera_id}",
    summary="A camera: name, site, status, device information, capabilities (DEV-1)",
    response=CameraDetailOut,
)
async def camera_detail(request: web.Request) -> web.Response:
    """Stored facts plus what the agent reads now; an unanswering camera is a status, not 5xx."""
    camera = await require_camera_permission(
        request, request.match_info["camera_id"], "camera_view"
    )
    device = await request.app[STORE_KEY].get_device(camera.device_id)
    assert device is not None  # the camera row joins its device
    live = await _camera_info(request, camera) if device.online else {}
    net = live.get("network") or {}
    out = CameraDetailOut(
        id=camera.id,
        name=camera.name,
        site=SiteRef(id=device.id, name=device.name, online=device.online),
        online=camera.online and device.online,
        status=live.get("status", "communication_error"),
        error=str(live.get("error", "" if device.online else "the site is offline")),
        device=DeviceInfoOut(
            manufacturer=camera.manufacturer,
            model=camera.model,
            serial_number=camera.serial_number,
            firmware_version=camera.firmware_version,
            mac=net.get("mac"),
            address=net.get("address"),
            dhcp=net.get("dhcp"),
        ),
        capabilities=list(live.get("capabilities") or camera.capabilities),
    )
    return json_out(out)


async def _camera_info(request: web.Request, camera: CameraRow) -> dict[str, Any]:
    """The agent's ``camera_info`` answer, or a communication error."""
    req = models.Request(kind="camera_info", camera=camera.local_id)
    try:
        answer = await ask_agent(request, camera.device_id, req, INFO_TIMEOUT_S)
    except ApiError as err:
        return {"status": "communication_error", "error": err.message}
    return answer if isinstance(answer, dict) else {}


@api_route(
    routes,
    "POST",
    "/api/v1/cameras/{camera_id}/ptz",
    summary="PTZ: move (speeds -1..1), stop, home, focus far/near/auto, area_zoom, centre; "
    "forced=true for old PTZ cameras that do not report PTZ (LIVE-5 forced PTZ)",
    request=PtzIn,
    response=OkOut,
)
async def ptz(request: web.Request) -> web.Response:
    """Pass one PTZ action to the camera (LIVE-5)."""
    camera = await require_camera_permission(
        request, request.match_info["camera_id"], "camera_control"
    )
    body = await read_json(request, PtzIn)
    await _control(request, camera, "ptz", body.args())
    return json_out(OkOut(ok=True))


@api_route(
    routes,
    "GET",
    "/api/v1/cameras/{camera_id}/presets",
    summary="The camera's presets, numbered 1-10 (LIVE-5)",
    response=PresetsOut,
)
async def list_presets(request: web.Request) -> web.Response:
    """Presets by number."""
    camera = await require_camera_permission(
        request, request.match_info["camera_id"], "camera_control"
    )
    answer = await _control(request, camera, "presets", models.PresetArgs(op="list"))
    return json_out(PresetsOut.model_validate(answer))


@api_route(
    routes,
    "PUT",
    "/api/v1/cameras/{camera_id}/presets/{n}",
    summary="Register the current position as preset n (1-10), optionally named",
    request=PresetIn,
    response=PresetsOut,
)
async def set_preset(request: web.Request) -> web.Response:
    """SetPreset on the camera; preset 1 is the home position."""
    return await _preset_op(request, "set", name_required=False)


@api_route(
    routes,
    "PATCH",
    "/api/v1/cameras/{camera_id}/presets/{n}",
    summary="Rename preset n (the position stays)",
    request=PresetIn,
    response=PresetsOut,
)
async def rename_preset(request: web.Request) -> web.Response:
    """A new name for a registered preset."""
    return await _preset_op(request, "rename", name_required=True)


@api_route(
    routes,
    "POST",
    "/api/v1/cameras/{camera_id}/presets/{n}/goto",
    summary="Move the camera to preset n",
    response=PresetsOut,
)
async def goto_preset(request: web.Request) -> web.Response:
    """GotoPreset on the camera."""
    return await _preset_op(request, "goto", name_required=False)


async def _preset_op(
    request: web.Request, op: Literal["set", "rename", "goto"], *, name_required: bool
) -> web.Response:
    """Validate slot and name, then ask the agent."""
    camera = await require_camera_permission(
        request, request.match_info["camera_id"], "camera_control"
    )
    slot = _slot(request)
    body = await read_json(request, PresetIn) if op != "goto" else PresetIn()
    name = body.name.strip()
    if name_required and not name:
        raise ApiError.bad_request("name: a preset needs a name")
    args = models.PresetArgs(op=op, slot=slot, name=name)
    return json_out(PresetsOut.model_validate(await _control(request, camera, "presets", args)))


@api_route(
    routes,
    "GET",
    "/api/v1/cameras/{camera_id}/imaging",
    summary="Imaging settings the camera offers, with ranges and choices (CAM-3)",
    response=ImagingOut,
)
async def get_imaging(request: web.Request) -> web.Response:
    """Current imaging values."""
    camera = await require_camera_permission(
        request, request.match_info["camera_id"], "camera_settings"
    )
    answer = await _control(request, camera, "imaging", models.ImagingArgs(op="get"))
    return json_out(ImagingOut.model_validate(answer))


@api_route(
    routes,
    "PATCH",
    "/api/v1/cameras/{camera_id}/imaging",
    summary='Change imaging fields, e.g. {"brightness": 60} (CAM-3, LIVE-4 brightness)',
    request=ImagingPatchIn,
    response=ImagingOut,
)
async def patch_imaging(request: web.Request) -> web.Response:
    """Validate field names and value types, then set them on the camera."""
    camera = await require_camera_permission(
        request, request.match_info["camera_id"], "camera_settings"
    )
    values = _imaging_values(await request.read())
    args = models.ImagingArgs(op="set", values=values)
    return json_out(ImagingOut.model_validate(await _control(request, camera, "imaging", args)))


def _imaging_values(raw: bytes) -> dict[str, float | str]:
    """A non-empty object of known CAM-3 fields: numbers for numeric ones, strings for modes."""
    try:
        data = json.loads(raw or b"null")
    except ValueError as err:
        raise ApiError.bad_request("body: not JSON") from err
    if not isinstance(data, dict) or not data:
        raise ApiError.bad_request('body: an object of imaging fields, e.g. {"brightness": 60}')
    values: dict[str, float | str] = {}
    for name, value in data.items():
        if name in models.IMAGING_NUMERIC:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ApiError.bad_request(f"{name}: a number")
            values[name] = float(value)
        elif name in models.IMAGING_MODES:
            if not isinstance(value, str) or not 0 < len(value) <= 16:
                raise ApiError.bad_request(f"{name}: a mode such as ON, OFF or AUTO")
            values[name] = value
        else:
            raise ApiError.bad_request(f"{str(name)[:40]}: not an imaging field")
    return values


@api_route(
    routes,
    "GET",
    "/api/v1/devices/{device_id}/information",
    summary="Device information of a site's agent: model, serial, MAC, version, network (DEV-1)",
    response=SiteInfoOut,
)
async def site_information(request: web.Request) -> web.Response:
    """Stored facts and what the agent reports now; offline is a status."""
    viewer = await require_viewer(request)
    device = await request.app[STORE_KEY].get_device(request.match_info["device_id"])
    if device is None or device.account_id != viewer.account_id:
        raise ApiError.not_found("device")
    live: dict[str, Any] = {}
    if device.online:
        req = models.Request(kind="site_info", camera=models.SITE_TARGET)
        try:
            live = await ask_agent(request, device.id, req, INFO_TIMEOUT_S)
        except ApiError:
            live = {}
    out = SiteInfoOut(
        id=device.id,
        name=device.name,
        online=device.online,
        status="normal" if live else "communication_error",
        agent_version=device.agent_version,
        model=str(live.get("model", "rmon-agent")),
        serial_number=device.id,
        firmware_version=str(live.get("firmware_version", device.agent_version)),
        hostname=str(live.get("hostname", "")),
        network=[{k: str(v) for k, v in n.items()} for n in live.get("network", [])],
    )
    return json_out(out)


@api_route(
    routes,
    "PATCH",
    "/api/v1/devices",
    summary="Rename several sites and cameras at once: [{id, name}] (CAM-1, at most 20 characters)",
    request=RenameIn,
    response=RenamedOut,
)
async def rename_devices(request: web.Request) -> web.Response:
    """All or nothing: one bad name or unknown id and nothing changes."""
    viewer = await require_viewer(request)
    body = await read_json(request, RenameIn)
    names: dict[str, str] = {}
    for index, item in enumerate(body.root):
        name = item.name.strip()
        if not name:
            raise ApiError.bad_request(f"{index}.name: a name is required")
        if len(name) > NAME_MAX:
            raise ApiError.bad_request(f"{index}.name: at most {NAME_MAX} characters")
        names[item.id] = name
    missing = await rename_owned(request.app[STORE_KEY].engine, viewer.account_id, names)
    if missing:
        raise ApiError.not_found("site or camera")
    return json_out(RenamedOut(renamed=len(names)))


def setup_routes(app: web.Application) -> None:
    """Register the camera-control routes."""
    app.add_routes(routes)
