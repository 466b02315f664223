"""Enrollment (DEV-10): trade the subscriber's email and password for a device identity.

The password is sent once over HTTPS for a single-use grant valid a few minutes; the grant and
a freshly made Ed25519 public key register the device. The password is never stored, and nothing
is written locally unless the relay accepted the device.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from typing import Any

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.store import AgentStore, Identity
from shared.tunnel.identity import public_key_raw

#: rmon's own code when the relay cannot be reached at all (the manual's 1701 is the viewer's).
CODE_RELAY_UNREACHABLE = 1701


@dataclass
class EnrollError(Exception):
    """Registration failed; ``code`` is the relay's API error code (400224 wrong login, …)."""

    code: int
    message: str

    def __str__(self) -> str:
        return f"error {self.code}: {self.message}"


def _ssl_context(ca_pem: bytes | None) -> ssl.SSLContext:
    """Trust the pinned relay CA when given, else the system store."""
    return ssl.create_default_context(cadata=ca_pem.decode() if ca_pem else None)


async def _post(
    session: aiohttp.ClientSession, url: str, body: dict[str, Any], ctx: ssl.SSLContext
) -> dict[str, Any]:
    """POST JSON; turn an API error body into EnrollError."""
    try:
        async with session.post(url, json=body, ssl=ctx) as resp:
            data: dict[str, Any] = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as err:
        raise EnrollError(CODE_RELAY_UNREACHABLE, f"cannot reach the relay: {err}") from err
    if resp.status >= 400:
        error = data.get("error", {}) if isinstance(data, dict) else {}
        raise EnrollError(int(error.get("code", resp.status)), str(error.get("message", "")))
    return data


async def register(
    store: AgentStore,
    relay_url: str,
    email: str,
    password: str,
    *,
    relay_ca_pem: bytes | None = None,
    name: str = "",
    agent_version: str = "",
) -> Identity:
    """Enroll this agent with the subscriber's account and save the identity."""
    base = relay_url.rstrip("/")
    ctx = _ssl_context(relay_ca_pem)
    key = Ed25519PrivateKey.generate()
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        grant = await _post(
            session, f"{base}/api/v1/enroll/grant", {"email": email, "password": password}, ctx
        )
        device = await _post(
            session,
            f"{base}/api/v1/enroll/device",
            {
                "grant": grant["grant"],
                "public_key": public_key_raw(key).hex(),
                "name": name or socket.gethostname(),
                "agent_version": agent_version,
            },
            ctx,
        )
    return store.save_identity(str(device["device_id"]), base, key, relay_ca_pem)
