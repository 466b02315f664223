"""Initial schema: accounts, sessions, login failures, enrollment grants, devices, cameras.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = 36
EMAIL = 254


def _time(name: str, *, nullable: bool = False) -> sa.Column[object]:
    """A UTC timestamp column (relay.store.types.UtcDateTime renders as this DDL)."""
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Create every table of the first schema."""
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(ID), nullable=False),
        sa.Column("email", sa.String(EMAIL), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("owner_id", sa.String(ID), nullable=True),
        _time("created_at"),
        sa.CheckConstraint("role IN ('subscriber', 'shared')", name="ck_accounts_role"),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["accounts.id"], name="fk_accounts_owner_id_accounts", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_accounts"),
        sa.UniqueConstraint("email", name="uq_accounts_email"),
    )
    op.create_table(
        "sessions",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("account_id", sa.String(ID), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        _time("created_at"),
        _time("last_seen_at"),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_sessions_account_id_accounts",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name="pk_sessions"),
    )
    op.create_index("ix_sessions_account_id", "sessions", ["account_id"])
    op.create_table(
        "login_failures",
        sa.Column("account_key", sa.String(EMAIL), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        _time("locked_until", nullable=True),
        sa.PrimaryKeyConstraint("account_key", name="pk_login_failures"),
    )
    op.create_table(
        "enrollment_grants",
        sa.Column("grant_hash", sa.String(64), nullable=False),
        sa.Column("account_id", sa.String(ID), nullable=False),
        _time("expires_at"),
        _time("used_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_enrollment_grants_account_id_accounts",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("grant_hash", name="pk_enrollment_grants"),
    )
    op.create_index("ix_enrollment_grants_account_id", "enrollment_grants", ["account_id"])
    op.create_table(
        "devices",
        sa.Column("id", sa.String(ID), nullable=False),
        sa.Column("account_id", sa.String(ID), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("public_key", sa.String(64), nullable=False),
        sa.Column("agent_version", sa.String(64), nullable=False),
        _time("created_at"),
        _time("last_seen_at", nullable=True),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("connected_relay", sa.String(64), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_devices_account_id_accounts",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_devices"),
    )
    op.create_index("ix_devices_account_id", "devices", ["account_id"])
    op.create_table(
        "cameras",
        sa.Column("id", sa.String(ID), nullable=False),
        sa.Column("device_id", sa.String(ID), nullable=False),
        sa.Column("local_id", sa.String(128), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("manufacturer", sa.String(128), nullable=False),
        sa.Column("firmware_version", sa.String(128), nullable=False),
        sa.Column("serial_number", sa.String(128), nullable=False),
        sa.Column("capabilities", sa.Text(), nullable=False),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name="fk_cameras_device_id_devices", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_cameras"),
        sa.UniqueConstraint("device_id", "local_id", name="uq_cameras_device_id"),
    )
    op.create_table(
        "connection_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("device_id", sa.String(ID), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        _time("at"),
        sa.CheckConstraint(
            "event IN ('connected', 'disconnected')", name="ck_connection_history_event"
        ),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name="fk_connection_history_device_id_devices",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_connection_history"),
    )
    op.create_index(
        "ix_connection_history_device_at", "connection_history", ["device_id", "at"]
    )


def downgrade() -> None:
    """Drop everything (children first)."""
    op.drop_table("connection_history")
    op.drop_table("cameras")
    op.drop_index("ix_devices_account_id", table_name="devices")
    op.drop_table("devices")
    op.drop_index("ix_enrollment_grants_account_id", table_name="enrollment_grants")
    op.drop_table("enrollment_grants")
    op.drop_table("login_failures")
    op.drop_index("ix_sessions_account_id", table_name="sessions")
    op.drop_table("sessions")
    op.drop_table("accounts")
