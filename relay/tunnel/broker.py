"""The broker: turns a viewer's request into a stream inside the right agent's tunnel."""

from __future__ import annotations

import asyncio
import logging

from pydantic import ValidationError

from relay.tunnel.registry import Registry
from shared import models, quic
from shared.tunnel.codes import TunnelCode
from shared.tunnel.errors import FrameError
from shared.tunnel.frames import Frame, FrameType

log = logging.getLogger(__name__)

#: How long the agent may take to answer a request header (RTSP open + first keyframe ~2 s).
RESPONSE_TIMEOUT_S = 20.0


class BrokerError(Exception):
    """A request could not be served; ``code`` and ``status`` go into the API error body."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class Broker:
    """Opens request streams to agents connected to this relay."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def is_online(self, device_id: str) -> bool:
        """True when the device holds a tunnel to this relay."""
        return self.registry.get(device_id) is not None

    async def open(
        self, device_id: str, request: models.Request, timeout: float = RESPONSE_TIMEOUT_S
    ) -> tuple[models.Response, quic.TunnelStream]:
        """Send ``request`` and wait for the agent's response header; the body follows."""
        session = self.registry.get(device_id)
        if session is None:
            raise BrokerError(503, TunnelCode.CAMERA_UNREACHABLE, "the recorder is offline")
        stream = await session.open_request_stream()
        try:
            stream.send_message(FrameType.REQUEST, request)
            async with asyncio.timeout(timeout):
                frame = await stream.read_frame()
            response = _parse_response(frame)
        except (TimeoutError, quic.StreamReset, FrameError, ValidationError) as err:
            stream.reset(quic.RESET_CANCELLED)
            raise BrokerError(
                504, TunnelCode.CAMERA_UNREACHABLE, "the recorder did not answer"
            ) from err
        if response.status >= 400:
            stream.reset(quic.RESET_CANCELLED)
            raise BrokerError(response.status, response.code, response.message)
        return response, stream

    async def fetch(
        self, device_id: str, request: models.Request, limit: int = 32 * 1024 * 1024
    ) -> tuple[models.Response, bytes]:
        """A whole (bounded) body, for snapshots and other small answers."""
        response, stream = await self.open(device_id, request)
        body = bytearray()
        try:
            async with asyncio.timeout(RESPONSE_TIMEOUT_S):
                while (frame := await stream.read_frame()) is not None:
                    body += frame.payload
                    if len(body) > limit:
                        raise BrokerError(502, TunnelCode.INTERNAL, "answer too large")
        except (TimeoutError, quic.StreamReset, FrameError) as err:
            raise BrokerError(504, TunnelCode.CAMERA_UNREACHABLE, "transfer interrupted") from err
        finally:
            stream.reset(quic.RESET_CANCELLED)
        return response, bytes(body)


def _parse_response(frame: Frame | None) -> models.Response:
    """The first frame back must be a RESPONSE header."""
    if frame is None or frame.type is not FrameType.RESPONSE:
        raise FrameError("expected a RESPONSE header")
    return models.Response.model_validate_json(frame.payload)
