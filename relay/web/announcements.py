"""Operator announcements (MSG-1, manual 5.7 and 5.8.2): firmware available, maintenance and
other notices, with each viewer's unread count, the newest 10 for the portal's Messages popup,
and paged history — all kinds (message history) or ``?kind=maintenance`` (maintenance history).

Called "announcements" here because ``relay/portal/messages.js`` is the portal's table of
error messages; the API path stays ``/api/v1/messages`` as in the manual. Messages are posted by
the operator (``rmon-relay message post``), never through the API; every account, subscriber
or shared user, sees all of them and has its own read state. An unknown id is 404/91150.
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from multidict import MultiMapping
from pydantic import BaseModel, Field

from relay.errors import ApiError
from relay.store.messages import KINDS, Kind, MessageRow, MessageStore
from relay.web.auth import require_viewer
from relay.web.keys import STORE_KEY
from relay.web.openapi import api_route
from relay.web.schemas import json_out

routes = web.RouteTableDef()

MESSAGES = "/api/v1/messages"
PAGE_SIZE = 20  # history rows per page
POPUP_SIZE = 10  # MSG-1 / manual 5.7.1: "The last 10 messages are displayed"
MAX_PAGE = 10_000  # OFFSET paging costs grow with the page
PARAMS = frozenset({"kind", "page"})


class MessageOut(BaseModel):
    """One announcement and whether the calling viewer has read it."""

    id: int
    kind: Kind = Field(description="firmware_available, maintenance or other")
    title: str
    body: str
    published_at: datetime
    starts_at: datetime | None = Field(description="maintenance window start, if announced")
    ends_at: datetime | None = Field(description="maintenance window end, if announced")
    read: bool

    @classmethod
    def of(cls, row: MessageRow) -> MessageOut:
        """From the store."""
        return cls(
            id=row.id,
            kind=row.kind,
            title=row.title,
            body=row.body,
            published_at=row.published_at,
            starts_at=row.starts_at,
            ends_at=row.ends_at,
            read=row.read,
        )


class MessagePageOut(BaseModel):
    """One page of the history, newest first, with the total for page links."""

    messages: list[MessageOut]
    page: int
    page_size: int
    total: int


class SummaryOut(BaseModel):
    """What the Messages button needs: the unread count and the newest 10."""

    unread: int
    messages: list[MessageOut]


class ReadAllOut(BaseModel):
    """How many messages were unread before."""

    marked: int


def message_store(request: web.Request) -> MessageStore:
    """The MSG query class over the app's store engine."""
    store = request.app[STORE_KEY]
    return MessageStore(store.engine, clock=store.clock)


def parse_history(params: MultiMapping[str]) -> tuple[int, list[Kind]]:
    """(page, kinds) from ``?kind=a,b&page=n``; 400/91001 naming the bad parameter."""
    unknown = sorted(set(params) - PARAMS)
    if unknown:
        raise ApiError.bad_request(f"unknown parameter {unknown[0][:40]!r}; allowed: kind, page")
    for name in PARAMS:
        if len(params.getall(name, [])) > 1:
            raise ApiError.bad_request(f"{name}: give it at most once")
    return _page(params.get("page", "")), _kinds(params.get("kind", ""))


def _page(raw: str) -> int:
    """Page number from 1 to MAX_PAGE (default 1)."""
    if raw == "":
        return 1
    if not raw.isdecimal() or not 1 <= int(raw) <= MAX_PAGE:
        raise ApiError.bad_request(f"page: a whole number from 1 to {MAX_PAGE}, not {raw[:20]!r}")
    return int(raw)


def _kinds(raw: str) -> list[Kind]:
    """Comma-separated kinds (empty: every kind)."""
    kinds: list[Kind] = []
    for part in filter(None, raw.split(",")):
        kind = next((k for k in KINDS if k == part), None)
        if kind is None:
            raise ApiError.bad_request(f"kind: one or more of {', '.join(KINDS)}")
        kinds.append(kind)
    return kinds


def _message_id(request: web.Request) -> int:
    """The path's message id; anything that is not one is simply not found."""
    raw = request.match_info["message_id"]
    if not raw.isdecimal() or len(raw) > 18:
        raise ApiError.message_not_found()
    return int(raw)


@api_route(
    routes,
    "GET",
    MESSAGES,
    summary="Message history, newest first, 20 a page (MSG-1, manual 5.8.2): ?kind= one or "
    "more of firmware_available, maintenance, other, comma-separated (kind=maintenance is the "
    "maintenance history) &page= (from 1)",
    response=MessagePageOut,
)
async def list_messages(request: web.Request) -> web.Response:
    """Every account sees every message, with its own read state."""
    viewer = await require_viewer(request)
    page, kinds = parse_history(request.query)
    found = await message_store(request).page(
        viewer.account_id, kinds, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE
    )
    out = [MessageOut.of(row) for row in found.rows]
    return json_out(MessagePageOut(messages=out, page=page, page_size=PAGE_SIZE, total=found.total))


@api_route(
    routes,
    "GET",
    f"{MESSAGES}/summary",
    summary="The Messages button (MSG-1, manual 5.7.1): the viewer's unread count and the "
    "newest 10 messages",
    response=SummaryOut,
)
async def summary(request: web.Request) -> web.Response:
    """Unread count and popup list in one call, so the top bar needs one request."""
    viewer = await require_viewer(request)
    unread, rows = await message_store(request).summary(viewer.account_id, POPUP_SIZE)
    return json_out(SummaryOut(unread=unread, messages=[MessageOut.of(r) for r in rows]))


@api_route(
    routes,
    "GET",
    f"{MESSAGES}/{{message_id}}",
    summary="One message with the viewer's read state (MSG-1); 404/91150 for an unknown id",
    response=MessageOut,
)
async def get_message(request: web.Request) -> web.Response:
    """The history page opens a message from a link (manual 5.7 ③ "View")."""
    viewer = await require_viewer(request)
    row = await message_store(request).get(viewer.account_id, _message_id(request))
    if row is None:
        raise ApiError.message_not_found()
    return json_out(MessageOut.of(row))


@api_route(
    routes,
    "POST",
    f"{MESSAGES}/read-all",
    summary="Mark every message read for the calling viewer only (MSG-1)",
    response=ReadAllOut,
)
async def read_all(request: web.Request) -> web.Response:
    """Other viewers of the same subscriber keep their own unread messages."""
    viewer = await require_viewer(request)
    marked = await message_store(request).mark_all_read(viewer.account_id)
    return json_out(ReadAllOut(marked=marked))


@api_route(
    routes,
    "POST",
    f"{MESSAGES}/{{message_id}}/read",
    summary="Mark one message read for the calling viewer (MSG-1); again is fine; "
    "404/91150 for an unknown id",
    response=MessageOut,
)
async def read_one(request: web.Request) -> web.Response:
    """Returns the message, now read."""
    viewer = await require_viewer(request)
    message_id = _message_id(request)
    store = message_store(request)
    if not await store.mark_read(viewer.account_id, message_id):
        raise ApiError.message_not_found()
    row = await store.get(viewer.account_id, message_id)
    if row is None:
        raise ApiError.message_not_found()
    return json_out(MessageOut.of(row))


def setup_routes(app: web.Application) -> None:
    """Register the message routes (``/summary`` and ``/read-all`` before ``/{message_id}``)."""
    app.add_routes(routes)
