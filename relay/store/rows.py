"""Rows the store hands out: frozen dataclasses, never live ORM objects."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Role = Literal["subscriber", "shared"]


@dataclass(frozen=True)
class AccountRow:
    """A viewer account; ``owner_id`` is the subscriber a shared user belongs to."""

    id: str
    email: str
    name: str
    password_hash: str
    role: Role
    owner_id: str | None
    created_at: datetime
    session_epoch: int = 0  # sessions from an older epoch end with 50205
    must_change_password: bool = False  # USER-6: initial password not yet replaced
    group_no: int | None = None  # shared users: permission group 1..4
    allow_device_settings: bool = False  # shared users: camera settings on shared cameras
    privacy_guard: bool = False  # shared users: USER-6's privacy-guard flag


@dataclass(frozen=True)
class SessionRow:
    """A server-side session; only the token's sha256 is stored."""

    token_hash: str
    account_id: str
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime
    epoch: int = 0  # the account's session_epoch when the session was made


@dataclass(frozen=True)
class LoginLock:
    """The failure counter of one login key (lowercased e-mail)."""

    failures: int
    locked_until: datetime | None


@dataclass(frozen=True)
class GrantState:
    """An enrollment grant as stored (for telling "used" from "expired")."""

    account_id: str
    expires_at: datetime
    used_at: datetime | None


@dataclass(frozen=True)
class DeviceRow:
    """A site (agent + its recorder) bound to an account."""

    id: str
    account_id: str
    name: str
    public_key: str  # raw 32-byte Ed25519 public key as hex
    agent_version: str
    created_at: datetime
    last_seen_at: datetime | None
    online: bool
    connected_relay: str | None


@dataclass(frozen=True)
class CameraRow:
    """A camera served by a device's agent; ``local_id`` is the agent's stable id for it."""

    id: str
    device_id: str
    local_id: str
    name: str
    model: str
    manufacturer: str
    firmware_version: str
    serial_number: str
    capabilities: tuple[str, ...]
    online: bool
    status: str = "normal"  # normal / communication_error / authentication_error (the agent's)


@dataclass(frozen=True)
class DeviceWithCameras:
    """A device and its cameras, for listings."""

    device: DeviceRow
    cameras: tuple[CameraRow, ...]


HistoryEvent = Literal["connected", "disconnected"]


@dataclass(frozen=True)
class HistoryQuery:
    """Filters and page of a connection-history listing (DEV-7)."""

    device: str = ""
    since: datetime | None = None
    until: datetime | None = None
    event: HistoryEvent | None = None
    offset: int = 0
    limit: int = 50


@dataclass(frozen=True)
class HistoryRow:
    """One connect or disconnect of a device's tunnel, with why it happened."""

    id: int
    device_id: str
    device_name: str
    event: str
    at: datetime
    reason: str
    refused: bool
    address: str
    transport: str = ""  # "quic" / "tcp"; "" for rows written before migration 0009
