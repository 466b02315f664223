"""What the agent knows about a camera, as plain frozen dataclasses (no zeep objects past here)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DiscoveredDevice:
    """One device that answered a WS-Discovery Probe (deduplicated by endpoint reference)."""

    endpoint: str
    xaddrs: tuple[str, ...]
    scopes: tuple[str, ...]
    name: str | None
    hardware: str | None
    types: tuple[str, ...] = ()


@dataclass(frozen=True)
class MediaProfile:
    """One ONVIF media profile: an encoder setting with its stream and snapshot URIs.

    ``stream_uri`` and ``snapshot_uri`` are ``""`` when the camera offers none for the profile.
    """

    token: str
    name: str
    encoding: str
    width: int
    height: int
    fps: float
    stream_uri: str
    snapshot_uri: str


@dataclass(frozen=True)
class CameraDescription:
    """Identity and media profiles of one camera, read over ONVIF."""

    xaddr: str
    manufacturer: str
    model: str
    firmware_version: str
    serial_number: str
    hardware_id: str
    mac: str | None
    profiles: tuple[MediaProfile, ...]
