"""Command plane and event spool: commands with their states, and the devices' events.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = 36


def _time(name: str, *, nullable: bool = False) -> sa.Column[object]:
    """A UTC timestamp column (relay.store.types.UtcDateTime renders as this DDL)."""
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Create ``commands`` and ``device_events``."""
    op.create_table(
        "commands",
        sa.Column("id", sa.String(ID), nullable=False),
        sa.Column("device_id", sa.String(ID), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("target", sa.String(128), nullable=False),
        sa.Column("args", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        _time("deadline"),
        sa.Column("created_by", sa.String(ID), nullable=True),
        _time("created_at"),
        _time("updated_at"),
        _time("finished_at", nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "state IN ('pending', 'sent', 'acknowledged', 'done', 'failed', 'expired',"
            " 'unknown_outcome')",
            name="ck_commands_state",
        ),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name="fk_commands_device_id_devices", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_commands"),
    )
    op.create_index("ix_commands_device_id_state", "commands", ["device_id", "state"])
    op.create_index("ix_commands_state_deadline", "commands", ["state", "deadline"])
    op.create_table(
        "device_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("device_id", sa.String(ID), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("camera", sa.String(128), nullable=False),
        _time("at"),
        sa.Column("payload", sa.Text(), nullable=False),
        _time("received_at"),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name="fk_device_events_device_id_devices",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_device_events"),
        sa.UniqueConstraint("device_id", "seq", name="uq_device_events_device_id"),
    )


def downgrade() -> None:
    """Drop both tables."""
    op.drop_table("device_events")
    op.drop_index("ix_commands_state_deadline", table_name="commands")
    op.drop_index("ix_commands_device_id_state", table_name="commands")
    op.drop_table("commands")
