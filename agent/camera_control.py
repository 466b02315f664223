"""Serve the relay's camera-control requests: ``ptz``, ``presets``, ``imaging``, ``camera_info``.

Each is a small request stream: a Request header with typed args (``shared.models.PtzArgs``…),
a Response header, one JSON body, FIN. Camera failures become the tunnel codes the relay maps
to API errors: unreachable 50115 (503), credentials refused (502), operation the camera lacks
(409), a camera fault (502).

Presets are numbered 1..10 for viewers (LIVE-5) while cameras name them by opaque tokens in an
order of their own. :class:`PresetSlots` keeps the slot → token map in the agent's data dir so a
number keeps meaning the same position across reloads and camera reboots. Slot 1 is the home
position. Renaming keeps the new name here rather than calling SetPreset again: ONVIF has no
rename, and SetPreset on an existing token also stores the *current* position, which would move
a preset the viewer only meant to rename.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import socket
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from agent.onvif.control import ControlSession
from agent.onvif.errors import (
    OnvifAuthError,
    OnvifError,
    OnvifUnreachable,
    OnvifUnsupported,
)
from agent.onvif.models import ControlCapabilities, Preset
from shared import models, quic
from shared.tunnel.codes import TunnelCode
from shared.tunnel.frames import FrameType

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

PRESETS_FILE = "ptz_presets.json"


class ControlledCamera(Protocol):
    """What this module needs of the agent's camera record."""

    local_id: str
    username: str
    password: str

    @property
    def xaddr(self) -> str:
        """ONVIF device service URL."""
        ...

    @property
    def profile_token(self) -> str:
        """The media profile the agent streams (PTZ commands name a profile)."""
        ...


class RequestFailed(Exception):
    """A request the agent answers with an error header (status, tunnel code, message)."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class PresetSlots:
    """Slot numbers (1..10) → camera preset tokens and viewer-given names, kept on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._data: dict[str, dict[str, Any]] = self._load()

    def _load(self) -> dict[str, dict[str, Any]]:
        """The map, or empty when missing or unreadable (it is rebuilt from the camera)."""
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _save(self) -> None:
        """Atomically replace the file."""
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._data, indent=1, sort_keys=True))
        os.replace(tmp, self.path)

    def _camera(self, camera: str) -> dict[str, Any]:
        entry = self._data.setdefault(camera, {})
        entry.setdefault("slots", {})
        entry.setdefault("hidden", [])
        return entry

    def reconcile(self, camera: str, presets: list[Preset]) -> list[dict[str, Any]]:
        """Slots for the camera's presets now: vanished tokens freed, new ones numbered.

        Presets the camera adds by itself (or another tool) take the lowest free slots in
        the camera's order; tokens a re-registration replaced stay hidden.
        """
        entry = self._camera(camera)
        slots: dict[str, dict[str, str]] = entry["slots"]
        by_token = {p.token: p for p in presets}
        for slot in [s for s, v in slots.items() if v["token"] not in by_token]:
            del slots[slot]
        mapped = {v["token"] for v in slots.values()}
        free = [str(n) for n in range(1, models.MAX_PRESETS + 1) if str(n) not in slots]
        for preset in presets:
            if preset.token not in mapped and preset.token not in entry["hidden"] and free:
                slots[free.pop(0)] = {"token": preset.token, "name": ""}
        self._save()
        return [
            {"slot": int(s), "token": v["token"], "name": v["name"] or by_token[v["token"]].name}
            for s, v in sorted(slots.items(), key=lambda kv: int(kv[0]))
        ]

    def token(self, camera: str, slot: int) -> str:
        """The token in a slot, or "" when it is free."""
        return str(self._camera(camera)["slots"].get(str(slot), {}).get("token", ""))

    def assign(self, camera: str, slot: int, token: str, name: str) -> None:
        """Put ``token`` in ``slot``; a different token it replaces is hidden from now on."""
        entry = self._camera(camera)
        old = self.token(camera, slot)
        if old and old != token:
            entry["hidden"].append(old)
        for other in [s for s, v in entry["slots"].items() if v["token"] == token]:
            del entry["slots"][other]
        entry["slots"][str(slot)] = {"token": token, "name": name}
        self._save()

    def rename(self, camera: str, slot: int, name: str) -> None:
        """Give a slot's preset a new name (the camera keeps its own)."""
        self._camera(camera)["slots"][str(slot)]["name"] = name
        self._save()


