"""Camera status as the agent reports it (normal / communication_error / authentication_error),
so the device list can say *why* a camera is not live, as the manual's recorder screen does.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add cameras.status; existing cameras count as normal until their next inventory."""
    with op.batch_alter_table("cameras") as batch:
        batch.add_column(
            sa.Column("status", sa.String(32), nullable=False, server_default="normal")
        )


def downgrade() -> None:
    """Drop cameras.status."""
    with op.batch_alter_table("cameras") as batch:
        batch.drop_column("status")
