"""Mobile app devices (issue 5, USER-9 / APP-2): an app's login registers the device it runs on,
bound to the session (token) that login opened, so the viewer can list their apps and remove
one, which revokes its token at once.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = 36


def upgrade() -> None:
    """Create the table."""
    op.create_table(
        "app_devices",
        sa.Column("id", sa.String(ID), nullable=False),
        sa.Column(
            "account_id",
            sa.String(ID),
            sa.ForeignKey("accounts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "token_hash",
            sa.String(64),
            sa.ForeignKey("sessions.token_hash", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("platform IN ('android', 'ios', 'web')", name="ck_app_devices_platform"),
        sa.PrimaryKeyConstraint("id", name="pk_app_devices"),
        sa.UniqueConstraint("token_hash", name="uq_app_devices_token_hash"),
    )
    op.create_index("ix_app_devices_account_id", "app_devices", ["account_id"])


def downgrade() -> None:
    """Drop the table again."""
    op.drop_index("ix_app_devices_account_id", table_name="app_devices")
    op.drop_table("app_devices")
