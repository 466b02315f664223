"""Camera control over ONVIF: PTZ, presets, focus and imaging settings (LIVE-4, LIVE-5, CAM-3).

A :class:`ControlSession` keeps one ONVIF session per camera open between calls: a viewer holding
a direction button sends ContinuousMove then Stop, and rebuilding the session (GetServices, WSDL
binding, GetProfiles: ~150 ms against ipycam) before each would make the camera overshoot. The
session is dropped after a transport failure and rebuilt by the next call.

Like ``agent.onvif.client`` this is the ONVIF boundary: zeep objects become the dataclasses of
``agent.onvif.models`` here, and every library exception is wrapped into ``agent.onvif.errors``.
A service the camera lacks is a capability set to false; calling it raises ``OnvifUnsupported``.

"Forced PTZ" (LIVE-5, manual 5.3.12: "if you are using an old PTZ camera") is the exception: the
PTZ calls take ``forced=True`` and are sent even though the camera did not list a PTZ service or
give its profile a PTZ configuration, as old firmwares do. They go to the PTZ XAddr if one was
listed, else to the device service URL (early ONVIF cameras serve every service there), with
the control profile's token. A camera that really has no PTZ refuses, and that refusal is the
answer ("it does not work for non-PTZ cameras").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from agent.onvif.client import (
    _THIRD_PARTY,
    READ_CAMERA_RETRYABLE,
    _field,
    _optional,
    _retrying,
    _wrap,
    _XaddrCamera,
)
from agent.onvif.errors import OnvifError, OnvifUnreachable, OnvifUnsupported, redact
from agent.onvif.models import (
    ControlCapabilities,
    ImagingRange,
    ImagingState,
    NetworkInfo,
    Preset,
    PtzPosition,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

PTZ_NS = "http://www.onvif.org/ver20/ptz/wsdl"
IMAGING_NS = "http://www.onvif.org/ver20/imaging/wsdl"
#: Focus speed for "far"/"near" (ONVIF continuous focus speed, -1..1): slow enough to stop on.
FOCUS_SPEED = 0.5
FocusMode = Literal["far", "near", "auto", "stop"]

#: Numeric CAM-3 fields: our name → path in ImagingSettings20 (and in ImagingOptions20).
NUMERIC_FIELDS: dict[str, tuple[str, ...]] = {
    "brightness": ("Brightness",),
    "contrast": ("Contrast",),
    "color_saturation": ("ColorSaturation",),
    "sharpness": ("Sharpness",),
    "gain": ("Exposure", "Gain"),
    "exposure_time": ("Exposure", "ExposureTime"),
    "backlight_level": ("BacklightCompensation", "Level"),
    "wdr_level": ("WideDynamicRange", "Level"),
}
#: Mode CAM-3 fields: our name → (path in ImagingSettings20, path of its choices in the options).
MODE_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "backlight_compensation": (
        ("BacklightCompensation", "Mode"),
        ("BacklightCompensation", "Mode"),
    ),
    "wide_dynamic_range": (("WideDynamicRange", "Mode"), ("WideDynamicRange", "Mode")),
    "exposure_mode": (("Exposure", "Mode"), ("Exposure", "Mode")),
    "ir_cut_filter": (("IrCutFilter",), ("IrCutFilterModes",)),
    "focus_mode": (("Focus", "AutoFocusMode"), ("Focus", "AutoFocusModes")),
}
#: Groups whose schema requires their Mode whenever any member is sent (ONVIF Imaging 2.x).
_GROUP_MODE = {
    "Exposure": "Mode",
    "BacklightCompensation": "Mode",
    "WideDynamicRange": "Mode",
    "Focus": "AutoFocusMode",
}


class ControlSession:
    """One camera's long-lived ONVIF session for control calls; safe to share between tasks."""

    def __init__(
        self,
        xaddr: str,
        username: str,
        password: str,
        *,
        profile_token: str = "",
        timeout: float = 10.0,
    ) -> None:
        self.xaddr = xaddr
        self._username = username
        self._password = password
        self._want_profile = profile_token
        self._timeout = timeout
        self._lock = asyncio.Lock()
        self._conn: _Connection | None = None

    async def close(self) -> None:
        """Close the ONVIF session (the next call opens a new one)."""
        async with self._lock:
            await self._drop()

    # --- capabilities

    async def capabilities(self) -> ControlCapabilities:
        """PTZ, presets, home, focus and imaging fields the camera offers."""
        return await self._call("capabilities", _capabilities)

    # --- PTZ

    async def continuous_move(
        self, pan: float, tilt: float, zoom: float, *, forced: bool = False
    ) -> None:
        """Move at the given speeds (-1..1) until ``stop`` (LIVE-5 press-and-hold)."""
        velocity = {"PanTilt": {"x": pan, "y": tilt}, "Zoom": {"x": zoom}}
        await self._ptz("ContinuousMove", forced=forced, Velocity=velocity)

    async def stop(self, *, forced: bool = False) -> None:
        """Stop pan, tilt and zoom, and a running focus move where the camera has one."""
        conn = await self._connected()
        ptz = conn.ptz is not None or forced
        if not ptz and not conn.focus:
            raise OnvifUnsupported(f"ONVIF {redact(self.xaddr)}: nothing to stop")
        if ptz:
            await self._ptz("Stop", forced=forced, PanTilt=True, Zoom=True)
        if conn.imaging is not None and conn.focus:
            await self._call("focus stop", lambda c: c.imaging.Stop(_vs(c)))

    async def relative_move(
        self, pan: float, tilt: float, zoom: float, *, forced: bool = False
    ) -> None:
        """Move by a translation in the generic space (pan/tilt -1..1, zoom -1..1)."""
        translation = {"PanTilt": {"x": pan, "y": tilt}, "Zoom": {"x": zoom}}
        await self._ptz("RelativeMove", forced=forced, Translation=translation)

    async def goto_home(self, *, forced: bool = False) -> None:
        """The camera's home position; OnvifUnsupported where it has none (unless forced)."""
        conn = await self._connected()
        if not conn.home and not forced:
            raise OnvifUnsupported(f"ONVIF {redact(self.xaddr)}: no home position")
        await self._ptz("GotoHomePosition", forced=forced)

    async def status(self) -> PtzPosition:
        """Current pan, tilt and zoom (GetStatus)."""
        reply = await self._ptz("GetStatus")
        pos = _field(reply, "Position")
        return PtzPosition(
            pan=float(_field(pos, "PanTilt", "x") or 0.0),
            tilt=float(_field(pos, "PanTilt", "y") or 0.0),
            zoom=float(_field(pos, "Zoom", "x") or 0.0),
        )

    async def presets(self) -> list[Preset]:
        """The camera's presets in its own order."""
        reply = await self._ptz("GetPresets")
        return [
            Preset(token=str(_field(p, "token") or ""), name=str(_field(p, "Name") or ""))
            for p in reply or ()
            if _field(p, "token")
        ]

    async def set_preset(self, name: str, token: str = "") -> str:
        """Store the current position as a preset (overwriting ``token``); its token back.

        Not retried: without a token a repeat would store a second preset.
        """
        args: dict[str, Any] = {"PresetName": name}
        if token:
            args["PresetToken"] = token
        reply = await self._ptz("SetPreset", retry=False, **args)
        return str(reply or token)

    async def goto_preset(self, token: str) -> None:
        """Move to a stored preset."""
        await self._ptz("GotoPreset", PresetToken=token)

    # --- focus and imaging

    async def focus(self, mode: FocusMode) -> None:
        """Continuous focus far/near until ``stop``, or switch autofocus on."""
        conn = await self._connected()
        if conn.imaging is None or (mode != "auto" and not conn.focus):
            raise OnvifUnsupported(f"ONVIF {redact(self.xaddr)}: no focus control")
        if mode == "stop":
            await self._call("focus stop", lambda c: c.imaging.Stop(_vs(c)))
        elif mode == "auto":
            await self.set_imaging({"focus_mode": "AUTO"})
        else:
            speed = FOCUS_SPEED if mode == "far" else -FOCUS_SPEED
            move = {**_vs(conn), "Focus": {"Continuous": {"Speed": speed}}}
            await self._call("focus move", lambda c: c.imaging.Move(move))

    async def imaging(self) -> ImagingState:
        """Current imaging values with their ranges and choices."""
        return await self._call("imaging", _imaging_state)

    async def set_imaging(self, values: dict[str, float | str]) -> ImagingState:
        """Change some imaging fields (the rest stay) and answer the new state."""

        async def apply(conn: _Connection) -> ImagingState:
            current = await conn.imaging.GetImagingSettings(_vs(conn))
            settings = _imaging_patch(current, values)
            await conn.imaging.SetImagingSettings(
                {**_vs(conn), "ImagingSettings": settings, "ForcePersistence": True}
            )
            return await _imaging_state(conn)

        conn = await self._connected()
        if conn.imaging is None:
            raise OnvifUnsupported(f"ONVIF {redact(self.xaddr)}: no imaging service")
        return await self._call("set imaging", apply, retry=False)

    async def network(self) -> NetworkInfo:
        """The camera's network facts (DEV-1); the XAddr's host where it tells nothing."""
        return await self._call("network", lambda c: _network(c, self.xaddr))

    # --- plumbing

    async def _ptz(
        self, operation: str, *, retry: bool = True, forced: bool = False, **args: Any
    ) -> Any:
        """One PTZ operation on the control profile; OnvifUnsupported without PTZ (unless
        ``forced``: then the camera's own refusal is the answer)."""
        conn = await self._connected()
        if conn.ptz is None and not forced:
            raise OnvifUnsupported(f"ONVIF {redact(self.xaddr)}: no PTZ service")
        if conn.ptz is None and conn.forced_ptz is None:
            await self._call("forced PTZ", lambda c: _open_forced_ptz(c, self.xaddr))
        request = {"ProfileToken": conn.profile_token, **args}
        return await self._call(
            operation, lambda c: getattr(c.ptz or c.forced_ptz, operation)(request), retry=retry
        )

    async def _connected(self) -> _Connection:
        """The open connection, opened now if there is none (errors wrapped)."""
        return await self._call("connect", _identity)

    async def _call(
        self, what: str, op: Callable[[_Connection], Awaitable[T]], *, retry: bool = True
    ) -> T:
        """Run ``op`` on the connection within the timeout, wrapping every library error.

        A transport failure drops the connection: the camera may have rebooted, and its next
        session must start from GetServices again.
        """
        where = f"ONVIF {redact(self.xaddr)} {what}"
        retryable = READ_CAMERA_RETRYABLE if retry else ()
        try:
            async with asyncio.timeout(self._timeout):
                return await _retrying(retryable, where)(self._once, op)
        except TimeoutError as err:
            await self._drop_after_failure()
            raise OnvifUnreachable(f"{where}: no answer within {self._timeout:g} s") from err
        except _THIRD_PARTY as err:
            wrapped = _wrap(err, where, self._password)
            if isinstance(wrapped, OnvifUnreachable):
                await self._drop_after_failure()
            raise wrapped from err
        except OnvifUnreachable:
            await self._drop_after_failure()
            raise

    async def _once(self, op: Callable[[_Connection], Awaitable[T]]) -> T:
        """One attempt of ``op``, opening the connection first if needed."""
        async with self._lock:
            if self._conn is None:
                self._conn = await _open(
                    self.xaddr, self._username, self._password, self._want_profile
                )
            conn = self._conn
        return await op(conn)

    async def _drop_after_failure(self) -> None:
        """Forget the connection after a transport failure."""
        async with self._lock:
            await self._drop()

    async def _drop(self) -> None:
        """Close and forget the connection (lock held by the caller)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.camera.close()
            except _THIRD_PARTY as err:  # closing a dead session: nothing left to save
                log.debug("closing ONVIF session of %s: %s", redact(self.xaddr), err)


class _Connection:
    """The open services of one session and what was learned while opening them."""

    def __init__(self, camera: Any) -> None:
        self.camera = camera
        self.profile_token = ""
        self.video_source = ""
        self.ptz: Any = None
        self.imaging: Any = None
        #: The PTZ service opened for forced PTZ on a camera that did not list one.
        self.forced_ptz: Any = None
        self.home = False
        self.relative = False
        self.max_presets = 0
        self.focus = False


async def _identity(conn: _Connection) -> _Connection:
    return conn


async def _open(xaddr: str, username: str, password: str, want_profile: str) -> _Connection:
    """Open the session: services, the control profile, PTZ node and imaging move options."""
    camera = _XaddrCamera(xaddr, username, password)
    conn = _Connection(camera)
    try:
        await camera.update_xaddrs()
        media = await camera.create_media_service()
        _pick_profile(conn, await media.GetProfiles() or (), want_profile)
        if PTZ_NS in camera.xaddrs and conn.profile_token:
            conn.ptz = await camera.create_ptz_service()
            await _read_ptz_node(conn)
        if IMAGING_NS in camera.xaddrs and conn.video_source:
            conn.imaging = await camera.create_imaging_service()
            await _read_focus_options(conn)
    except BaseException:
        await camera.close()
        raise
    return conn


async def _open_forced_ptz(conn: _Connection, device_xaddr: str) -> None:
    """A PTZ service for a camera that did not list one: at the device service URL."""
    conn.camera.xaddrs.setdefault(PTZ_NS, device_xaddr)
    conn.forced_ptz = await conn.camera.create_ptz_service()


def _pick_profile(conn: _Connection, profiles: Any, want: str) -> None:
    """The wanted profile if it exists, else the first with PTZ, else the first at all."""
    candidates = [p for p in profiles if _field(p, "token")]
    ptz = [p for p in candidates if _field(p, "PTZConfiguration") is not None]
    wanted = [p for p in candidates if _field(p, "token") == want]
    chosen = next(iter(wanted or ptz or candidates), None)
    if chosen is not None:
        conn.profile_token = str(_field(chosen, "token"))
        conn.video_source = str(_field(chosen, "VideoSourceConfiguration", "SourceToken") or "")


async def _read_ptz_node(conn: _Connection) -> None:
    """Home, preset count and relative-move support from the camera's PTZ node."""
    nodes = await _optional(conn.ptz.GetNodes(), "PTZ GetNodes")
    node = next(iter(nodes or ()), None)
    if node is None:  # GetNodes missing: assume the ONVIF profile-S minimum
        conn.home, conn.max_presets = True, 1
        return
    conn.home = bool(_field(node, "HomeSupported"))
    conn.max_presets = int(_field(node, "MaximumNumberOfPresets") or 0)
    spaces = _field(node, "SupportedPTZSpaces", "RelativePanTiltTranslationSpace")
    conn.relative = bool(spaces)


