"""The relay's aiohttp application: middlewares, routes and typed keys.

``create_app`` wires everything a viewer reaches over HTTPS. The store's lifetime belongs to
the caller (``relay/server.py`` opens and closes it); the broker (``BROKER_KEY``) is set by
the caller too, once the tunnel listener exists.
"""

from __future__ import annotations

from aiohttp import web

from relay.auth import Auth
from relay.errors import error_middleware
from relay.settings import RelaySettings
from relay.store import Store
from relay.tunnel.live_hub import HubSettings, LiveHub
from relay.web import (
    about,
    accounts,
    announcements,
    app_devices,
    auth,
    cameras,
    commands,
    devices,
    enroll,
    favorites,
    folders,
    history,
    media,
    openapi,
    portal,
    users,
)
from relay.web.keys import AUTH_KEY, LIVE_HUB_KEY, SETTINGS_KEY, STORE_KEY, STREAMS_KEY
from relay.web.streams import StreamRegistry

#: Largest request body (bytes): JSON bodies here are small.
CLIENT_MAX_SIZE = 1024 * 1024


def create_app(settings: RelaySettings, store: Store) -> web.Application:
    """The web application for ``settings`` over ``store``."""
    app = web.Application(middlewares=[error_middleware], client_max_size=CLIENT_MAX_SIZE)
    app[SETTINGS_KEY] = settings
    app[STORE_KEY] = store
    app[AUTH_KEY] = Auth(settings, store)
    app[STREAMS_KEY] = StreamRegistry()
    app[LIVE_HUB_KEY] = hub = LiveHub(HubSettings.of(settings))
    app.on_shutdown.append(lambda _: hub.close())
    areas = (auth, accounts, cameras, commands, devices, enroll, history, media, openapi, portal)
    for area in (*areas, users, folders, favorites, about, announcements, app_devices):
        area.setup_routes(app)
    return app
