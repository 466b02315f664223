"""OpenAPI 3.1 from the router itself: every registered route, with what handlers declare.

Handlers are registered through :func:`api_route`, which records a summary, the request and
response models and the auth requirement next to the handler. The document is built from
``app.router`` at request time, so a route cannot exist without appearing in it; routes
registered without metadata (static files, aiohttp's automatic HEAD) still appear, described
from what the router knows.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel

from relay.web.schemas import ErrorOut

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Handler)

API_TITLE = "rmon relay API"
API_VERSION = "1"
_MEDIA_TYPE = re.compile(r"^[\w.+-]+/[\w.+-]+$")
_PATH_PARAM = re.compile(r"{(\w+)")


@dataclass(frozen=True)
class RouteDoc:
    """What a handler declares about itself."""

    summary: str
    request: type[BaseModel] | None
    response: type[BaseModel] | None
    responses: Mapping[str, str]
    auth: bool
    status: int


_DOCS: dict[object, RouteDoc] = {}


def api_route(
    routes: web.RouteTableDef,
    method: str,
    path: str,
    *,
    summary: str,
    request: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    responses: Mapping[str, str] | None = None,
    auth: bool = True,
    status: int = 200,
) -> Callable[[H], H]:
    """Register ``handler`` on ``routes`` and describe it for the OpenAPI document.

    ``responses`` maps a status to a description, or to a media type (``"image/jpeg"``) for a
    binary body. ``auth`` says the route needs a viewer session (cookie or bearer).
    """

    def decorate(handler: H) -> H:
        _DOCS[handler] = RouteDoc(summary, request, response, dict(responses or {}), auth, status)
        routes.route(method, path)(handler)
        return handler

    return decorate


def route_path(route: web.AbstractRoute) -> str:
    """The OpenAPI path of a route (static resources as ``/prefix/{filename}``)."""
    info = route.resource.get_info() if route.resource is not None else {}
    if "path" in info:
        return str(info["path"])
    if "formatter" in info:
        return str(info["formatter"])
    if "prefix" in info:
        return str(info["prefix"]).rstrip("/") + "/{filename}"
    return str(route.resource.canonical) if route.resource is not None else "/"


def build_openapi(app: web.Application) -> dict[str, Any]:
    """The whole document for ``app``'s router."""
    components: dict[str, Any] = {}
    paths: dict[str, dict[str, Any]] = {}
    for route in app.router.routes():
        path = route_path(route)
        methods = ["get", "head"] if route.method == "*" else [route.method.lower()]
        for method in methods:
            paths.setdefault(path, {})[method] = _operation(route, path, method, components)
    _schema(ErrorOut, components)
    return {
        "openapi": "3.1.0",
        "info": {"title": API_TITLE, "version": API_VERSION},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer"},
                "cookieAuth": {"type": "apiKey", "in": "cookie", "name": "__Host-rmon_session"},
            },
        },
    }


def _operation(
    route: web.AbstractRoute, path: str, method: str, components: dict[str, Any]
) -> dict[str, Any]:
    """One operation object."""
    doc = _DOCS.get(route.handler) or _undocumented(route, method)
    op: dict[str, Any] = {
        "summary": doc.summary if method != "head" else f"Headers only: {doc.summary}",
        "operationId": f"{method}_{_op_name(path)}",
        "tags": [_tag(path)],
        "responses": _responses(doc, components),
    }
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PATH_PARAM.findall(path)
    ]
    if params:
        op["parameters"] = params
    if doc.request is not None:
        schema = _schema(doc.request, components)
        # read_json takes a missing body as {}: it is optional when every field has a default.
        required = any(field.is_required() for field in doc.request.model_fields.values())
        content = {"application/json": {"schema": schema}}
        op["requestBody"] = {"required": required, "content": content}
    op["security"] = [{"bearerAuth": []}, {"cookieAuth": []}] if doc.auth else []
    return op


def _undocumented(route: web.AbstractRoute, method: str) -> RouteDoc:
    """A route registered without api_route: describe it from the router."""
    if isinstance(route.resource, web.StaticResource):
        summary = "Static portal file"
        responses = {"200": "the file"}
    else:
        text = inspect.getdoc(route.handler) or f"{method.upper()} handler"
        summary, responses = text.splitlines()[0], {"200": "OK"}
    return RouteDoc(summary, None, None, responses, False, 200)


def _responses(doc: RouteDoc, components: dict[str, Any]) -> dict[str, Any]:
    """Success responses as declared, plus the common error body."""
    out: dict[str, Any] = {}
    if doc.response is not None:
        schema = _schema(doc.response, components)
        out[str(doc.status)] = {
            "description": doc.response.__doc__.splitlines()[0] if doc.response.__doc__ else "OK",
            "content": {"application/json": {"schema": schema}},
        }
    for status, text in doc.responses.items():
        if _MEDIA_TYPE.match(text):
            content = {text: {"schema": {"type": "string", "contentMediaType": text}}}
            out[status] = {"description": text, "content": content}
        else:
            out[status] = {"description": text}
    if not out:
        out[str(doc.status)] = {"description": "OK"}
    error = {"content": {"application/json": {"schema": _ref("ErrorOut")}}}
    out["4XX"] = {"description": "Refused: see the error code", **error}
    out["5XX"] = {"description": "Server or site failure", **error}
    return out


def _schema(model: type[BaseModel], components: dict[str, Any]) -> dict[str, str]:
    """Add ``model`` (and what it refers to) to the components; return a $ref to it."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema
    return _ref(model.__name__)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _tag(path: str) -> str:
    """Group by the first segment after /api/v1/ (or "portal")."""
    parts = path.strip("/").split("/")
    return parts[2] if parts[:2] == ["api", "v1"] and len(parts) > 2 else "portal"


def _op_name(path: str) -> str:
    """A unique operation name per (method, path): the path as an identifier."""
    return re.sub(r"\W+", "_", path).strip("_") or "root"


routes = web.RouteTableDef()


@api_route(
    routes,
    "GET",
    "/api/v1/openapi.json",
    summary="This OpenAPI 3.1 document, built from the router",
    responses={"200": "application/json"},
    auth=False,
)
async def openapi_json(request: web.Request) -> web.Response:
    """Serve the document."""
    return web.json_response(build_openapi(request.app))


def setup_routes(app: web.Application) -> None:
    """Register the document's route."""
    app.add_routes(routes)