async def _read_focus_options(conn: _Connection) -> None:
    """Whether the imaging service offers continuous focus moves."""
    reply = await _optional(conn.imaging.GetMoveOptions(_vs(conn)), "Imaging GetMoveOptions")
    conn.focus = _field(reply, "Continuous") is not None


def _vs(conn: _Connection) -> dict[str, str]:
    return {"VideoSourceToken": conn.video_source}


async def _capabilities(conn: _Connection) -> ControlCapabilities:
    """What the open connection found, plus the imaging fields GetOptions offers."""
    fields: tuple[str, ...] = ()
    if conn.imaging is not None:
        options = await _optional(conn.imaging.GetOptions(_vs(conn)), "Imaging GetOptions")
        ranges, modes = _imaging_options(options)
        fields = (*ranges, *modes)
    return ControlCapabilities(
        ptz=conn.ptz is not None,
        relative_move=conn.relative,
        home=conn.ptz is not None and conn.home,
        max_presets=conn.max_presets if conn.ptz is not None else 0,
        focus=conn.focus,
        imaging_fields=fields,
    )


def _imaging_options(
    options: Any,
) -> tuple[dict[str, ImagingRange], dict[str, tuple[str, ...]]]:
    """Numeric ranges and mode choices from an ImagingOptions20 reply."""
    ranges: dict[str, ImagingRange] = {}
    for name, path in NUMERIC_FIELDS.items():
        low, high = _field(options, *path, "Min"), _field(options, *path, "Max")
        if low is not None and high is not None and float(high) > float(low):
            ranges[name] = ImagingRange(float(low), float(high))
    modes: dict[str, tuple[str, ...]] = {}
    for name, (_, opt_path) in MODE_FIELDS.items():
        choices = _field(options, *opt_path)
        if choices:
            modes[name] = tuple(str(c) for c in choices)
    return ranges, modes


