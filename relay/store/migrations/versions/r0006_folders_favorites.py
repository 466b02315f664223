"""Folders and favorites (issue 5, ORG-1 and ORG-2): a subscriber's folder tree of at most three
levels with device links (a device in at most one folder), and per-viewer favorite groups with
their layout, order, start-page flag and cameras (each at most once per group).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = 36
NAME = 64


def _fk(
    name: str, target: str, *, primary_key: bool = False, nullable: bool = False
) -> sa.Column[str]:
    """A UUID column referring to ``target`` (``table.id``), deleted with it."""
    return sa.Column(
        name,
        sa.String(ID),
        sa.ForeignKey(target, ondelete="CASCADE"),
        primary_key=primary_key,
        nullable=nullable,
    )


def upgrade() -> None:
    """Create the four tables."""
    op.create_table(
        "folders",
        sa.Column("id", sa.String(ID), nullable=False),
        _fk("owner_id", "accounts.id"),
        _fk("parent_id", "folders.id", nullable=True),
        sa.Column("name", sa.String(NAME), nullable=False),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.CheckConstraint("depth BETWEEN 1 AND 3", name="ck_folders_depth"),
        sa.PrimaryKeyConstraint("id", name="pk_folders"),
    )
    op.create_index("ix_folders_owner_id_parent_id", "folders", ["owner_id", "parent_id"])
    op.create_table(
        "folder_devices",
        _fk("device_id", "devices.id", primary_key=True),
        _fk("folder_id", "folders.id"),
        sa.PrimaryKeyConstraint("device_id", name="pk_folder_devices"),
    )
    op.create_index("ix_folder_devices_folder_id", "folder_devices", ["folder_id"])
    op.create_table(
        "favorite_groups",
        sa.Column("id", sa.String(ID), nullable=False),
        _fk("account_id", "accounts.id"),
        sa.Column("name", sa.String(NAME), nullable=False),
        sa.Column("layout", sa.String(8), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("start_page", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.CheckConstraint(
            "layout IN ('4', '9', '12', '16', '30', 'custom')", name="ck_favorite_groups_layout"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_favorite_groups"),
    )
    op.create_index("ix_favorite_groups_account_id", "favorite_groups", ["account_id"])
    op.create_table(
        "favorite_cameras",
        _fk("group_id", "favorite_groups.id", primary_key=True),
        _fk("camera_id", "cameras.id", primary_key=True),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("x", sa.Integer(), nullable=True),
        sa.Column("y", sa.Integer(), nullable=True),
        sa.Column("w", sa.Integer(), nullable=True),
        sa.Column("h", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("group_id", "camera_id", name="pk_favorite_cameras"),
    )
    op.create_index("ix_favorite_cameras_camera_id", "favorite_cameras", ["camera_id"])


def downgrade() -> None:
    """Drop the four tables again."""
    op.drop_index("ix_favorite_cameras_camera_id", table_name="favorite_cameras")
    op.drop_table("favorite_cameras")
    op.drop_index("ix_favorite_groups_account_id", table_name="favorite_groups")
    op.drop_table("favorite_groups")
    op.drop_index("ix_folder_devices_folder_id", table_name="folder_devices")
    op.drop_table("folder_devices")
    op.drop_index("ix_folders_owner_id_parent_id", table_name="folders")
    op.drop_table("folders")
