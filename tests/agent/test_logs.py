"""Device logs (DEV-8): secrets never reach the store, categories are bounded to the manual's
sizes, and each entry carries the agent's UTC offset."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.logs import DeviceLogHandler, Redactor, category_of, utc_offset_s
from agent.store.logbook import LIMITS, LogBook

CAMERA_PASSWORD = "Pa55-w0rd!cam"
KEY_HEX = "9f" * 32  # a raw Ed25519 key, as hex
SIGNATURE = "ab12" * 32
PEM_BODY = "MC4CAQAwBQYDK2VwBCIEIG1hZ2ljbWFnaWM"


@pytest.fixture
def book(tmp_path: Path) -> Iterator[LogBook]:
    book = LogBook(tmp_path / "agent.db")
    yield book
    book.close()


@pytest.fixture
def logger(book: LogBook) -> Iterator[logging.Logger]:
    """A logger under ``agent.`` filing into ``book`` through the real handler."""
    log = logging.getLogger("agent.test.logs")
    handler = DeviceLogHandler(book, Redactor([CAMERA_PASSWORD]))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    yield log
    log.removeHandler(handler)


# spec: DEV-8
@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"login to camera failed with {CAMERA_PASSWORD}", CAMERA_PASSWORD),
        ("rtsp://admin:s3cret@192.0.2.7:554/stream1 closed", "s3cret"),
        ("retrying with password=hunter22 user=admin", "hunter22"),
        ('config {"password": "q1w2e3r4"}', "q1w2e3r4"),
        ("token: eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "eyJhbGciOiJIUzI1NiJ9"),
        ("Authorization: Basic YWRtaW46c2VjcmV0cGFzcw==", "YWRtaW46c2VjcmV0cGFzcw"),
        ("sent header Bearer abcdefgh12345678ijkl", "abcdefgh12345678ijkl"),
        (f"device key {KEY_HEX} loaded", KEY_HEX),
        (f"AUTH signature={SIGNATURE}", SIGNATURE),
        (f"-----BEGIN PRIVATE KEY-----\n{PEM_BODY}=\n-----END PRIVATE KEY-----", PEM_BODY),
        ("grant=7f3c9a1be2d44c6f8a0b1c2d3e4f5a6b used", "7f3c9a1be2d44c6f8a0b1c2d3e4f5a6b"),
    ],
)  # fmt: skip
def test_secrets_never_reach_the_log_store(
    book: LogBook, logger: logging.Logger, text: str, secret: str
) -> None:
    logger.warning(text)
    [entry] = book.newest("error")
    assert secret not in entry.message
    assert "***" in entry.message


# spec: DEV-8
def _connect() -> None:
    raise ConnectionError(f"camera refused rtsp://admin:{CAMERA_PASSWORD}@192.0.2.9/")


def test_a_traceback_is_redacted_too(book: LogBook, logger: logging.Logger) -> None:
    try:
        _connect()
    except ConnectionError:
        logger.exception("pull failed")
    [entry] = book.newest("error")
    assert "Traceback" in entry.message
    assert CAMERA_PASSWORD not in entry.message


def test_ordinary_text_is_kept(book: LogBook, logger: logging.Logger) -> None:
    """Redaction must not eat the log: ids, addresses and sentences survive."""
    text = "camera 3f9a0c1d2e4b5a6c (ACME X1) online at http://192.0.2.7/onvif/device_service"
    logger.info(text)
    assert book.newest("operation")[0].message == text


# spec: DEV-8
def test_each_category_keeps_its_newest_entries(book: LogBook) -> None:
    for category, limit in LIMITS.items():
        log = {
            "error": logging.getLogger("agent.x"),
            "access": logging.getLogger("agent.access"),
            "operation": logging.getLogger("agent.commands"),
            "network": logging.getLogger("agent.tunnel.client"),
        }[category]
        handler = DeviceLogHandler(book, Redactor())
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        try:
            emit = log.error if category == "error" else log.info
            for n in range(limit + 25):
                emit("line %d", n)
        finally:
            log.removeHandler(handler)
        entries = book.newest(category, limit + 100)
        assert len(entries) == limit, category
        assert entries[0].message == f"line {limit + 24}"
        assert entries[-1].message == "line 25"


def test_categories_follow_level_then_logger() -> None:
    def record(name: str, level: int) -> logging.LogRecord:
        return logging.LogRecord(name, level, __file__, 1, "m", None, None)

    assert category_of(record("agent.tunnel.client", logging.ERROR)) == "error"
    assert category_of(record("agent.tunnel.client", logging.INFO)) == "network"
    assert category_of(record("shared.quic", logging.INFO)) == "network"
    assert category_of(record("agent.access", logging.INFO)) == "access"
    assert category_of(record("agent.commands", logging.INFO)) == "operation"
    assert category_of(record("agent.accessories", logging.INFO)) == "operation"


# spec: DEV-8
def test_entries_carry_the_agent_utc_offset(book: LogBook, logger: logging.Logger) -> None:
    logger.info("hello")
    [entry] = book.newest("operation")
    assert entry.utc_offset_s == utc_offset_s(entry.at)