class CameraControl:
    """The control sessions of the agent's cameras and the handlers of their requests."""

    def __init__(self, data_dir: Path, timeout: float) -> None:
        self.timeout = timeout
        self.slots = PresetSlots(data_dir / PRESETS_FILE)
        self._sessions: dict[str, ControlSession] = {}

    def session(self, cam: ControlledCamera) -> ControlSession:
        """The camera's control session (created on first use)."""
        found = self._sessions.get(cam.local_id)
        if found is None:
            found = ControlSession(
                cam.xaddr,
                cam.username,
                cam.password,
                profile_token=cam.profile_token,
                timeout=self.timeout,
            )
            self._sessions[cam.local_id] = found
        return found

    async def close(self) -> None:
        """Close every control session."""
        for sess in self._sessions.values():
            await sess.close()
        self._sessions.clear()

    async def capabilities(self, cam: ControlledCamera) -> ControlCapabilities:
        """What the camera can be told to do; nothing when it cannot be asked right now."""
        try:
            return await self.session(cam).capabilities()
        except OnvifError as err:
            log.warning("camera %s: control capabilities unknown: %s", cam.local_id, err)
            return ControlCapabilities()

    # --- request streams

    async def serve(
        self, stream: quic.TunnelStream, request: models.Request, cam: ControlledCamera
    ) -> None:
        """Answer one control request with a JSON body, or an error header."""
        handlers: dict[str, Callable[[models.Request, ControlledCamera], Awaitable[Any]]] = {
            "ptz": self._ptz,
            "presets": self._presets,
            "imaging": self._imaging,
            "camera_info": self._camera_info,
        }
        try:
            body = await handlers[request.kind](request, cam)
        except RequestFailed as err:
            answer_error(stream, err.status, err.code, err.message)
            return
        except OnvifError as err:
            answer_error(stream, *_onvif_failure(err))
            return
        await send_json(stream, body)

    async def _ptz(self, request: models.Request, cam: ControlledCamera) -> dict[str, Any]:
        """Move, stop, home, focus or zoom to a rectangle."""
        args = _args(models.PtzArgs, request)
        sess = self.session(cam)
        forced = args.forced
        if args.action == "move":
            await sess.continuous_move(args.pan, args.tilt, args.zoom, forced=forced)
        elif args.action == "stop":
            await sess.stop(forced=forced)
        elif args.action == "home":
            await self._home(sess, cam, forced=forced)
        elif args.action == "focus":
            await sess.focus(args.mode)
        else:  # area_zoom, centre
            await sess.relative_move(*area_zoom_translation(args), forced=forced)
        return {"ok": True}

    async def _home(
        self, sess: ControlSession, cam: ControlledCamera, *, forced: bool = False
    ) -> None:
        """GotoHomePosition, or preset 1 on cameras without a home position (LIVE-5)."""
        try:
            await sess.goto_home(forced=forced)
        except OnvifUnsupported:
            if forced:  # the camera itself refused: it has no PTZ to force
                raise
            self.slots.reconcile(cam.local_id, await sess.presets())
            token = self.slots.token(cam.local_id, 1)
            if not token:
                raise
            await sess.goto_preset(token)

    async def _presets(self, request: models.Request, cam: ControlledCamera) -> dict[str, Any]:
        """List, register (SetPreset), rename or go to a numbered preset."""
        args = _args(models.PresetArgs, request)
        sess = self.session(cam)
        listed = self.slots.reconcile(cam.local_id, await sess.presets())
        if args.op != "list" and not 1 <= args.slot <= models.MAX_PRESETS:
            raise RequestFailed(400, TunnelCode.UNSUPPORTED_REQUEST, "preset number 1-10")
        token = self.slots.token(cam.local_id, args.slot)
        if args.op in {"rename", "goto"} and not token:
            raise RequestFailed(404, TunnelCode.NOT_FOUND, f"no preset {args.slot}")
        if args.op == "set":
            name = args.name or f"Preset {args.slot}"
            new_token = await sess.set_preset(name, token)
            self.slots.assign(cam.local_id, args.slot, new_token, name)
        elif args.op == "rename":
            self.slots.rename(cam.local_id, args.slot, args.name)
        elif args.op == "goto":
            await sess.goto_preset(token)
        if args.op in {"set", "rename"}:
            listed = self.slots.reconcile(cam.local_id, await sess.presets())
        return {"presets": listed, "max": models.MAX_PRESETS}

    async def _imaging(self, request: models.Request, cam: ControlledCamera) -> dict[str, Any]:
        """Read or change imaging settings."""
        args = _args(models.ImagingArgs, request)
        sess = self.session(cam)
        if args.op == "get":
            state = await sess.imaging()
        else:
            current = await sess.imaging()
            _check_imaging(args.values, current.values, current.modes)
            state = await sess.set_imaging(dict(args.values))
        return asdict(state)

    async def _camera_info(self, request: models.Request, cam: ControlledCamera) -> dict[str, Any]:
        """Network facts read now (status normal), or the reason the camera did not answer."""
        sess = self.session(cam)
        try:
            net = await sess.network()
        except OnvifAuthError as err:
            return {"status": "authentication_error", "error": str(err)}
        except OnvifError as err:
            return {"status": "communication_error", "error": str(err)}
        caps = await self.capabilities(cam)
        return {"status": "normal", "network": asdict(net), "capabilities": caps.names()}


