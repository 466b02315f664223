"""Tunnel messages as pydantic models: the JSON payloads of control and request-header frames.

Unknown fields are ignored (``extra="ignore"``) so a newer peer may add fields without breaking an
older one; anything a version needs is gated by ``MIN_PROTOCOL_VERSION_FOR_*`` in
``shared.tunnel.frames``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Message(BaseModel):
    """Base of every tunnel message: tolerant of unknown fields, immutable once built."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class Hello(Message):
    """First frame of the control stream: who the agent claims to be."""

    device_id: str = Field(min_length=1, max_length=64)
    protocol_version: int = Field(ge=1)
    agent_version: str = Field(default="", max_length=64)


class Challenge(Message):
    """The relay's fresh nonce; the agent signs it bound to the relay certificate."""

    nonce: str = Field(min_length=32, max_length=128, description="hex")
    relay_id: str = Field(default="", max_length=64)


class Auth(Message):
    """The agent's Ed25519 signature over ``auth_message`` (hex)."""

    signature: str = Field(min_length=128, max_length=128)


class Welcome(Message):
    """Identity proven: the session is open."""

    heartbeat_interval_s: float = Field(gt=0, le=15)
    relay_id: str = ""


class Ping(Message):
    """Liveness probe; the peer answers with the same ``seq``."""

    seq: int = Field(ge=0)


class Pong(Message):
    """Answer to a Ping."""

    seq: int = Field(ge=0)


class GoAway(Message):
    """The relay is leaving; reconnect after ``retry_after_s`` (to any relay of the fleet)."""

    retry_after_s: float = Field(ge=0, default=1.0)
    reason: str = ""


class ErrorMessage(Message):
    """A fatal error with an API error code; the sender closes after it."""

    code: int
    message: str = ""


class ProfileInventory(Message):
    """One media profile of a camera as the agent reports it."""

    token: str
    name: str = ""
    encoding: str = ""
    width: int = 0
    height: int = 0
    fps: float = 0.0


class CameraInventory(Message):
    """One camera the agent serves; ``local_id`` is stable across agent restarts."""

    local_id: str = Field(min_length=1, max_length=128)
    name: str = Field(default="", max_length=64)
    manufacturer: str = ""
    model: str = ""
    firmware_version: str = ""
    serial_number: str = ""
    online: bool = True
    capabilities: list[str] = Field(default_factory=list)
    profiles: list[ProfileInventory] = Field(default_factory=list)


class Inventory(Message):
    """The agent's whole camera list; the relay treats it as the full truth at that moment."""

    cameras: list[CameraInventory] = Field(default_factory=list)


RequestKind = Literal["live", "snapshot"]


class Request(Message):
    """Header of a request stream, sent by the relay on behalf of a viewer."""

    kind: RequestKind
    camera: str = Field(min_length=1, max_length=128, description="camera local_id")
    args: dict[str, Any] = Field(default_factory=dict)


class Response(Message):
    """Header of the agent's answer; on ``status`` 200 the body follows as DATA frames."""

    status: int = 200
    code: int = 0
    message: str = ""
    content_type: str = ""
    meta: dict[str, Any] = Field(default_factory=dict)
