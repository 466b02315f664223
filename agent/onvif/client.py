"""Read a camera's identity and media profiles over ONVIF, and fetch HTTP snapshots.

The one place that talks to onvif-zeep-async and turns zeep objects into our dataclasses
(``agent.onvif.models``). Every third-party exception is wrapped into the tree of
``agent.onvif.errors`` here; passwords never reach a log line or an exception message.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import re
from collections.abc import Awaitable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import zeep.exceptions
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)
from yarl import URL

from agent.onvif._lib import ONVIFAuthError, ONVIFCamera, ONVIFError, ONVIFTimeoutError
from agent.onvif.errors import (
    OnvifAuthError,
    OnvifError,
    OnvifOutcomeUnknown,
    OnvifProtocolError,
    OnvifUnreachable,
    OnvifUnsupported,
    redact,
)
from agent.onvif.models import CameraDescription, MediaProfile

log = logging.getLogger(__name__)


class CameraBusy(OnvifUnreachable):
    """HTTP 503 from a snapshot URI: no image yet (ipycam before its first frame, a camera
    restarting its encoder)."""


#: read_camera retries these (each a camera quirk); anything else fails at once.
READ_CAMERA_RETRYABLE: tuple[type[BaseException], ...] = (
    # Small embedded HTTP servers drop idle keep-alive sockets between SOAP calls without
    # notice; onvif-zeep-async retries such a request once, a busy camera needs another go.
    aiohttp.ServerDisconnectedError,
    # The same drop, noticed while the request was being written.
    aiohttp.ClientConnectionResetError,
)

#: fetch_snapshot retries these (each a camera quirk); anything else fails at once.
SNAPSHOT_RETRYABLE: tuple[type[BaseException], ...] = (
    CameraBusy,  # 503 while the camera has no frame to encode yet
    aiohttp.ServerDisconnectedError,  # as for SOAP: stale keep-alive socket
    aiohttp.ClientConnectionResetError,
)

RETRY_ATTEMPTS = 3
MAX_SNAPSHOT_BYTES = 16 * 1024 * 1024
JPEG_MAGIC = b"\xff\xd8\xff"

#: Everything the libraries under us raise; wrapped at this boundary, never let through.
_THIRD_PARTY: tuple[type[BaseException], ...] = (
    zeep.exceptions.Error,
    ONVIFError,
    aiohttp.ClientError,
    OSError,  # includes TimeoutError and ConnectionError
    ValueError,  # lxml raises it for undeclared prefixes in replies (ipycam PTZ without FIX_NS)
    AttributeError,  # the library reads fields of an empty reply (a hostile or broken camera)
)

#: SOAP fault codes and reasons (letters only, lower case) that mean a credentials problem ...
_AUTH_MARKERS = ("notauthorized", "unauthorized", "authenticationfailed")
#: ... or an operation the device does not have. ipycam says "Action not supported" (HTTP 200).
_UNSUPPORTED_MARKERS = ("actionnotsupported", "notimplemented", "nosuchservice", "notsupported")


# --- read_camera -----------------------------------------------------------------------------


async def read_camera(
    xaddr: str, username: str, password: str, *, timeout: float = 10.0
) -> CameraDescription:
    """Identity, MAC and media profiles (with stream and snapshot URIs) of the camera at ``xaddr``.

    ``timeout`` bounds the whole read, retries included. Raises an OnvifError subclass.
    """
    where = f"ONVIF {redact(xaddr)}"
    try:
        async with asyncio.timeout(timeout):
            return await _retrying(READ_CAMERA_RETRYABLE, where)(
                _read_once, xaddr, username, password
            )
    except TimeoutError as err:
        raise OnvifUnreachable(f"{where}: no answer within {timeout:g} s") from err
    except _THIRD_PARTY as err:
        raise _wrap(err, where, password) from err


async def _read_once(xaddr: str, username: str, password: str) -> CameraDescription:
    """One attempt: a fresh ONVIF session, closed whatever happens."""
    cam = _XaddrCamera(xaddr, username, password)
    try:
        await cam.update_xaddrs()
        devicemgmt = await cam.create_devicemgmt_service()
        info = await devicemgmt.GetDeviceInformation()
        mac = await _read_mac(devicemgmt)
        media = await cam.create_media_service()
        profiles = await _read_profiles(media)
    finally:
        await cam.close()
    return _description(xaddr, info, mac, profiles)


class _XaddrCamera(ONVIFCamera):  # type: ignore[misc]  # the library is untyped
    """ONVIFCamera that calls the device service at the XAddr we were given.

    The library rebuilds ``http://host:port/onvif/device_service`` itself, which loses HTTPS
    and any other path a camera serves it on.
    """

    def __init__(self, xaddr: str, username: str, password: str) -> None:
        parts = urlsplit(xaddr)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise OnvifProtocolError(f"not an ONVIF XAddr: {redact(xaddr)}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        proxies = {k: os.environ[k] for k in ("http_proxy", "https_proxy") if k in os.environ}
        # Strings, never None: zeep's UsernameToken crashes on None. adjust_time: cameras
        # with a wrong clock reject WS-Security timestamps otherwise.
        super().__init__(parts.hostname, port, username, password, no_cache=True, adjust_time=True)
        os.environ.update(proxies)  # the constructor deletes them from the whole process
        self._device_xaddr = xaddr

    def get_definition(self, name: str, port_type: str | None = None) -> tuple[str, str, str]:
        """The library's definition, with our XAddr for the device service."""
        xaddr, wsdl, binding = super().get_definition(name, port_type)
        return (self._device_xaddr if name == "devicemgmt" else xaddr), wsdl, binding


