"""The static portal (``relay/portal/``) and the security headers on every response."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from relay.web.openapi import api_route

PORTAL_DIR = Path(__file__).resolve().parent.parent / "portal"

#: The portal plays MSE from blob: URLs and shows snapshots as blob:/data: images; nothing else
#: leaves the origin, and nobody may frame it (clickjacking).
CSP = "; ".join(
    [
        "default-src 'self'",
        "media-src 'self' blob:",
        "img-src 'self' blob: data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}

routes = web.RouteTableDef()


@api_route(
    routes,
    "GET",
    "/",
    summary="The portal's single page (relay/portal/index.html)",
    responses={"200": "text/html"},
    auth=False,
)
async def index(request: web.Request) -> web.StreamResponse:
    """Serve index.html, never cached (it names the current scripts)."""
    page = PORTAL_DIR / "index.html"
    if not page.is_file():
        raise web.HTTPNotFound(text="portal not installed")
    return web.FileResponse(page, headers={"Cache-Control": "no-cache"})


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: headers for every response, errors and WebSockets included."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.path.startswith("/api/"):
        response.headers.setdefault("Cache-Control", "no-store")


def setup_routes(app: web.Application) -> None:
    """``/`` and ``/portal/…`` (when the portal directory exists), plus the header hook."""
    app.add_routes(routes)
    if PORTAL_DIR.is_dir():
        app.router.add_static("/portal/", PORTAL_DIR, follow_symlinks=False, show_index=False)
    app.on_response_prepare.append(security_headers)
