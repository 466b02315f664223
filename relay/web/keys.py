"""Typed application keys: what the web handlers find on ``request.app``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from relay.auth import Auth
from relay.settings import RelaySettings
from relay.store import Store
from relay.tunnel.live_hub import LiveHub
from relay.web.streams import StreamRegistry

if TYPE_CHECKING:
    from relay.tunnel.broker import Broker
    from relay.tunnel.commands import CommandPlane

SETTINGS_KEY: web.AppKey[RelaySettings] = web.AppKey("settings", RelaySettings)
STORE_KEY: web.AppKey[Store] = web.AppKey("store", Store)
AUTH_KEY: web.AppKey[Auth] = web.AppKey("auth", Auth)
#: Set by whoever runs the tunnel listener (relay/server.py), after ``create_app``.
BROKER_KEY: web.AppKey[Broker] = web.AppKey("broker")
#: Live fan-out, one tunnel stream per camera (relay/tunnel/live_hub.py).
LIVE_HUB_KEY: web.AppKey[LiveHub] = web.AppKey("live_hub", LiveHub)
#: The command plane (relay/tunnel/commands.py), set next to the broker.
COMMANDS_KEY: web.AppKey[CommandPlane] = web.AppKey("commands")
#: Open live streams per (account, camera), ended when access is revoked (relay/web/streams.py).
STREAMS_KEY: web.AppKey[StreamRegistry] = web.AppKey("streams", StreamRegistry)
