"""Device commands (DEV-2 restart, DEV-4 alarm reset / error recovery, DEV-8 logs) and events.

``POST /api/v1/devices/{id}/commands`` stores the command and hands it to the command plane,
which sends it through the tunnel now or when the site next connects; ``GET /api/v1/commands/{id}``
follows it to its one terminal state. ``GET /api/v1/devices/{id}/logs`` issues a ``log_fetch`` and
waits for it (``log_fetch_timeout_s``), or answers with the newest logs fetched before, marked
``stale``. ``GET /api/v1/devices/{id}/events`` pages through the events the site spooled.

Every route authorises against the store: the device must belong to the viewer's account, or
the answer is 404 (not 403: ids of other accounts' devices are not confirmed).
"""

from __future__ import annotations

import base64
import csv
import io
import json
import zlib
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web
from pydantic import BaseModel, Field

from relay.errors import ApiError, Code
from relay.store import DeviceRow
from relay.store.commands import CommandRow
from relay.web.auth import require_viewer
from relay.web.keys import COMMANDS_KEY, SETTINGS_KEY, STORE_KEY
from relay.web.openapi import api_route
from relay.web.schemas import In, json_out, read_json

routes = web.RouteTableDef()

CommandKind = Literal["restart", "alarm_reset", "error_recovery", "log_fetch"]
KINDS: tuple[str, ...] = get_args(CommandKind)
LogType = Literal["error", "access", "operation", "network"]
LOG_TYPES: tuple[str, ...] = get_args(LogType)
#: Arguments each kind accepts (all optional).
KIND_ARGS: dict[str, frozenset[str]] = {
    "restart": frozenset({"camera"}),
    "alarm_reset": frozenset({"camera"}),
    "error_recovery": frozenset({"camera"}),
    "log_fetch": frozenset({"type"}),
}
#: Largest decompressed log body accepted from a site (bytes): a zip bomb stops here.
MAX_LOG_BYTES = 8 * 1024 * 1024
EVENTS_PAGE_MAX = 500
CSV_COLUMNS = ("time", "level", "source", "message")


class CommandIn(In):
    """A command for a site (``args.camera`` names one of its cameras, by id)."""

    kind: str = Field(default="", max_length=32, description=f"one of {', '.join(KINDS)}")
    args: dict[str, str] = Field(default_factory=dict, max_length=8)
    deadline_s: float | None = Field(
        default=None, gt=0, description="start within this many seconds or expire (seconds)"
    )


class CommandOut(BaseModel):
    """A command and where it stands: pending, sent, acknowledged, then exactly one of done,
    failed, expired or unknown_outcome."""

    id: str
    device_id: str
    kind: str
    target: str = Field(description="camera local id on the site, or empty for the site")
    args: dict[str, Any]
    state: str
    created_at: datetime
    deadline: datetime
    finished_at: datetime | None
    result: dict[str, Any] | None
    error: str

    @classmethod
    def of(cls, row: CommandRow) -> CommandOut:
        """From the store row."""
        return cls(
            id=row.id,
            device_id=row.device_id,
            kind=row.kind,
            target=row.target,
            args=row.args,
            state=row.state,
            created_at=row.created_at,
            deadline=row.deadline,
            finished_at=row.finished_at,
            result=row.result,
            error=row.error,
        )


class LogEntryOut(BaseModel):
    """One log line, its time in the requested zone."""

    time: datetime
    level: str
    source: str
    message: str


class LogsOut(BaseModel):
    """A device log (DEV-8), newest first."""

    device_id: str
    type: str
    tz: str
    time_zone: str
    fetched_at: datetime | None
    stale: bool = Field(description="true when the site did not answer and older logs are shown")
    truncated: bool
    entries: list[LogEntryOut]


class EventOut(BaseModel):
    """One event a site raised."""

    seq: int
    kind: str
    camera: str
    at: datetime
    received_at: datetime
    payload: dict[str, Any]


class EventsOut(BaseModel):
    """Events in sequence order; pass ``next_after`` as ``after`` for the next page."""

    events: list[EventOut]
    next_after: int


async def _device(request: web.Request) -> tuple[DeviceRow, str]:
    """The device in the URL if it is the viewer's (404 otherwise), and the viewer's account."""
    viewer = await require_viewer(request)
    device = await request.app[STORE_KEY].get_device(request.match_info["device_id"])
    if device is None or device.account_id != viewer.account_id:
        raise ApiError.not_found("device")
    return device, viewer.account_id


