"""Connection history says which transport carried each tunnel (QUIC or the TLS/TCP fallback),
and indexes for the retention sweep: device events by time (EVT-2 keeps one month) and finished
commands by when they finished.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the transport column (old rows: unknown, empty) and the two indexes."""
    with op.batch_alter_table("connection_history") as batch:
        batch.add_column(sa.Column("transport", sa.String(8), nullable=False, server_default=""))
    op.create_index("ix_device_events_at", "device_events", ["at"])
    op.create_index("ix_commands_finished_at", "commands", ["finished_at"])


def downgrade() -> None:
    """Drop them again."""
    op.drop_index("ix_commands_finished_at", table_name="commands")
    op.drop_index("ix_device_events_at", table_name="device_events")
    with op.batch_alter_table("connection_history") as batch:
        batch.drop_column("transport")
