"""The agent's device logs (DEV-8): a logging handler that files redacted records by category.

Secrets never reach the store: every record is formatted, then redacted, then written. Redaction
replaces the secrets the agent knows by value (camera passwords from the settings) wherever they
appear, and by shape what it cannot list: URL user-info (``rtsp://user:pw@``), ``password=…``
style pairs, HTTP ``Authorization`` values, PEM blocks and long hex or base64 runs (keys,
signatures, nonces, tokens).

Categories: WARNING and above are ``error``; below that the logger decides — the tunnel and
discovery are ``network``, viewer requests (logger ``agent.access``) are ``access``, the rest of
the agent (commands, cameras added, settings) is ``operation``.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import zlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from agent.store.logbook import LogBook, LogCategory, LogEntry

#: Logger name prefixes whose INFO records are network log entries.
NETWORK_LOGGERS = ("agent.tunnel", "shared.quic", "agent.enroll", "agent.onvif.discovery")
#: Logger whose records are access log entries (one per viewer request served).
ACCESS_LOGGER = "agent.access"
#: Largest compressed log_fetch body (bytes of base64): keeps a command result inside a control
#: frame (``shared.tunnel.control.RESULT_BATCH_BYTES``) whatever the logs hold.
MAX_FETCH_BYTES = 160 * 1024
REDACTED = "***"

_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s:@]+(?::[^/\s@]*)?@")
_PAIR = re.compile(
    r"(?P<name>\b(?:password|passwd|pwd|pass|secret|token|api[_-]?key|private[_-]?key|"
    r"signature|grant|nonce|credentials?)\b[\"']?\s*[:=]\s*)(?P<value>\"[^\"]*\"|'[^']*'|[^\s,;&]+)",
    re.IGNORECASE,
)
_AUTH_HEADER = re.compile(
    r"(?P<name>\b(?:authorization|proxy-authorization|cookie|set-cookie)\s*[:=]\s*)[^\r\n]+",
    re.IGNORECASE,
)
_SCHEME_TOKEN = re.compile(r"\b(?P<name>Bearer|Basic|Digest)\s+[A-Za-z0-9._~+/=-]{8,}")
_PEM = re.compile(r"-----BEGIN [A-Z ]+-----.*?(?:-----END [A-Z ]+-----|$)", re.DOTALL)
_HEX_RUN = re.compile(r"\b[0-9a-fA-F]{32,}\b")
_B64_RUN = re.compile(r"(?<![A-Za-z0-9+/])(?=[A-Za-z0-9+/_-]*\d)[A-Za-z0-9+/_-]{40,}={0,2}")


class Redactor:
    """Removes secrets from text: the known ones by value, the rest by shape."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret containing another is replaced whole.
        self._secrets = sorted({s for s in secrets if len(s) >= 3}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        """``text`` without secrets."""
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        text = _PEM.sub(f"[PEM {REDACTED}]", text)
        text = _USERINFO.sub(rf"\g<scheme>{REDACTED}@", text)
        text = _AUTH_HEADER.sub(rf"\g<name>{REDACTED}", text)
        text = _SCHEME_TOKEN.sub(rf"\g<name> {REDACTED}", text)
        text = _PAIR.sub(rf"\g<name>{REDACTED}", text)
        text = _HEX_RUN.sub(REDACTED, text)
        return _B64_RUN.sub(REDACTED, text)


def category_of(record: logging.LogRecord) -> LogCategory:
    """Which device log a record belongs to."""
    if record.levelno >= logging.WARNING:
        return "error"
    if record.name == ACCESS_LOGGER or record.name.startswith(ACCESS_LOGGER + "."):
        return "access"
    if any(record.name == p or record.name.startswith(p + ".") for p in NETWORK_LOGGERS):
        return "network"
    return "operation"


def utc_offset_s(at: float) -> int:
    """The agent's UTC offset at Unix time ``at`` (seconds east of UTC)."""
    offset = datetime.fromtimestamp(at).astimezone().utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


class DeviceLogHandler(logging.Handler):
    """Files every INFO+ record, redacted, into the :class:`LogBook`."""

    def __init__(self, book: LogBook, redactor: Redactor, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.book = book
        self.redactor = redactor
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        """Format, redact, store; a failure here must never break the caller's log call."""
        try:
            entry = LogEntry(
                at=record.created,
                utc_offset_s=utc_offset_s(record.created),
                level=record.levelname,
                logger=record.name,
                message=self.redactor(self.format(record)),
            )
            self.book.add(category_of(record), entry)
        except Exception:  # logging.Handler's contract: report, do not raise
            self.handleError(record)


def fetch_payload(book: LogBook, category: LogCategory) -> dict[str, Any]:
    """The ``log_fetch`` result: the category's newest entries, zlib-compressed JSON in base64.

    Compressed because 1000 entries of up to 2000 characters would not fit a control frame;
    if even compressed they exceed :data:`MAX_FETCH_BYTES`, the oldest are left out and
    ``truncated`` says so.
    """
    entries = [entry.__dict__ for entry in book.newest(category)]
    truncated = False
    while True:
        raw = json.dumps(entries, separators=(",", ":")).encode()
        data = base64.b64encode(zlib.compress(raw, 6)).decode()
        if len(data) <= MAX_FETCH_BYTES or not entries:
            break
        entries, truncated = entries[: len(entries) * 3 // 4], True
    now = datetime.now().astimezone()
    return {
        "type": category,
        "count": len(entries),
        "truncated": truncated,
        "encoding": "zlib+base64",
        "entries": data,
        "time_zone": now.tzname() or "",
        "utc_offset_s": utc_offset_s(now.timestamp()),
    }
