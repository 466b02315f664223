"""Tunnel messages as pydantic models: the JSON payloads of control and request-header frames.

Unknown fields are ignored (``extra="ignore"``) so a newer peer may add fields without breaking an
older one; anything a version needs is gated by ``MIN_PROTOCOL_VERSION_FOR_*`` in
``shared.tunnel.frames``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# Bounds on everything a peer can send: a hostile or broken peer must not make the other end
# build huge objects. Frames already cap the bytes; these cap counts and lengths inside them.
#: Cameras in one inventory (the manual's largest recorders serve 64 channels; twice that).
MAX_CAMERAS = 128
#: Media profiles per camera (ONVIF cameras report 2-6).
MAX_PROFILES = 16
#: Capability names per camera, and the length of each.
MAX_CAPABILITIES = 32
CAPABILITY_LEN = 32
#: Vendor strings (manufacturer, model, firmware, serial) — the relay stores 128 characters.
FACT_LEN = 128
#: Free-text messages in ERROR frames and response headers.
MESSAGE_LEN = 1024
#: Keys in the free-form ``args``/``meta`` objects of request and response headers.
MAX_ARGS = 32


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
    relay_id: str = Field(default="", max_length=64)


class Ping(Message):
    """Liveness probe; the peer answers with the same ``seq``."""

    seq: int = Field(ge=0)


class Pong(Message):
    """Answer to a Ping."""

    seq: int = Field(ge=0)


class GoAway(Message):
    """The relay is leaving; reconnect after ``retry_after_s`` (to any relay of the fleet)."""

    retry_after_s: float = Field(ge=0, le=3600, default=1.0)
    reason: str = Field(default="", max_length=256)


class ErrorMessage(Message):
    """A fatal error with an API error code; the sender closes after it."""

    code: int = Field(ge=0, le=2**31 - 1)
    message: str = Field(default="", max_length=MESSAGE_LEN)


class ProfileInventory(Message):
    """One media profile of a camera as the agent reports it."""

    token: str = Field(max_length=64)  # ONVIF ReferenceToken: at most 64 characters
    name: str = Field(default="", max_length=64)
    encoding: str = Field(default="", max_length=16)
    width: int = Field(default=0, ge=0, le=65535)
    height: int = Field(default=0, ge=0, le=65535)
    fps: float = Field(default=0.0, ge=0, le=1000)


CameraStatus = Literal["normal", "communication_error", "authentication_error"]


class CameraInventory(Message):
    """One camera the agent serves; ``local_id`` is stable across agent restarts."""

    local_id: str = Field(min_length=1, max_length=128)
    name: str = Field(default="", max_length=64)
    manufacturer: str = Field(default="", max_length=FACT_LEN)
    model: str = Field(default="", max_length=FACT_LEN)
    firmware_version: str = Field(default="", max_length=FACT_LEN)
    serial_number: str = Field(default="", max_length=FACT_LEN)
    online: bool = True
    #: DEV-1/EVT-1 health as the agent sees it; ``online`` is False unless "normal".
    status: CameraStatus = "normal"
    capabilities: list[Annotated[str, Field(max_length=CAPABILITY_LEN)]] = Field(
        default_factory=list, max_length=MAX_CAPABILITIES
    )
    profiles: list[ProfileInventory] = Field(default_factory=list, max_length=MAX_PROFILES)


class Inventory(Message):
    """The agent's whole camera list; the relay treats it as the full truth at that moment."""

    cameras: list[CameraInventory] = Field(default_factory=list, max_length=MAX_CAMERAS)


RequestKind = Literal["live", "snapshot", "ptz", "presets", "imaging", "camera_info", "site_info"]
#: ``Request.camera`` of a request about the site's agent itself (``site_info``).
SITE_TARGET = "-"


class Request(Message):
    """Header of a request stream, sent by the relay on behalf of a viewer."""

    kind: RequestKind
    camera: str = Field(min_length=1, max_length=128, description="camera local_id")
    args: dict[str, Any] = Field(default_factory=dict, max_length=MAX_ARGS)


class Response(Message):
    """Header of the agent's answer; on ``status`` 200 the body follows as DATA frames."""

    status: int = Field(default=200, ge=100, le=599)
    code: int = Field(default=0, ge=0, le=2**31 - 1)
    message: str = Field(default="", max_length=MESSAGE_LEN)
    content_type: str = Field(default="", max_length=128)
    meta: dict[str, Any] = Field(default_factory=dict, max_length=MAX_ARGS)


# --- command plane and event spool (control stream, protocol version 2) ----------------------

#: Most items in one batched control message; senders split longer lists. With the per-item
#: bounds below every batch stays far under ``MAX_CONTROL_PAYLOAD``.
MAX_BATCH = 256
#: Longest error text in a command result.
MAX_ERROR_TEXT = 1024
#: Terminal states of a command, as both ends name them.
CommandOutcome = Literal["done", "failed", "expired", "unknown_outcome"]
#: Latest Unix time accepted in a plane message (year 5138): a wild value must fail validation
#: here, not later as an overflow in the relay's datetime conversion (a poison event).
MAX_UNIX_TIME = 1e11
#: Highest event sequence number (the relay stores it as a signed 64-bit integer).
MAX_SEQ = 2**63 - 1