async def _read_mac(devicemgmt: Any) -> str | None:
    """The first interface's MAC, or None where the camera will not tell (ipycam, user rights)."""
    call = devicemgmt.GetNetworkInterfaces()
    interfaces = await _optional(call, "GetNetworkInterfaces", denied_ok=True)
    for iface in interfaces or ():
        if hw := _field(iface, "Info", "HwAddress"):
            return str(hw).lower().replace("-", ":")
    return None


async def _read_profiles(media: Any) -> tuple[MediaProfile, ...]:
    """Video profiles in the camera's order (audio- or metadata-only profiles are left out)."""
    result = []
    for raw in await media.GetProfiles() or ():
        if _field(raw, "VideoEncoderConfiguration") is None:
            log.debug("skipping profile %s: no video encoder", _field(raw, "token"))
            continue
        result.append(await _profile(media, raw))
    return tuple(result)


async def _profile(media: Any, raw: Any) -> MediaProfile:
    """One zeep Profile as a MediaProfile, with its two URIs asked for."""
    token = str(_field(raw, "token") or "")
    vec = _field(raw, "VideoEncoderConfiguration")
    return MediaProfile(
        token=token,
        name=str(_field(raw, "Name") or ""),
        encoding=str(_field(vec, "Encoding") or "").upper(),
        width=int(_field(vec, "Resolution", "Width") or 0),
        height=int(_field(vec, "Resolution", "Height") or 0),
        fps=float(_field(vec, "RateControl", "FrameRateLimit") or 0),
        stream_uri=await _stream_uri(media, token),
        snapshot_uri=await _snapshot_uri(media, token),
    )


async def _stream_uri(media: Any, token: str) -> str:
    """RTSP URI of a profile (RTP over RTSP, unicast), or "" if the camera offers none."""
    setup = {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}}
    call = media.GetStreamUri({"StreamSetup": setup, "ProfileToken": token})
    reply = await _optional(call, f"GetStreamUri {token}")
    return str(_field(reply, "Uri") or "")


async def _snapshot_uri(media: Any, token: str) -> str:
    """HTTP snapshot URI of a profile, or "" if the camera offers none."""
    reply = await _optional(
        media.GetSnapshotUri({"ProfileToken": token}), f"GetSnapshotUri {token}"
    )
    return str(_field(reply, "Uri") or "")


async def _optional(call: Awaitable[Any], what: str, *, denied_ok: bool = False) -> Any:
    """The reply of an operation a camera may lack; None then (logged at debug).

    An authorization fault propagates unless ``denied_ok``: many cameras keep some reads
    (GetNetworkInterfaces) for administrators, which is no reason to reject a user account.
    """
    try:
        return await call
    except zeep.exceptions.Fault as err:
        if _fault_kind(err) is OnvifAuthError and not denied_ok:
            raise
        log.debug("%s not available: %s", what, err.message)
        return None


def _description(
    xaddr: str, info: Any, mac: str | None, profiles: tuple[MediaProfile, ...]
) -> CameraDescription:
    """GetDeviceInformation's reply and the rest as a CameraDescription."""
    return CameraDescription(
        xaddr=xaddr,
        manufacturer=str(_field(info, "Manufacturer") or ""),
        model=str(_field(info, "Model") or ""),
        firmware_version=str(_field(info, "FirmwareVersion") or ""),
        serial_number=str(_field(info, "SerialNumber") or ""),
        hardware_id=str(_field(info, "HardwareId") or ""),
        mac=mac,
        profiles=profiles,
    )


