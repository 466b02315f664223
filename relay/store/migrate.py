"""Alembic, driven from code: no alembic.ini at run time, scripts inside the package."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config

#: The migration scripts ship inside the package, so this works from a wheel too.
SCRIPT_LOCATION = Path(__file__).resolve().parent / "migrations"

# Alembic 1.16+ logs every plugin it sets up at INFO on each run: noise in the relay's log.
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def alembic_config(url: str) -> Config:
    """A Config for ``url`` (passed as an attribute: no ConfigParser %-interpolation)."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.attributes["url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` (blocking: call it in a thread)."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    """Migrate down to ``revision`` (blocking)."""
    command.downgrade(alembic_config(url), revision)
