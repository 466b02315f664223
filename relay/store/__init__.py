"""The relay's durable state: schema, migrations and the :class:`Store` of typed queries."""

from relay.store.queries import Clock, utc_now
from relay.store.rows import (
    AccountRow,
    CameraRow,
    DeviceRow,
    DeviceWithCameras,
    GrantState,
    HistoryQuery,
    HistoryRow,
    LoginLock,
    Role,
    SessionRow,
)
from relay.store.store import Store, default_camera_name, open_store

__all__ = [
    "AccountRow",
    "CameraRow",
    "Clock",
    "DeviceRow",
    "DeviceWithCameras",
    "GrantState",
    "HistoryQuery",
    "HistoryRow",
    "LoginLock",
    "Role",
    "SessionRow",
    "Store",
    "default_camera_name",
    "open_store",
    "utc_now",
]