def _field(obj: Any, *path: str) -> Any:
    """``obj.a.b…`` of a zeep object, None where any step is missing (cameras omit a lot)."""
    for name in path:
        if obj is None:
            return None
        obj = getattr(obj, name, None)
    return obj


# --- system_reboot ---------------------------------------------------------------------------


async def system_reboot(xaddr: str, username: str, password: str, *, timeout: float = 10.0) -> str:
    """Ask the camera to reboot (ONVIF Device SystemReboot, DEV-2); returns its message.

    Never retried: a reboot is not idempotent, and a request that timed out may have been
    carried out — the caller reports that as an unknown outcome rather than asking twice.
    """
    where = f"ONVIF {redact(xaddr)} SystemReboot"
    sent: list[bool] = []
    try:
        async with asyncio.timeout(timeout):
            return await _reboot_once(xaddr, username, password, sent)
    except (TimeoutError, aiohttp.ClientConnectionError, ONVIFTimeoutError) as err:
        if sent:  # the request left: the camera may be rebooting right now
            raise OnvifOutcomeUnknown(f"{where}: no answer after the request was sent") from err
        if isinstance(err, TimeoutError):
            raise OnvifUnreachable(f"{where}: no answer within {timeout:g} s") from err
        raise _wrap(err, where, password) from err
    except _THIRD_PARTY as err:
        raise _wrap(err, where, password) from err


async def _reboot_once(xaddr: str, username: str, password: str, sent: list[bool]) -> str:
    """One SystemReboot on a fresh ONVIF session; ``sent`` gets an item once it goes out."""
    cam = _XaddrCamera(xaddr, username, password)
    try:
        await cam.update_xaddrs()
        devicemgmt = await cam.create_devicemgmt_service()
        sent.append(True)
        message = await devicemgmt.SystemReboot()
    finally:
        await cam.close()
    return str(message or "")


# --- fetch_snapshot --------------------------------------------------------------------------


async def fetch_snapshot(uri: str, username: str, password: str, *, timeout: float) -> bytes:
    """The JPEG at a camera's snapshot URI: no auth first, then what its 401 challenge asks.

    ``timeout`` bounds the whole fetch, retries included. Raises an OnvifError subclass.
    """
    where = f"snapshot {redact(uri)}"
    try:
        async with asyncio.timeout(timeout), aiohttp.ClientSession() as session:
            return await _retrying(SNAPSHOT_RETRYABLE, where)(
                _snapshot_once, session, uri, username, password
            )
    except TimeoutError as err:
        raise OnvifUnreachable(f"{where}: no answer within {timeout:g} s") from err
    except _THIRD_PARTY as err:
        raise _wrap(err, where, password) from err


async def _snapshot_once(
    session: aiohttp.ClientSession, uri: str, username: str, password: str
) -> bytes:
    """One GET, and one more with credentials if challenged (Digest preferred over Basic)."""
    status, challenges, body = await _get(session, uri)
    if status == 401 and (username or password):
        schemes = _auth_schemes(challenges)
        bare = str(URL(uri).with_user(None))  # aiohttp refuses URL credentials plus ours
        if "digest" in schemes:
            digest = aiohttp.DigestAuthMiddleware(username, password)
            status, _, body = await _get(session, bare, middlewares=(digest,))
        elif "basic" in schemes:  # ipycam: Basic only, even over plain HTTP
            headers = {"Authorization": _basic_auth(username, password)}
            status, _, body = await _get(session, bare, headers=headers)
    return _snapshot_body(status, body, redact(uri))


