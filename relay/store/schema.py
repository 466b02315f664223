"""The relay's tables (SQLAlchemy Core); the Alembic migrations create exactly these.

One schema for SQLite and PostgreSQL: ids are UUID strings, booleans are ``Boolean``, JSON is
text, times are :class:`~relay.store.types.UtcDateTime`.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

from relay.store.types import UtcDateTime

#: Constraint names the same on every engine, so later migrations can refer to them.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = 36  # a UUID in its canonical text form
EMAIL = 254  # RFC 5321 path limit
HISTORY_REASON = 128  # connection_history.reason

accounts = Table(
    "accounts",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("email", String(EMAIL), nullable=False, unique=True),  # stored lowercased
    Column("name", String(64), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("role", String(16), nullable=False),
    Column("owner_id", String(ID), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    # -- migration 0004 (accounts, shared users): --
    # Sessions older than this epoch end with 50205 (a change made elsewhere forces re-login).
    Column("session_epoch", Integer, nullable=False, server_default="0"),
    # USER-6: an invited shared user must replace the mailed initial password first.
    Column("must_change_password", Boolean, nullable=False, server_default=false()),
    # Shared users only: permission group 1..4 of their subscriber, and USER-6's two flags.
    Column("group_no", Integer, nullable=True),
    Column("allow_device_settings", Boolean, nullable=False, server_default=false()),
    Column("privacy_guard", Boolean, nullable=False, server_default=false()),
    CheckConstraint("role IN ('subscriber', 'shared')", name="role"),
)

sessions = Table(
    "sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),  # sha256 hex of the bearer/cookie token
    Column(
        "account_id",
        String(ID),
        ForeignKey("accounts.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_seen_at", UtcDateTime, nullable=False),
    Column("epoch", Integer, nullable=False, server_default="0"),  # accounts.session_epoch then
)

login_failures = Table(
    "login_failures",
    metadata,
    Column("account_key", String(EMAIL), primary_key=True),  # lowercased e-mail, known or not
    Column("failures", Integer, nullable=False),
    Column("locked_until", UtcDateTime, nullable=True),
)

enrollment_grants = Table(
    "enrollment_grants",
    metadata,
    Column("grant_hash", String(64), primary_key=True),  # sha256 hex of the grant
    Column(
        "account_id",
        String(ID),
        ForeignKey("accounts.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("used_at", UtcDateTime, nullable=True),
)

devices = Table(
    "devices",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column(
        "account_id",
        String(ID),
        ForeignKey("accounts.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("name", String(64), nullable=False),
    Column("public_key", String(64), nullable=False),  # raw 32-byte Ed25519 key, hex
    Column("agent_version", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_seen_at", UtcDateTime, nullable=True),
    Column("online", Boolean, nullable=False),
    Column("connected_relay", String(64), nullable=True),
)

cameras = Table(
    "cameras",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("device_id", String(ID), ForeignKey("devices.id", ondelete="CASCADE"), nullable=False),
    Column("local_id", String(128), nullable=False),
    Column("name", String(64), nullable=False),
    Column("model", String(128), nullable=False),
    Column("manufacturer", String(128), nullable=False),
    Column("firmware_version", String(128), nullable=False),
    Column("serial_number", String(128), nullable=False),
    Column("capabilities", Text, nullable=False),  # JSON list of strings
    Column("online", Boolean, nullable=False),
    # The agent's view of the camera: normal / communication_error / authentication_error.
    Column("status", String(32), nullable=False, server_default="normal"),
    UniqueConstraint("device_id", "local_id"),
)

connection_history = Table(
    "connection_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("device_id", String(ID), ForeignKey("devices.id", ondelete="CASCADE"), nullable=False),
    Column("event", String(16), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    # Why the tunnel came up or went down ("heartbeat timeout", "relay shutting down", …).
    Column("reason", String(HISTORY_REASON), nullable=False, server_default=""),
    # A connection the relay turned away (failed key proof…): a "disconnected" row worth a flag.
    Column("refused", Boolean, nullable=False, server_default=false()),
    # The agent's public address as the relay saw it ("203.0.113.7:50123").
    Column("address", String(64), nullable=False, server_default=""),
    # What carried the tunnel: "quic", or "tcp" for the TLS/TCP fallback; "" before 0009.
    Column("transport", String(8), nullable=False, server_default=""),
    CheckConstraint("event IN ('connected', 'disconnected')", name="event"),
    Index("ix_connection_history_device_at", "device_id", "at"),
)

# -- command plane and event spool (migration 0002) ---------------------------------------------

#: Every state a command can be in; the last four are terminal (DESIGN.md, Tunnel: no loss).
COMMAND_STATES = (
    "pending",
    "sent",
    "acknowledged",
    "done",
    "failed",
    "expired",
    "unknown_outcome",
)

commands = Table(
    "commands",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("device_id", String(ID), ForeignKey("devices.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(32), nullable=False),
    # A camera's local_id on the agent, or "" for the agent (the recorder) itself.
    Column("target", String(128), nullable=False),
    Column("args", Text, nullable=False),  # JSON object
    Column("state", String(16), nullable=False),
    Column("deadline", UtcDateTime, nullable=False),
    Column("created_by", String(ID), nullable=True),  # account id of the viewer who asked
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=True),
    Column("result", Text, nullable=True),  # JSON object from the agent, once terminal
    Column("error", Text, nullable=False),
    CheckConstraint(
        "state IN ('pending', 'sent', 'acknowledged', 'done', 'failed', 'expired',"
        " 'unknown_outcome')",
        name="state",
    ),
    Index("ix_commands_device_id_state", "device_id", "state"),
    Index("ix_commands_state_deadline", "state", "deadline"),
    Index("ix_commands_finished_at", "finished_at"),  # the retention sweep (0009)
)

device_events = Table(
    "device_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("device_id", String(ID), ForeignKey("devices.id", ondelete="CASCADE"), nullable=False),
    Column("seq", BigInteger, nullable=False),  # the agent's spool sequence number
    Column("kind", String(64), nullable=False),
    Column("camera", String(128), nullable=False),  # camera local_id, or ""
    Column("at", UtcDateTime, nullable=False),  # when the agent raised it
    Column("payload", Text, nullable=False),  # JSON object
    Column("received_at", UtcDateTime, nullable=False),
    # Replays after an outage are deduplicated by this constraint.
    UniqueConstraint("device_id", "seq"),
    Index("ix_device_events_at", "at"),  # the retention sweep (0009)
)

# -- accounts, shared users and permissions (migration 0004) ------------------------------------

GROUP_NAME = 32

#: USER-8: four groups per subscriber; ``permissions`` is a JSON list of permission names.
permission_groups = Table(
    "permission_groups",
    metadata,
    Column("owner_id", String(ID), ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("group_no", Integer, primary_key=True, autoincrement=False),
    Column("name", String(GROUP_NAME), nullable=False),
    Column("permissions", Text, nullable=False),
    CheckConstraint("group_no BETWEEN 1 AND 4", name="group_no"),
)

#: USER-7 / CAM-2: which shared user may see which camera (nothing is shared at creation).
camera_shares = Table(
    "camera_shares",
    metadata,
    Column("camera_id", String(ID), ForeignKey("cameras.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "account_id", String(ID), ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    ),
    Index("ix_camera_shares_account_id", "account_id"),
)

#: Mailed links (USER-1 sign-up, USER-5 e-mail change): only the token's sha256 is kept. A
#: sign-up holds the would-be account (its password already hashed) until the link is used.
email_tokens = Table(
    "email_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("purpose", String(16), nullable=False),
    Column("account_id", String(ID), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=True),
    Column("email", String(EMAIL), nullable=False),
    Column("name", String(64), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    CheckConstraint("purpose IN ('signup', 'email_change')", name="purpose"),
)

#: USER-4: one pending verification code per account (its sha256), with wrong tries counted.
password_resets = Table(
    "password_resets",
    metadata,
    Column(
        "account_id", String(ID), ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("code_hash", String(64), nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("attempts", Integer, nullable=False),
)

# -- folders and favorites (migration 0006) -----------------------------------------------------

ORG_NAME = 64  # folders.name, favorite_groups.name (the API allows 32; room for later)

#: ORG-1: a subscriber's folder tree. ``depth`` is 1 for a top-level folder; the limit of three
#: levels is also a CHECK, so no write path can build a fourth. Deleting a folder deletes its
#: sub-folders (cascade) and, through ``folder_devices``, unassigns their devices.
folders = Table(
    "folders",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("owner_id", String(ID), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("parent_id", String(ID), ForeignKey("folders.id", ondelete="CASCADE"), nullable=True),
    Column("name", String(ORG_NAME), nullable=False),
    Column("depth", Integer, nullable=False),
    Column("position", Integer, nullable=False),
    CheckConstraint("depth BETWEEN 1 AND 3", name="depth"),
    Index("ix_folders_owner_id_parent_id", "owner_id", "parent_id"),
)

#: ORG-1: a device (site) is in at most one folder: the device id is the primary key.
folder_devices = Table(
    "folder_devices",
    metadata,
    Column("device_id", String(ID), ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True),
    Column("folder_id", String(ID), ForeignKey("folders.id", ondelete="CASCADE"), nullable=False),
    Index("ix_folder_devices_folder_id", "folder_id"),
)

#: ORG-2: favorite groups are per viewer (a shared user has their own); one may be the start page.
favorite_groups = Table(
    "favorite_groups",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column(
        "account_id",
        String(ID),
        ForeignKey("accounts.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("name", String(ORG_NAME), nullable=False),
    Column("layout", String(8), nullable=False),
    Column("position", Integer, nullable=False),
    Column("start_page", Boolean, nullable=False, server_default=false()),
    CheckConstraint("layout IN ('4', '9', '12', '16', '30', 'custom')", name="layout"),
)

#: ORG-2: a camera at most once per group (the primary key). ``slot`` is the tile of a split
#: layout (0-based) or the stacking order of a custom one; x/y/w/h place a custom tile in
#: thousandths of the canvas (NULL for split layouts).
favorite_cameras = Table(
    "favorite_cameras",
    metadata,
    Column(
        "group_id",
        String(ID),
        ForeignKey("favorite_groups.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("camera_id", String(ID), ForeignKey("cameras.id", ondelete="CASCADE"), primary_key=True),
    Column("slot", Integer, nullable=False),
    Column("x", Integer, nullable=True),
    Column("y", Integer, nullable=True),
    Column("w", Integer, nullable=True),
    Column("h", Integer, nullable=True),
    Index("ix_favorite_cameras_camera_id", "camera_id"),
)

# -- operator announcements (migration 0007) ----------------------------------------------------

MESSAGE_KINDS = ("firmware_available", "maintenance", "other")
MESSAGE_TITLE = 200

#: MSG-1: announcements from the relay operator to every account (subscribers and shared users).
#: The id is an integer so equal publication times still sort newest first; a maintenance
#: notice may carry the window it announces.
messages = Table(
    "messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("title", String(MESSAGE_TITLE), nullable=False),
    Column("body", Text, nullable=False),
    Column("published_at", UtcDateTime, nullable=False),
    Column("starts_at", UtcDateTime, nullable=True),
    Column("ends_at", UtcDateTime, nullable=True),
    CheckConstraint("kind IN ('firmware_available', 'maintenance', 'other')", name="kind"),
    Index("ix_messages_kind_published_at", "kind", "published_at"),
    Index("ix_messages_published_at", "published_at"),
)

#: MSG-1: read state is per viewer: a row means this account has read that message.
message_reads = Table(
    "message_reads",
    metadata,
    Column("message_id", Integer, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "account_id", String(ID), ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("read_at", UtcDateTime, nullable=False),
    Index("ix_message_reads_account_id", "account_id"),
)

# -- mobile app devices (migration 0008) --------------------------------------------------------

APP_PLATFORMS = ("android", "ios", "web")

#: USER-9 / APP-2: an app (phone, tablet, desktop web app) that logged in as a viewer. It is bound
#: to the session its login opened: deleting the session (logout, removal from the portal, a
#: purge) deletes the device with it, so a listed device always names a token that exists, and
#: removing the device revokes that token in the same statement. Last seen is the session's.
app_devices = Table(
    "app_devices",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column(
        "account_id",
        String(ID),
        ForeignKey("accounts.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column(
        "token_hash",
        String(64),
        ForeignKey("sessions.token_hash", ondelete="CASCADE"),
        nullable=False,
        unique=True,
    ),
    Column("name", String(64), nullable=False),
    Column("platform", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    CheckConstraint("platform IN ('android', 'ios', 'web')", name="platform"),
)