class Command(Message):
    """One command for the agent (``target`` "") or one of its cameras (its ``local_id``).

    ``kind`` is free text on the wire, not a closed set: an older agent answers an unknown kind
    with a failed result instead of refusing the whole frame. ``deadline`` is Unix time (s).
    """

    id: str = Field(min_length=1, max_length=64)
    kind: str = Field(min_length=1, max_length=32)
    target: str = Field(default="", max_length=128)
    args: dict[str, Any] = Field(default_factory=dict, max_length=MAX_ARGS)
    deadline: float = Field(ge=0, le=MAX_UNIX_TIME)


class Commands(Message):
    """Relay → agent: commands to run (new ones, or re-sent after a reconnect)."""

    commands: list[Command] = Field(max_length=MAX_BATCH)


class CommandAck(Message):
    """The agent journalled ``id`` (``acknowledged``) or already runs it (``in_progress``)."""

    id: str = Field(min_length=1, max_length=64)
    state: Literal["acknowledged", "in_progress"] = "acknowledged"


class CommandAcks(Message):
    """Agent → relay: which commands are journalled."""

    acks: list[CommandAck] = Field(max_length=MAX_BATCH)


class CommandResult(Message):
    """How a command ended on the agent; ``finished_at`` is the agent's Unix time (s)."""

    id: str = Field(min_length=1, max_length=64)
    outcome: CommandOutcome
    result: dict[str, Any] = Field(default_factory=dict, max_length=MAX_ARGS)
    error: str = Field(default="", max_length=MAX_ERROR_TEXT)
    finished_at: float = Field(ge=0, le=MAX_UNIX_TIME, default=0.0)


class CommandResults(Message):
    """Agent → relay: results, re-sent until the relay acknowledges them."""

    results: list[CommandResult] = Field(max_length=MAX_BATCH)


class ResultsAck(Message):
    """Relay → agent: these results are durably stored; stop re-sending them."""

    ids: list[Annotated[str, Field(max_length=64)]] = Field(max_length=MAX_BATCH)


class Event(Message):
    """One spooled event; ``seq`` rises by at least one per event of an agent, never reused."""

    seq: int = Field(ge=1, le=MAX_SEQ)
    kind: str = Field(min_length=1, max_length=64)
    camera: str = Field(default="", max_length=128)
    at: float = Field(ge=0, le=MAX_UNIX_TIME, description="agent's Unix time (s)")
    payload: dict[str, Any] = Field(default_factory=dict, max_length=MAX_ARGS)


class Events(Message):
    """Agent → relay: a batch of spooled events in ``seq`` order."""

    events: list[Event] = Field(min_length=1, max_length=MAX_BATCH)


class EventsAck(Message):
    """Relay → agent: every event up to ``up_to`` is durably stored (cumulative)."""

    up_to: int = Field(ge=0, le=MAX_SEQ)


# --- camera control requests (issue 4: PTZ, presets, imaging, device information) ------------
# Small request/response streams: the typed ``args`` of the Request header below, a JSON body
# back. The relay validates viewer input against these before anything enters the tunnel; the
# agent validates again, since a relay of another version may send what this one does not know.

#: Most presets a camera exposes through rmon (LIVE-5: "up to 10 presets").
MAX_PRESETS = 10
PRESET_NAME_LEN = 32
Unit = Annotated[float, Field(ge=-1.0, le=1.0)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


class PtzArgs(Message):
    """``ptz`` request: continuous move (speeds), stop, home, focus, zoom to a rectangle, centre.

    ``x, y, w, h`` of ``area_zoom`` are fractions of the image from its top-left corner;
    ``centre`` brings the point ``x, y`` to the middle (LIVE-5 click to centre). ``forced``
    sends PTZ to a camera that did not report PTZ (LIVE-5 "forced PTZ" for old cameras); older
    agents ignore it (extra fields are ignored).
    """

    action: Literal["move", "stop", "home", "focus", "area_zoom", "centre"]
    pan: Unit = 0.0
    tilt: Unit = 0.0
    zoom: Unit = 0.0
    mode: Literal["far", "near", "auto", "stop"] = "stop"
    x: Fraction = 0.0
    y: Fraction = 0.0
    w: Fraction = 1.0
    h: Fraction = 1.0
    forced: bool = False


class PresetArgs(Message):
    """``presets`` request: list them, register the current position, rename, or go to one."""

    op: Literal["list", "set", "rename", "goto"] = "list"
    slot: int = Field(default=0, ge=0, le=MAX_PRESETS)
    name: str = Field(default="", max_length=PRESET_NAME_LEN)


ImagingValue = float | Annotated[str, Field(max_length=16)]
#: CAM-3 imaging fields by name: numbers within the camera's range …
IMAGING_NUMERIC = (
    "brightness",
    "contrast",
    "color_saturation",
    "sharpness",
    "gain",
    "exposure_time",
    "backlight_level",
    "wdr_level",
)
#: … and modes chosen from the camera's list ("ON"/"OFF", "AUTO"/"MANUAL", …).
IMAGING_MODES = (
    "backlight_compensation",
    "wide_dynamic_range",
    "exposure_mode",
    "ir_cut_filter",
    "focus_mode",
)


class ImagingArgs(Message):
    """``imaging`` request: read the settings, or change some of them (CAM-3 field names)."""

    op: Literal["get", "set"] = "get"
    values: dict[Annotated[str, Field(max_length=32)], ImagingValue] = Field(
        default_factory=dict, max_length=MAX_ARGS
    )