def site_info(agent_version: str, status: dict[str, Any]) -> dict[str, Any]:
    """The agent's own device information (DEV-1): host, addresses, MACs, version."""
    return {
        "status": "normal",
        "model": f"rmon-agent ({platform.system()} {platform.machine()})",
        "firmware_version": agent_version,
        "hostname": socket.gethostname(),
        "network": _interfaces(),
        "tunnel": status,
    }


def _interfaces() -> list[dict[str, str]]:
    """Non-loopback interfaces with their MAC (Linux sysfs; empty elsewhere)."""
    found = []
    for entry in sorted(Path("/sys/class/net").glob("*")):
        if entry.name == "lo":
            continue
        try:
            mac = (entry / "address").read_text().strip()
        except OSError:
            continue
        found.append({"name": entry.name, "mac": mac})
    return found[: models.MAX_ARGS]


def area_zoom_translation(args: models.PtzArgs) -> tuple[float, float, float]:
    """RelativeMove translation that brings a rectangle's centre to the middle and zooms in.

    ONVIF's generic spaces carry no field of view, so this is proportional: half the image
    width off centre is half the pan range, a rectangle half as wide as the image zooms half
    the range. ``centre`` moves the point ``x, y`` to the middle without zooming.
    """
    if args.action == "centre":
        return _clamp(args.x - 0.5), _clamp(0.5 - args.y), 0.0
    dx = args.x + args.w / 2 - 0.5
    dy = 0.5 - (args.y + args.h / 2)
    return _clamp(dx), _clamp(dy), 1.0 - max(args.w, args.h)


def _clamp(value: float) -> float:
    return max(-1.0, min(1.0, value))


def _check_imaging(
    values: dict[str, float | str],
    current: dict[str, float | str],
    modes: dict[str, tuple[str, ...]],
) -> None:
    """400 for a field the camera does not offer, or a mode it does not list."""
    for name, value in values.items():
        if name not in current:
            raise RequestFailed(409, TunnelCode.CAMERA_UNSUPPORTED, f"camera has no {name}")
        if name in modes and value not in modes[name]:
            raise RequestFailed(400, TunnelCode.UNSUPPORTED_REQUEST, f"{name}: not a choice")
        if name not in modes and not isinstance(value, float):
            raise RequestFailed(400, TunnelCode.UNSUPPORTED_REQUEST, f"{name}: a number")


def _args(model: type[M], request: models.Request) -> M:
    """The request's args as ``model``; 400 when this agent cannot read them."""
    try:
        return model.model_validate(request.args)
    except ValidationError as err:
        raise RequestFailed(400, TunnelCode.UNSUPPORTED_REQUEST, "bad request args") from err


def _onvif_failure(err: OnvifError) -> tuple[int, int, str]:
    """Status, tunnel code and message for a camera failure."""
    if isinstance(err, OnvifUnreachable):
        return 503, TunnelCode.CAMERA_UNREACHABLE, "Failed to connect to the camera."
    if isinstance(err, OnvifAuthError):
        return 502, TunnelCode.CAMERA_AUTH_FAILED, "The camera refused the credentials."
    if isinstance(err, OnvifUnsupported):
        return 409, TunnelCode.CAMERA_UNSUPPORTED, "The camera does not support this."
    return 502, TunnelCode.CAMERA_FAULT, f"The camera refused: {err}"[: models.MESSAGE_LEN]


def answer_error(stream: quic.TunnelStream, status: int, code: int, message: str) -> None:
    """A failed RESPONSE header, then FIN."""
    stream.send_message(
        FrameType.RESPONSE, models.Response(status=status, code=code, message=message)
    )
    stream.end()


async def send_json(stream: quic.TunnelStream, body: Any) -> None:
    """A 200 RESPONSE header, the JSON body, FIN."""
    stream.send_message(FrameType.RESPONSE, models.Response(content_type="application/json"))
    await stream.send_data(json.dumps(body).encode())
    stream.end()
