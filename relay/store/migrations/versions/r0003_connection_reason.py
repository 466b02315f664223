"""Connection history with reasons (DEV-7): why each tunnel came up or went down, refusals
flagged, and the agent's address.

Revision ID: 0003
Revises: 0002
Create Date: 2025-01-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add reason, refused and address; existing rows get empty reasons, not refused."""
    with op.batch_alter_table("connection_history") as batch:
        batch.add_column(sa.Column("reason", sa.String(128), nullable=False, server_default=""))
        batch.add_column(
            sa.Column("refused", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("address", sa.String(64), nullable=False, server_default=""))


def downgrade() -> None:
    """Drop the three columns again."""
    with op.batch_alter_table("connection_history") as batch:
        batch.drop_column("address")
        batch.drop_column("refused")
        batch.drop_column("reason")