async def _imaging_state(conn: _Connection) -> ImagingState:
    """GetImagingSettings and GetOptions as one ImagingState (fields with no value dropped)."""
    if conn.imaging is None:
        raise OnvifUnsupported("no imaging service")
    settings = await conn.imaging.GetImagingSettings(_vs(conn))
    ranges, modes = _imaging_options(await conn.imaging.GetOptions(_vs(conn)))
    values: dict[str, float | str] = {}
    for name in ranges:
        if (value := _field(settings, *NUMERIC_FIELDS[name])) is not None:
            values[name] = float(value)
    for name in modes:
        if (mode := _field(settings, *MODE_FIELDS[name][0])) is not None:
            values[name] = str(mode)
    return ImagingState(
        values=values,
        ranges={k: v for k, v in ranges.items() if k in values},
        modes={k: v for k, v in modes.items() if k in values},
    )


def _imaging_patch(current: Any, values: dict[str, float | str]) -> dict[str, Any]:
    """The ImagingSettings20 to send: the changed fields, with each group's required Mode."""
    patch: dict[str, Any] = {}
    for name, value in values.items():
        path = NUMERIC_FIELDS.get(name) or MODE_FIELDS[name][0]
        if len(path) == 1:
            patch[path[0]] = value
            continue
        group, leaf = path
        members = patch.setdefault(group, {})
        members[leaf] = value
        mode_key = _GROUP_MODE[group]
        members.setdefault(mode_key, _field(current, group, mode_key))
    return patch


async def _network(conn: _Connection, xaddr: str) -> NetworkInfo:
    """GetNetworkInterfaces' first interface, or what the XAddr says where it is refused."""
    devicemgmt = await conn.camera.create_devicemgmt_service()
    interfaces = await _optional(
        devicemgmt.GetNetworkInterfaces(), "GetNetworkInterfaces", denied_ok=True
    )
    address = urlsplit(xaddr).hostname or ""
    for iface in interfaces or ():
        ipv4 = _field(iface, "IPv4", "Config")
        manual = next(iter(_field(ipv4, "Manual") or ()), None)
        mac = _field(iface, "Info", "HwAddress")
        return NetworkInfo(
            address=str(_field(manual, "Address") or address),
            mac=str(mac).lower().replace("-", ":") if mac else None,
            dhcp=bool(_field(ipv4, "DHCP")) if ipv4 is not None else None,
            prefix_length=_int_or_none(_field(manual, "PrefixLength")),
        )
    return NetworkInfo(address=address, mac=None)


def _int_or_none(value: Any) -> int | None:
    return int(value) if value is not None else None


__all__ = ["ControlSession", "FocusMode", "OnvifError"]