def _basic_auth(username: str, password: str) -> str:
    """RFC 7617 credentials (aiohttp.BasicAuth is deprecated, its successor is 3.14+ only)."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


async def _get(
    session: aiohttp.ClientSession, uri: str, **kwargs: Any
) -> tuple[int, list[str], bytes]:
    """Status, WWW-Authenticate challenges and (bounded) body of one GET."""
    async with session.get(uri, allow_redirects=True, **kwargs) as resp:
        body = await resp.content.read(MAX_SNAPSHOT_BYTES + 1)
        return resp.status, resp.headers.getall("WWW-Authenticate", []), body


def _auth_schemes(challenges: list[str]) -> set[str]:
    """Auth schemes offered by WWW-Authenticate headers, lower case."""
    found: set[str] = set()
    for value in challenges:
        found.update(m.lower() for m in re.findall(r"(?:^|,)\s*(Basic|Digest)\b", value, re.I))
    return found


def _snapshot_body(status: int, body: bytes, where: str) -> bytes:
    """The JPEG of a finished GET, or the error its status means."""
    if status in {401, 403}:
        raise OnvifAuthError(f"snapshot {where}: credentials refused (HTTP {status})")
    if status == 503:
        raise CameraBusy(f"snapshot {where}: camera busy (HTTP 503)")
    if not 200 <= status < 300:
        raise OnvifProtocolError(f"snapshot {where}: HTTP {status}")
    if len(body) > MAX_SNAPSHOT_BYTES:
        raise OnvifProtocolError(f"snapshot {where}: larger than {MAX_SNAPSHOT_BYTES} bytes")
    if not body.startswith(JPEG_MAGIC):
        raise OnvifProtocolError(f"snapshot {where}: not a JPEG")
    return body


# --- retries and error wrapping --------------------------------------------------------------


def _retrying(retryable: tuple[type[BaseException], ...], where: str) -> AsyncRetrying:
    """A tenacity runner for one operation: a few quick tries on its classified quirks only."""
    return AsyncRetrying(
        stop=stop_after_attempt(RETRY_ATTEMPTS),
        wait=wait_exponential(multiplier=0.2, max=1.0),
        retry=retry_if_exception_type(retryable),
        before_sleep=lambda state: _log_retry(state, where),
        reraise=True,
    )


def _log_retry(state: RetryCallState, where: str) -> None:
    """Why the last attempt failed: the exception type only (its text may carry a URL)."""
    err = state.outcome.exception() if state.outcome else None
    log.info("%s: retrying after %s (attempt %d)", where, type(err).__name__, state.attempt_number)


def _wrap(err: BaseException, where: str, password: str) -> OnvifError:
    """Our exception for a third-party one, with a message free of the password."""
    kind, detail = _classify(err)
    return kind(redact(f"{where}: {detail}", password))


def _classify(err: BaseException) -> tuple[type[OnvifError], str]:
    """Which OnvifError a library exception means, and a short description."""
    if isinstance(err, zeep.exceptions.Fault):
        return _fault_kind(err), f"SOAP fault: {err.message}"
    if isinstance(err, zeep.exceptions.TransportError):
        return _status_kind(err.status_code), f"HTTP {err.status_code}"
    if isinstance(err, ONVIFError):
        return _classify_onvif_error(err)
    if isinstance(err, aiohttp.ClientConnectionError | OSError):  # OSError: timeouts too
        return OnvifUnreachable, f"{type(err).__name__}: {err}".removesuffix(": ")
    return OnvifProtocolError, f"{type(err).__name__}: {err}"


def _classify_onvif_error(err: BaseException) -> tuple[type[OnvifError], str]:
    """onvif-zeep-async's own errors: auth, timeout, a wrapped cause, or a missing service."""
    if isinstance(err, ONVIFAuthError):
        return OnvifAuthError, "credentials refused"
    if isinstance(err, ONVIFTimeoutError):
        return OnvifUnreachable, "no answer in time"
    if err.__cause__ is not None:
        return _classify(err.__cause__)
    text = str(err)
    if "support" in text.lower():  # "Device doesn`t support service: …"
        return OnvifUnsupported, text
    return OnvifProtocolError, text


def _fault_kind(fault: Any) -> type[OnvifError]:
    """Auth, unsupported or protocol error, from a SOAP fault's codes and reason."""
    subcodes = [str(code) for code in (getattr(fault, "subcodes", None) or ())]
    words = " ".join([str(fault.message or ""), str(fault.code or ""), *subcodes])
    letters = re.sub("[^a-z]", "", words.lower())
    if any(marker in letters for marker in _AUTH_MARKERS):
        return OnvifAuthError
    if any(marker in letters for marker in _UNSUPPORTED_MARKERS):
        return OnvifUnsupported
    return OnvifProtocolError


def _status_kind(status: int | None) -> type[OnvifError]:
    """The error an HTTP status without a SOAP body means."""
    if status in {401, 403}:
        return OnvifAuthError
    if status in {502, 503, 504}:
        return OnvifUnreachable
    if status == 501:
        return OnvifUnsupported
    return OnvifProtocolError
