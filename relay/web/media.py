"""Live video and snapshots: viewer requests brokered into the agent's tunnel.

``GET /api/v1/cameras/{id}/live`` (WebSocket) sends a JSON ``init`` message with the MSE mime
type, then binary fMP4: the init segment alone, then media fragments coalesced into messages of
up to ``ws_coalesce_bytes`` (forwarding each ~1.2 KB QUIC packet as its own message cost a relay
90 CPU-s/GB; coalescing brought it to 60). Viewers of one camera share one tunnel stream
(:mod:`relay.tunnel.live_hub`): the last one leaving closes it after a short linger, which stops
the work on the agent; authorisation and revocation stay per viewer, here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from relay.auth import Viewer
from relay.errors import ApiError
from relay.permissions import Permission
from relay.store import CameraRow
from relay.tunnel.broker import BrokerError
from relay.tunnel.live_hub import LiveEnded, LiveViewer
from relay.web.authz import camera_access
from relay.web.keys import AUTH_KEY, BROKER_KEY, LIVE_HUB_KEY, SETTINGS_KEY, STREAMS_KEY
from relay.web.openapi import api_route
from relay.web.streams import RECHECK_S
from shared import models

log = logging.getLogger(__name__)

routes = web.RouteTableDef()


async def _camera(request: web.Request) -> CameraRow:
    """The camera named in the URL if this viewer may watch it live: its subscriber, or a
    shared user it is shared with (404 otherwise, not 403). Checked against the store."""
    _, access = await camera_access(request, Permission.LIVE)
    return access.camera


async def _revoked_or_gone(request: web.Request, viewer: Viewer, camera_id: str) -> ApiError:
    """Return once the viewer may no longer watch this camera: at once when the share or
    delete paths of this relay signal it (:mod:`relay.web.streams`), or at the next store
    re-check (every RECHECK_S) for a revocation made on another relay, or when the viewer's
    session ended (logout, a removed app device, a forced re-login, its absolute timeout).
    Watching counts as activity: the re-check touches the session like any request.
    Returns what the viewer is told: the session's error (50201/50205), or 91006."""
    auth = request.app[AUTH_KEY]
    revoked_error = ApiError.forbidden("Access to this camera was revoked.")
    with request.app[STREAMS_KEY].watch(viewer.account_id, camera_id) as revoked:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(RECHECK_S):
                    await revoked.wait()
                return revoked_error
            try:
                _, account = await auth.live_session(viewer.token_hash)
            except ApiError as session_ended:
                return session_ended
            if await auth.accounts.camera_access(account, camera_id) is None:
                return revoked_error


def _same_origin(request: web.Request) -> bool:
    """Refuse cross-site WebSocket hijacking: a browser's Origin must be this host."""
    origin = request.headers.get("Origin")
    return origin is None or urlsplit(origin).netloc == request.host


@api_route(
    routes,
    "GET",
    "/api/v1/cameras/{camera_id}/snapshot",
    summary="JPEG of the camera's current image (PLAY-5)",
    responses={"200": "image/jpeg"},
)
async def snapshot(request: web.Request) -> web.Response:
    """Fetch one JPEG through the tunnel."""
    camera = await _camera(request)
    broker = request.app[BROKER_KEY]
    req = models.Request(kind="snapshot", camera=camera.local_id)
    try:
        response, body = await broker.fetch(camera.device_id, req)
    except BrokerError as err:
        raise ApiError(err.status, err.code, err.message) from err
    return web.Response(
        body=body,
        content_type=response.content_type or "image/jpeg",
        headers={"Cache-Control": "no-store"},
    )


@api_route(
    routes,
    "GET",
    "/api/v1/cameras/{camera_id}/live",
    summary="Live fMP4 over a WebSocket: JSON init message, init segment, fragments",
    responses={"101": "WebSocket upgrade"},
)
async def live(request: web.Request) -> web.StreamResponse:
    """Forward the camera's live fMP4 from the tunnel to the viewer's WebSocket."""
    viewer, access = await camera_access(request, Permission.LIVE)
    camera = access.camera
    if not _same_origin(request):
        raise ApiError.forbidden("cross-origin WebSocket refused")
    revoked = asyncio.ensure_future(_revoked_or_gone(request, viewer, camera.id))
    try:
        return await _live(request, camera, revoked)
    finally:
        revoked.cancel()


async def _live(
    request: web.Request, camera: CameraRow, revoked: asyncio.Future[ApiError]
) -> web.StreamResponse:
    """The WebSocket part of :func:`live`, ended early when ``revoked`` completes."""
    ws = web.WebSocketResponse(heartbeat=20.0)
    await ws.prepare(request)
    hub = request.app[LIVE_HUB_KEY]
    limit = request.app[SETTINGS_KEY].ws_coalesce_bytes
    broker = request.app[BROKER_KEY]
    async with hub.watch(broker, camera.device_id, camera.local_id) as viewer:
        forward = asyncio.ensure_future(_forward(viewer, ws, limit))
        try:
            await _until_closed(ws, forward, revoked)
        finally:
            forward.cancel()
    if revoked.done() and not revoked.cancelled() and revoked.exception() is None:
        reason = revoked.result()
        await _send_error(ws, reason.code, reason.message)
    return ws


async def _forward(viewer: LiveViewer, ws: web.WebSocketResponse, limit: int) -> None:
    """Copy the viewer's messages from the live hub to its socket until the stream ends."""
    try:
        while True:
            message = await viewer.next_message(limit)
            if isinstance(message, str):
                await ws.send_str(message)
            else:
                await ws.send_bytes(message)
    except LiveEnded as ended:
        await _send_error(ws, ended.code, ended.message)


async def _until_closed(
    ws: web.WebSocketResponse, forward: asyncio.Future[None], revoked: asyncio.Future[ApiError]
) -> None:
    """Wait for the viewer to close (we ignore what it sends), the forwarder to finish, or
    the viewer's access to be revoked."""
    reader = asyncio.ensure_future(_drain_ws(ws))
    waited: set[asyncio.Future[Any]] = {reader, forward, revoked}
    try:
        await asyncio.wait(waited, return_when=asyncio.FIRST_COMPLETED)
    finally:
        reader.cancel()


async def _drain_ws(ws: web.WebSocketResponse) -> None:
    """Consume client messages until the socket closes."""
    async for msg in ws:
        if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
            break


async def _send_error(ws: web.WebSocketResponse, code: int, message: str) -> None:
    """Tell the player why the stream stopped, then close."""
    with contextlib.suppress(ConnectionError, RuntimeError):
        await ws.send_json({"type": "error", "code": code, "message": message})
        await ws.close()


def setup_routes(app: web.Application) -> None:
    """Register the media routes."""
    app.add_routes(routes)
