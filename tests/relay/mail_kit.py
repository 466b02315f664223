"""A real SMTP server for the tests (aiosmtpd's Controller on 127.0.0.1, with AUTH), and
helpers that read links and codes out of the received mail the way a person would."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

SMTP_USER = "relay"
SMTP_PASSWORD = "smtp-secret"  # a test server's login


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (aiosmtpd's Controller cannot take port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Inbox:
    """Every message the server accepted, parsed; ``arrived`` wakes waiters."""

    messages: list[EmailMessage] = field(default_factory=list)
    loop: asyncio.AbstractEventLoop | None = None
    arrived: asyncio.Condition | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        """aiosmtpd's hook: keep the message (runs on the Controller's own thread/loop)."""
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        assert self.loop is not None
        asyncio.run_coroutine_threadsafe(self._add(msg), self.loop)
        return "250 Message accepted for delivery"

    async def _add(self, msg: EmailMessage) -> None:
        assert self.arrived is not None
        async with self.arrived:
            self.messages.append(msg)
            self.arrived.notify_all()

    async def wait_for(self, to: str, subject: str, timeout: float = 10.0) -> EmailMessage:
        """The first message to ``to`` whose subject contains ``subject``; then it is removed."""
        assert self.arrived is not None
        async with asyncio.timeout(timeout), self.arrived:
            while True:
                for msg in self.messages:
                    if msg["To"] == to and subject in str(msg["Subject"]):
                        self.messages.remove(msg)
                        return msg
                await self.arrived.wait()


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    ok = (
        isinstance(data, LoginPassword)
        and data.login.decode() == SMTP_USER
        and data.password.decode() == SMTP_PASSWORD
    )
    return AuthResult(success=ok)


@contextmanager
def smtp_server(inbox: Inbox) -> Iterator[str]:
    """Run aiosmtpd with AUTH on a free port; yields the relay's RMON_RELAY_SMTP_URL."""
    inbox.loop = asyncio.get_running_loop()
    inbox.arrived = asyncio.Condition()
    port = free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=_authenticate,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield f"smtp://{SMTP_USER}:{SMTP_PASSWORD}@127.0.0.1:{port}"
    finally:
        controller.stop()


def bodies(msg: EmailMessage) -> tuple[str, str]:
    """(plain text, HTML) of a multipart/alternative mail."""
    plain = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    assert plain is not None, "mail needs a text part"
    assert html is not None, "mail needs an HTML part"
    return plain.get_content(), html.get_content()


def link_param(msg: EmailMessage, name: str) -> str:
    """A query parameter of the first portal link in the plain-text body."""
    text, _ = bodies(msg)
    match = re.search(r"https?://\S+", text)
    assert match, text
    fragment = urlsplit(match.group(0)).fragment  # "/signup/confirm?token=…"
    values = parse_qs(fragment.partition("?")[2])
    return values[name][0]


def line_value(msg: EmailMessage, label: str) -> str:
    """The value after ``label:`` in the plain-text body ("Verification code: 12345678")."""
    text, _ = bodies(msg)
    match = re.search(rf"{re.escape(label)}:\s*(\S+)", text)
    assert match, text
    return match.group(1)