@api_route(
    routes,
    "POST",
    "/api/v1/devices/{device_id}/commands",
    summary="Issue a command to a site: restart, alarm_reset, error_recovery or log_fetch",
    request=CommandIn,
    response=CommandOut,
    status=202,
)
async def create_command(request: web.Request) -> web.Response:
    """Validate, store and dispatch; the answer comes before the site acts."""
    device, account_id = await _device(request)
    body = await read_json(request, CommandIn)
    target, args = await _target_and_args(request, device, body)
    settings = request.app[SETTINGS_KEY]
    seconds = body.deadline_s or settings.command_default_deadline_s
    if seconds > settings.command_max_deadline_s:
        raise ApiError.bad_request(
            f"deadline_s: at most {settings.command_max_deadline_s:g} seconds"
        )
    store = request.app[STORE_KEY]
    row = await request.app[COMMANDS_KEY].submit(
        device.id,
        body.kind,
        target=target,
        args=args,
        deadline=store.now() + timedelta(seconds=seconds),
        created_by=account_id,
    )
    return json_out(CommandOut.of(row), status=202)


async def _target_and_args(
    request: web.Request, device: DeviceRow, body: CommandIn
) -> tuple[str, dict[str, str]]:
    """Check the kind and its args; a camera id becomes the camera's local id on the site."""
    if body.kind not in KINDS:
        raise ApiError.bad_request(
            f"kind: unknown command kind {body.kind!r}; expected one of {', '.join(KINDS)}"
        )
    extra = set(body.args) - KIND_ARGS[body.kind]
    if extra:
        raise ApiError.bad_request(f"args: {body.kind} does not take {', '.join(sorted(extra))}")
    args = dict(body.args)
    if body.kind == "log_fetch":
        args["type"] = _log_type(args.get("type", "error"))
    camera_id = args.pop("camera", "")
    if not camera_id:
        return "", args
    viewer = await require_viewer(request)
    camera = await request.app[STORE_KEY].camera_for_viewer(viewer.account_id, camera_id)
    if camera is None or camera.device_id != device.id:
        raise ApiError.not_found("camera")
    return camera.local_id, args


def _log_type(value: str) -> str:
    """A known log type, or 400."""
    if value not in LOG_TYPES:
        raise ApiError.bad_request(f"type: expected one of {', '.join(LOG_TYPES)}")
    return value


@api_route(
    routes,
    "GET",
    "/api/v1/commands/{command_id}",
    summary="A command's state, result and error",
    response=CommandOut,
)
async def get_command(request: web.Request) -> web.Response:
    """The command, if it is for one of the viewer's devices."""
    viewer = await require_viewer(request)
    row = await request.app[COMMANDS_KEY].store.get_for_account(
        viewer.account_id, request.match_info["command_id"]
    )
    if row is None:
        raise ApiError.not_found("command")
    return json_out(CommandOut.of(row))


@api_route(
    routes,
    "GET",
    "/api/v1/devices/{device_id}/logs",
    summary="A site's error/access/operation/network log (DEV-8) as JSON or CSV; query "
    "type, tz=local|viewer (viewer_tz: an IANA zone, default UTC), format=json|csv",
    response=LogsOut,
    responses={"200": "text/csv"},
)
async def get_logs(request: web.Request) -> web.Response:
    """Fetch the log from the site now, or show the newest fetched before."""
    device, account_id = await _device(request)
    query = request.query
    log_type = _log_type(query.get("type", "error"))
    tz = query.get("tz", "local")
    out_format = query.get("format", "json")
    if tz not in ("local", "viewer"):
        raise ApiError.bad_request("tz: expected local or viewer")
    if out_format not in ("json", "csv"):
        raise ApiError.bad_request("format: expected json or csv")
    zone = _zone(query.get("viewer_tz", "UTC")) if tz == "viewer" else None
    row, stale = await _fetch_logs(request, device, account_id, log_type)
    logs = _logs_out(device.id, log_type, tz=tz, zone=zone, row=row, stale=stale)
    if out_format == "csv":
        return _csv(logs)
    return json_out(logs)


