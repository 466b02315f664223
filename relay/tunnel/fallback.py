"""The relay's end of the TLS/TCP fallback tunnel: ``GET /api/v1/tunnel`` upgraded to a WebSocket.

Agents whose UDP is blocked come here on the HTTPS port (same certificate as QUIC, so the device
proof binds the same fingerprint). The connection then runs the very same ``AgentSession`` as a
QUIC one; this handler only pumps the socket until the session closes it.
"""

from __future__ import annotations

import logging

from aiohttp import web

from relay.errors import ApiError
from relay.tunnel.listener import TunnelListener
from relay.web.openapi import api_route
from shared import tcp

log = logging.getLogger(__name__)

LISTENER_KEY = web.AppKey("tunnel_listener", TunnelListener)
routes = web.RouteTableDef()


@api_route(
    routes,
    "GET",
    tcp.TUNNEL_PATH,
    summary="Agents only: the tunnel over TLS/TCP when UDP is blocked — a WebSocket (subprotocol "
    "rmon/1) carrying the QUIC tunnel's frames; the device proves its key inside (docs/tunnel.md)",
    responses={"101": "WebSocket upgrade"},
    auth=False,
)
async def tunnel(request: web.Request) -> web.StreamResponse:
    """Upgrade, hand the connection to the listener, read it until it ends."""
    listener = request.app[LISTENER_KEY]
    if not listener.settings.tunnel_tcp_fallback:
        raise ApiError.not_found("tunnel fallback")
    ws, conn = await tcp.accept(request)
    listener.accept(conn)
    try:
        await conn.run()
    finally:
        await conn.finish()
    return ws


def setup_routes(app: web.Application, listener: TunnelListener) -> None:
    """Register the fallback endpoint (agents only: the device proof happens inside)."""
    app[LISTENER_KEY] = listener
    app.router.add_routes(routes)
