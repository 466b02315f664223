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


# --- camera control (PTZ, presets, imaging; issue 4 item 3) ----------------------------------


@dataclass(frozen=True)
class PtzPosition:
    """Where a PTZ camera points, in ONVIF generic spaces (pan/tilt -1..1, zoom 0..1)."""

    pan: float
    tilt: float
    zoom: float


@dataclass(frozen=True)
class Preset:
    """One preset as the camera lists it (ONVIF ReferenceToken and its name)."""

    token: str
    name: str


@dataclass(frozen=True)
class ImagingRange:
    """Bounds of a numeric imaging setting as the camera's GetOptions states them."""

    min: float
    max: float


@dataclass(frozen=True)
class ImagingState:
    """Current imaging values (flat CAM-3 field names) and what each may take.

    ``values`` holds floats for numeric fields and mode strings ("ON", "AUTO"…) for the rest;
    ``ranges`` bounds the numeric ones, ``modes`` lists the choices of the others. A field the
    camera does not offer is absent from all three.
    """

    values: dict[str, float | str]
    ranges: dict[str, ImagingRange]
    modes: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class ControlCapabilities:
    """What a camera can be told to do; an unsupported service is ``False``, never an error."""

    ptz: bool = False
    relative_move: bool = False
    home: bool = False
    max_presets: int = 0
    focus: bool = False
    imaging_fields: tuple[str, ...] = ()

    def names(self) -> list[str]:
        """As inventory capability strings: ``ptz``, ``presets``, ``imaging:brightness``…"""
        flags = {
            "ptz": self.ptz,
            "relative_move": self.relative_move,
            "home": self.home,
            "presets": self.max_presets > 0,
            "focus": self.focus,
        }
        return [k for k, v in flags.items() if v] + [f"imaging:{f}" for f in self.imaging_fields]


@dataclass(frozen=True)
class NetworkInfo:
    """A camera's network facts (DEV-1): what it reports, else what its XAddr shows."""

    address: str
    mac: str | None
    dhcp: bool | None = None
    prefix_length: int | None = None