def _zone(name: str) -> ZoneInfo:
    """The viewer's zone by IANA name, or 400."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ApiError.bad_request(f"viewer_tz: unknown time zone {name!r}") from err


async def _fetch_logs(
    request: web.Request, device: DeviceRow, account_id: str, log_type: str
) -> tuple[CommandRow, bool]:
    """A fresh log_fetch when the site answers in time, else the newest earlier one."""
    plane = request.app[COMMANDS_KEY]
    settings = request.app[SETTINGS_KEY]
    if device.online:
        timeout = settings.log_fetch_timeout_s
        row = await plane.submit(
            device.id,
            "log_fetch",
            args={"type": log_type},
            deadline=plane.store.clock() + timedelta(seconds=timeout),
            created_by=account_id,
        )
        done = await plane.wait(row.id, timeout)
        if done is not None and done.state == "done":
            return done, False
    earlier = await plane.store.latest_done(device.id, "log_fetch", type=log_type)
    if earlier is None:
        raise ApiError.device_offline()
    return earlier, True


def _logs_out(
    device_id: str,
    log_type: str,
    *,
    tz: str,
    zone: ZoneInfo | None,
    row: CommandRow,
    stale: bool,
) -> LogsOut:
    """The fetched log in the requested zone."""
    result = row.result or {}
    entries = [_entry(raw, zone) for raw in _decode_entries(result)]
    name = str(zone) if zone is not None else str(result.get("time_zone", ""))
    return LogsOut(
        device_id=device_id,
        type=log_type,
        tz=tz,
        time_zone=name,
        fetched_at=row.finished_at,
        stale=stale,
        truncated=bool(result.get("truncated", False)),
        entries=entries,
    )


def _entry(raw: dict[str, Any], zone: ZoneInfo | None) -> LogEntryOut:
    """One entry, its time in the site's own offset at that moment, or in ``zone``."""
    at = float(raw["at"])
    tzinfo = zone or timezone(timedelta(seconds=int(raw.get("utc_offset_s", 0))))
    return LogEntryOut(
        time=datetime.fromtimestamp(at, tzinfo),
        level=str(raw.get("level", "")),
        source=str(raw.get("logger", "")),
        message=str(raw.get("message", "")),
    )


def _decode_entries(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The entries of a log_fetch result (zlib-compressed JSON in base64), bounded."""
    if result.get("encoding") != "zlib+base64":
        raise ApiError(502, Code.SYSTEM_ERROR, "the site sent logs in an unknown encoding")
    try:
        inflater = zlib.decompressobj()
        raw = inflater.decompress(base64.b64decode(result["entries"]), MAX_LOG_BYTES)
        entries = None if inflater.unconsumed_tail else json.loads(raw)
    except (KeyError, ValueError, zlib.error) as err:
        raise ApiError(502, Code.SYSTEM_ERROR, "the site sent unreadable logs") from err
    if not isinstance(entries, list):
        raise ApiError(502, Code.SYSTEM_ERROR, "the site sent unreadable logs")
    return [e for e in entries if isinstance(e, dict) and "at" in e]


def _csv(logs: LogsOut) -> web.Response:
    """The log as a CSV download (DEV-8: export as CSV)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    for e in logs.entries:
        writer.writerow((e.time.isoformat(), e.level, e.source, _csv_safe(e.message)))
    name = f"{logs.type}-log-{logs.device_id}.csv"
    return web.Response(
        text=buf.getvalue(),
        content_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _csv_safe(text: str) -> str:
    """Defuse spreadsheet formulas (CSV injection): a cell may not start with = + - @."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@api_route(
    routes,
    "GET",
    "/api/v1/devices/{device_id}/events",
    summary="Events the site raised, in sequence order; query after (seq), limit",
    response=EventsOut,
)
async def list_events(request: web.Request) -> web.Response:
    """One page of the device's events after ``after``."""
    device, _ = await _device(request)
    after = _int_param(request, "after", 0, 0, 2**63 - 1)
    limit = _int_param(request, "limit", 100, 1, EVENTS_PAGE_MAX)
    rows = await request.app[COMMANDS_KEY].store.list_events(device.id, after=after, limit=limit)
    events = [
        EventOut(
            seq=r.seq,
            kind=r.kind,
            camera=r.camera,
            at=r.at,
            received_at=r.received_at,
            payload=r.payload,
        )
        for r in rows
    ]
    return json_out(EventsOut(events=events, next_after=rows[-1].seq if rows else after))


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within [low, high], or 400."""
    text = request.query.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ApiError.bad_request(f"{name}: not an integer") from None
    if not low <= value <= high:
        raise ApiError.bad_request(f"{name}: must be between {low} and {high}")
    return value


def setup_routes(app: web.Application) -> None:
    """Register the command, log and event routes."""
    app.add_routes(routes)
