"""Operator announcements (issue 5, MSG-1): messages of three kinds (firmware available,
maintenance with an optional window, other) addressed to every account, and one read marker per
(message, account) so each viewer — subscriber or shared user — has their own unread count.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = 36
TITLE = 200


def _time(name: str, *, nullable: bool = False) -> sa.Column[object]:
    """A UTC timestamp column (relay.store.types.UtcDateTime renders as this DDL)."""
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Create the two tables."""
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("title", sa.String(TITLE), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        _time("published_at"),
        _time("starts_at", nullable=True),
        _time("ends_at", nullable=True),
        sa.CheckConstraint(
            "kind IN ('firmware_available', 'maintenance', 'other')", name="ck_messages_kind"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_messages"),
    )
    op.create_index("ix_messages_kind_published_at", "messages", ["kind", "published_at"])
    op.create_index("ix_messages_published_at", "messages", ["published_at"])
    op.create_table(
        "message_reads",
        sa.Column(
            "message_id",
            sa.Integer(),
            sa.ForeignKey("messages.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "account_id",
            sa.String(ID),
            sa.ForeignKey("accounts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        _time("read_at"),
        sa.PrimaryKeyConstraint("message_id", "account_id", name="pk_message_reads"),
    )
    op.create_index("ix_message_reads_account_id", "message_reads", ["account_id"])


def downgrade() -> None:
    """Drop the two tables again."""
    op.drop_index("ix_message_reads_account_id", table_name="message_reads")
    op.drop_table("message_reads")
    op.drop_index("ix_messages_published_at", table_name="messages")
    op.drop_index("ix_messages_kind_published_at", table_name="messages")
    op.drop_table("messages")
