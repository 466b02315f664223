"""Relay settings: the one place the relay reads its environment (prefix ``RMON_RELAY_``).

Values come, in rising priority, from defaults, an optional TOML file (``RMON_RELAY_CONFIG`` or
``DATA_DIR/relay.toml``), the environment and finally the command line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, get_args

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

PasswordClass = Literal["upper", "lower", "digit", "symbol"]


def _default_data_dir() -> Path:
    return Path(os.environ.get("RMON_RELAY_DATA_DIR", "/var/lib/rmon-relay"))


def _config_file() -> Path:
    explicit = os.environ.get("RMON_RELAY_CONFIG")
    return Path(explicit) if explicit else _default_data_dir() / "relay.toml"


class RelaySettings(BaseSettings):
    """Everything an operator can set on a relay, each with its unit."""

    model_config = SettingsConfigDict(env_prefix="RMON_RELAY_", extra="forbid")

    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Directory for the SQLite store, TLS material and logs (path).",
    )
    listen_host: str = Field(
        default="127.0.0.1",
        description="Address for HTTPS (TCP) and QUIC (UDP); both use the same port (IP or name).",
    )
    listen_port: int = Field(
        default=8443,
        ge=0,
        le=65535,
        description="Port for HTTPS and QUIC; 0 picks a free one, printed at start (port number).",
    )
    public_hosts: list[str] = Field(
        default_factory=lambda: ["localhost", "127.0.0.1"],
        description="Host names and IPs put into the generated server certificate (names).",
    )
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL of the store; empty = SQLite file DATA_DIR/relay.db (URL).",
    )
    quic_core: Literal["qh3", "aioquic"] = Field(
        default="qh3", description="QUIC implementation for the agent tunnel (library name)."
    )
    session_idle_timeout_s: int = Field(
        default=3600, gt=0, description="Viewer session expires after this idle time (seconds)."
    )
    session_absolute_timeout_s: int = Field(
        default=86400, gt=0, description="Viewer session expires this long after login (seconds)."
    )
    enrollment_grant_ttl_s: int = Field(
        default=300, gt=0, description="Lifetime of a single-use enrollment grant (seconds)."
    )
    login_max_failures: int = Field(
        default=5,
        gt=0,
        description="Failed logins for one e-mail address before it is locked (count, USER-3).",
    )
    login_lockout_base_s: int = Field(
        default=60,
        gt=0,
        description="First lock after login_max_failures; doubles per further failure (seconds).",
    )
    login_lockout_max_s: int = Field(
        default=900,
        gt=0,
        le=900,
        description="Longest login lock; the manual says up to 15 minutes (seconds, at most 900).",
    )
    password_hash_time_cost: int = Field(
        default=3, ge=1, description="argon2id passes over memory when hashing passwords (count)."
    )
    password_hash_memory_kib: int = Field(
        default=65536,
        ge=64,
        description="argon2id memory per password hash (KiB; 65536 = 64 MiB, RFC 9106 profile).",
    )
    heartbeat_interval_s: float = Field(
        default=10.0,
        gt=0,
        le=15,
        description="Heartbeat period the relay asks agents to keep (seconds, at most 15).",
    )
    agent_dead_after_s: float = Field(
        default=30.0,
        gt=0,
        description="An agent silent this long is taken as gone and marked offline (seconds).",
    )
    goaway_retry_after_s: float = Field(
        default=5.0,
        ge=0,
        le=300,
        description="On a graceful stop agents are told to come back within this window; each "
        "picks a uniform random point in it so their handshakes do not all land at once "
        "(seconds).",
    )
    tunnel_tcp_fallback: bool = Field(
        default=True,
        description="Accept agent tunnels over TLS/TCP (a WebSocket at /api/v1/tunnel on the "
        "HTTPS port) for sites whose UDP is blocked (on/off).",
    )
    ws_coalesce_bytes: int = Field(
        default=64 * 1024,
        gt=0,
        description="Largest WebSocket message the live forwarder builds from tunnel data (bytes).",
    )
    live_viewer_queue_bytes: int = Field(
        default=4 * 1024 * 1024,
        gt=0,
        description="Media a slow live viewer may have queued at the relay before its frames are "
        "skipped to the next keyframe; also the largest GOP kept for joiners (bytes).",
    )
    live_linger_s: float = Field(
        default=2.0,
        ge=0,
        description="How long a camera's tunnel stream stays open after its last live viewer "
        "left, so a page reload re-uses it (seconds).",
    )
    live_reopen_s: float = Field(
        default=10.0,
        ge=0,
        description="How long the relay keeps re-opening a camera's live stream on the agent's "
        "new session after its tunnel moved or reconnected, viewers' sockets held open (seconds).",
    )
    cookie_secure: bool = Field(
        default=True, description="Mark the session cookie Secure and use the __Host- prefix."
    )
    command_default_deadline_s: float = Field(
        default=300.0,
        gt=0,
        description="A command not started on the site within this time after it was issued "
        "ends as expired, unless the request gives its own deadline (seconds).",
    )
    command_max_deadline_s: float = Field(
        default=86400.0, gt=0, description="Longest deadline a request may ask for (seconds)."
    )
    command_unknown_after_s: float = Field(
        default=86400.0,
        gt=0,
        description="A command delivered to a site that reports no outcome this long after its "
        "deadline ends as unknown_outcome (seconds).",
    )
    command_sweep_interval_s: float = Field(
        default=2.0,
        gt=0,
        description="How often commands are expired and commands created on other relays are "
        "sent to the agents connected here (seconds).",
    )
    event_retention_days: float = Field(
        default=31.0,
        gt=0,
        description="Device events older than this are deleted (EVT-2: one month) (days).",
    )
    command_retention_days: float = Field(
        default=31.0,
        gt=0,
        description="Finished commands (and the logs they fetched) older than this are deleted "
        "(days).",
    )
    retention_sweep_interval_s: float = Field(
        default=3600.0, gt=0, description="How often the retention sweep runs (seconds)."
    )
    log_fetch_timeout_s: float = Field(
        default=15.0,
        gt=0,
        description="How long GET /devices/{id}/logs waits for a fresh log_fetch before it "
        "answers with the latest logs fetched earlier (seconds).",
    )

    # -- accounts and mail (issue 5) ----------------------------------------------------------
    smtp_url: str = Field(
        default="",
        description="Outgoing mail server: smtp://user:pass@host:port (plain, port 25), "
        "smtps://… (implicit TLS, port 465) or smtp+starttls://… (port 587); empty = mail is "
        "not sent and links are only logged without their secrets (URL).",
    )
    mail_from: str = Field(
        default="rmon <noreply@localhost>", description="From: address of the relay's mail."
    )
    public_url: str = Field(
        default="",
        description="Base URL of the portal as users reach it, for links in mail; empty = "
        "https://<first public host>:<listen port> (URL).",
    )
    smtp_timeout_s: float = Field(
        default=20.0, gt=0, description="Timeout of one SMTP conversation (seconds)."
    )
    signup_link_ttl_s: int = Field(
        default=86400, gt=0, description="Sign-up and e-mail change links stay valid (seconds)."
    )
    reset_code_ttl_s: int = Field(
        default=1800, gt=0, description="A password-reset verification code stays valid (seconds)."
    )
    reset_code_max_attempts: int = Field(
        default=5, gt=0, description="Wrong codes before a reset code is void (count, USER-4)."
    )
    password_min_length: int = Field(
        default=8, ge=4, description="Shortest password (characters, USER-2)."
    )
    password_max_length: int = Field(
        default=32, ge=8, le=256, description="Longest password (characters, USER-2)."
    )
    password_required_classes: list[PasswordClass] = Field(
        default_factory=lambda: list(get_args(PasswordClass)),
        description="Character classes a password must contain (USER-2).",
    )
    password_symbols: str = Field(
        default="@$!%*?&/",
        min_length=1,
        description="The symbols that satisfy the 'symbol' class (characters, USER-2).",
    )
    password_blocklist_file: Path | None = Field(
        default=None,
        description="Extra common passwords, one a line, refused beside the built-in list (path).",
    )
    max_shared_users: int = Field(
        default=200, gt=0, le=10000, description="Shared users per subscriber (count, USER-6)."
    )
    max_users_per_camera: int = Field(
        default=10, gt=0, description="Shared users one camera can be shared with (count, CAM-2)."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Command line beats environment beats the TOML file."""
        toml = TomlConfigSettingsSource(settings_cls, toml_file=_config_file())
        return (init_settings, env_settings, toml)

    @property
    def db_url(self) -> str:
        """The store URL with the SQLite default filled in."""
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'relay.db'}"

    @property
    def tls_dir(self) -> Path:
        """Where the CA, server certificate and key live."""
        return self.data_dir / "tls"
