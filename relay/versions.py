"""The service's version history (MSG-2: Help shows the version and its history).

A small static list kept in the source, not the database: a release's notes ship with its code,
so the history can never disagree with the version actually running.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version


@dataclass(frozen=True)
class Release:
    """One entry of the version history, newest first in :data:`HISTORY`."""

    version: str
    date: str
    notes: str


HISTORY: tuple[Release, ...] = (
    Release(
        "0.1.0",
        "2026-12-01",
        "Accounts, shared users, permissions, folders and favorites; service version in Help.",
    ),
)


def service_version() -> str:
    """The installed package's version (what is really running); the newest history entry when
    the package metadata is missing (a source checkout without install)."""
    try:
        return version("rmon")
    except PackageNotFoundError:
        return HISTORY[0].version
