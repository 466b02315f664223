"""Connection history (DEV-7, manual 4.2.7): when each of the viewer's sites connected or
disconnected, and why; 50 rows a page, filtered by device name, time range and status."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, cast

from aiohttp import web
from multidict import MultiMapping
from pydantic import BaseModel, Field

from relay.errors import ApiError
from relay.store import HistoryQuery, HistoryRow
from relay.web.auth import require_viewer
from relay.web.keys import STORE_KEY
from relay.web.openapi import api_route
from relay.web.schemas import json_out

routes = web.RouteTableDef()

#: Rows per page (the manual: "displayed every 50 items on one page").
PAGE_SIZE = 50
#: Highest page number accepted: OFFSET paging costs grow with the page.
MAX_PAGE = 10_000
#: Longest device-name filter (device names are at most 64 characters).
MAX_DEVICE_FILTER = 64
PARAMS = frozenset({"device", "from", "to", "status", "page"})
STATUSES = ("connected", "disconnected")


class HistoryItemOut(BaseModel):
    """One connect or disconnect; ``refused`` marks an attempt the relay turned away."""

    device_id: str
    device_name: str
    status: Literal["connected", "disconnected"]
    at: datetime
    reason: str
    refused: bool
    address: str
    transport: str = Field(description='"quic", "tcp" (the TLS/TCP fallback), or "" if unknown')

    @classmethod
    def of(cls, row: HistoryRow) -> HistoryItemOut:
        """From the store row."""
        return cls(
            device_id=row.device_id,
            device_name=row.device_name,
            status=cast(Literal["connected", "disconnected"], row.event),
            at=row.at,
            reason=row.reason,
            refused=row.refused,
            address=row.address,
            transport=row.transport,
        )


class HistoryPageOut(BaseModel):
    """One page, newest first, with the total so a client can draw the page numbers."""

    items: list[HistoryItemOut]
    page: int
    page_size: int
    total: int


@api_route(
    routes,
    "GET",
    "/api/v1/connection-history",
    summary="Connection history of the viewer's sites (DEV-7): ?device= (name, partial, any "
    "case) &from= &to= (ISO 8601 with time zone, inclusive) &status=connected|disconnected "
    "&page= (from 1, 50 rows each)",
    response=HistoryPageOut,
)
async def connection_history(request: web.Request) -> web.Response:
    """A page of connects and disconnects of the viewer's own devices, newest first."""
    viewer = await require_viewer(request)
    page, query = parse_query(request.query)
    rows, total = await request.app[STORE_KEY].connection_history_page(viewer.account_id, query)
    items = [HistoryItemOut.of(row) for row in rows]
    return json_out(HistoryPageOut(items=items, page=page, page_size=PAGE_SIZE, total=total))


def parse_query(params: MultiMapping[str]) -> tuple[int, HistoryQuery]:
    """(page, store query) from the query string; 400/91001 naming the bad parameter."""
    unknown = sorted(set(params) - PARAMS)
    if unknown:
        raise ApiError.bad_request(f"unknown parameter {unknown[0]!r}; allowed: {_allowed()}")
    for name in PARAMS:
        if len(params.getall(name, [])) > 1:
            raise ApiError.bad_request(f"{name}: give it at most once")
    page = _page(params.get("page"))
    since, until = _time(params, "from"), _time(params, "to")
    if since is not None and until is not None and since > until:
        raise ApiError.bad_request("from: must not be after to")
    query = HistoryQuery(
        device=_device(params.get("device", "")),
        since=since,
        until=until,
        event=_status(params.get("status")),
        offset=(page - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
    )
    return page, query


def _allowed() -> str:
    return ", ".join(sorted(PARAMS))


def _page(raw: str | None) -> int:
    """Page number from 1 to MAX_PAGE (default 1)."""
    if raw is None or raw == "":
        return 1
    if not raw.isdecimal() or not 1 <= int(raw) <= MAX_PAGE:
        raise ApiError.bad_request(f"page: a whole number from 1 to {MAX_PAGE}, not {raw[:20]!r}")
    return int(raw)


def _time(params: MultiMapping[str], name: str) -> datetime | None:
    """An ISO 8601 date-time with a time zone (``2030-01-01T12:00:00Z``); naive times are
    refused rather than guessed: the viewer's and the relay's zones differ."""
    raw = params.get(name, "")
    if raw == "":
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError.bad_request(
            f"{name}: not an ISO 8601 date-time like 2030-01-31T08:00:00Z: {raw[:40]!r}"
        ) from None
    if value.tzinfo is None:
        raise ApiError.bad_request(f"{name}: add a time zone (Z or +hh:mm) to {raw[:40]!r}")
    return value


def _status(raw: str | None) -> Literal["connected", "disconnected"] | None:
    if raw is None or raw == "":
        return None
    if raw not in STATUSES:
        raise ApiError.bad_request(f"status: connected or disconnected, not {raw[:20]!r}")
    return cast(Literal["connected", "disconnected"], raw)


def _device(raw: str) -> str:
    text = raw.strip()
    if len(text) > MAX_DEVICE_FILTER:
        raise ApiError.bad_request(f"device: at most {MAX_DEVICE_FILTER} characters")
    return text


def setup_routes(app: web.Application) -> None:
    """Register the connection-history route."""
    app.add_routes(routes)
