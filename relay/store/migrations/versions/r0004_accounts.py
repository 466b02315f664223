"""Accounts, shared users and permissions (issue 5): session epochs for forced re-login,
first-login password change, shared users' group and flags, permission groups, camera shares,
mailed-link tokens and password-reset codes.

Revision ID: 0004
Revises: 0003
Create Date: 2025-01-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = 36
EMAIL = 254


def _time(name: str) -> sa.Column[object]:
    """A UTC timestamp column (relay.store.types.UtcDateTime renders as this DDL)."""
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def _account_fk(name: str, *, primary_key: bool = False, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(
        name,
        sa.String(ID),
        sa.ForeignKey("accounts.id", ondelete="CASCADE"),
        primary_key=primary_key,
        nullable=nullable,
    )


def upgrade() -> None:
    """Add the account columns and the four tables."""
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("session_epoch", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(
            sa.Column("must_change_password", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("group_no", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("allow_device_settings", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("privacy_guard", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("epoch", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "permission_groups",
        _account_fk("owner_id", primary_key=True),
        sa.Column("group_no", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("permissions", sa.Text(), nullable=False),
        sa.CheckConstraint("group_no BETWEEN 1 AND 4", name="ck_permission_groups_group_no"),
        sa.PrimaryKeyConstraint("owner_id", "group_no", name="pk_permission_groups"),
    )
    op.create_table(
        "camera_shares",
        sa.Column(
            "camera_id",
            sa.String(ID),
            sa.ForeignKey("cameras.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        _account_fk("account_id", primary_key=True),
        sa.PrimaryKeyConstraint("camera_id", "account_id", name="pk_camera_shares"),
    )
    op.create_index("ix_camera_shares_account_id", "camera_shares", ["account_id"])
    op.create_table(
        "email_tokens",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        _account_fk("account_id", nullable=True),
        sa.Column("email", sa.String(EMAIL), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        _time("expires_at"),
        sa.CheckConstraint("purpose IN ('signup', 'email_change')", name="ck_email_tokens_purpose"),
        sa.PrimaryKeyConstraint("token_hash", name="pk_email_tokens"),
    )
    op.create_table(
        "password_resets",
        _account_fk("account_id", primary_key=True),
        sa.Column("code_hash", sa.String(64), nullable=False),
        _time("expires_at"),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", name="pk_password_resets"),
    )


def downgrade() -> None:
    """Drop the tables and columns again."""
    op.drop_table("password_resets")
    op.drop_table("email_tokens")
    op.drop_index("ix_camera_shares_account_id", table_name="camera_shares")
    op.drop_table("camera_shares")
    op.drop_table("permission_groups")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("epoch")
    with op.batch_alter_table("accounts") as batch:
        for column in (
            "privacy_guard",
            "allow_device_settings",
            "group_no",
            "must_change_password",
            "session_epoch",
        ):
            batch.drop_column(column)
