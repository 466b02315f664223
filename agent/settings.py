"""Agent settings: the one place the agent reads its environment (prefix ``RMON_AGENT_``).

Values come, in rising priority, from defaults, an optional TOML file (``RMON_AGENT_CONFIG`` or
``DATA_DIR/agent.toml``), the environment and finally the command line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


def _default_data_dir() -> Path:
    return Path(os.environ.get("RMON_AGENT_DATA_DIR", "/var/lib/rmon-agent"))


def _config_file() -> Path:
    explicit = os.environ.get("RMON_AGENT_CONFIG")
    return Path(explicit) if explicit else _default_data_dir() / "agent.toml"


class CameraOverride(BaseModel):
    """Per-camera settings keyed by ONVIF address in the settings file."""

    model_config = {"extra": "forbid"}

    xaddr: str = Field(description="ONVIF device service URL of the camera (URL).")
    username: str | None = Field(default=None, description="ONVIF/RTSP user for this camera.")
    password: SecretStr | None = Field(default=None, description="ONVIF/RTSP password for it.")
    name: str | None = Field(default=None, description="Display name, at most 20 characters.")
    privacy_guard: bool = Field(
        default=False,
        description="The camera's picture has AI privacy guard applied (a recorder's privacy-"
        "guard channel): only shared users with the privacy-guard flag may be shared it (USER-6).",
    )


class AgentSettings(BaseSettings):
    """Everything an installer can set on an agent, each with its unit."""

    model_config = SettingsConfigDict(env_prefix="RMON_AGENT_", extra="forbid")

    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Directory for the agent store, device key and relay CA (path).",
    )
    camera_username: str = Field(
        default="", description="Default ONVIF/RTSP user for cameras without an override."
    )
    camera_password: SecretStr = Field(
        default=SecretStr(""), description="Default ONVIF/RTSP password for those cameras."
    )
    cameras: list[CameraOverride] = Field(
        default_factory=list,
        description="Cameras to use even when WS-Discovery cannot reach them, with overrides.",
    )
    discovery_interfaces: list[str] = Field(
        default_factory=list,
        description="IPv4 addresses of local interfaces to send WS-Discovery probes from "
        "(empty = the default route's interface).",
    )
    discovery_timeout_s: float = Field(
        default=3.0, gt=0, description="How long to collect WS-Discovery answers (seconds)."
    )
    discovery_interval_s: float = Field(
        default=60.0, gt=0, description="How often to look for new cameras (seconds)."
    )
    camera_check_interval_s: float = Field(
        default=30.0,
        gt=0,
        description="How often each camera's health is checked; two failed checks in a row "
        "(or a WS-Discovery Bye) raise a camera failure event (seconds).",
    )
    camera_events: bool = Field(
        default=True, description="Subscribe to each camera's ONVIF events (on/off)."
    )
    mdns_discovery: bool = Field(
        default=True,
        description="Also look for cameras advertised over mDNS (_onvif/_rtsp/_axis-video) "
        "(on/off).",
    )
    onvif_timeout_s: float = Field(
        default=10.0, gt=0, description="Timeout of one ONVIF request (seconds)."
    )
    heartbeat_interval_s: float = Field(
        # 5 s: a relay killed without a goodbye is noticed within 7.5 s, so an agent is back
        # within 10 s of a restarted relay listening (at 10 s it took 14 s, p95). The cost is
        # ~100 bytes per 5 s per site, and ~5 % of a relay core per 1000 idle agents.
        default=5.0,
        gt=0,
        le=15,
        description="Tunnel heartbeat period (seconds, at most 15).",
    )
    reconnect_max_backoff_s: float = Field(
        default=30.0, gt=0, description="Cap of the full-jitter reconnect backoff (seconds)."
    )
    quic_core: Literal["qh3", "aioquic"] = Field(
        default="qh3", description="QUIC implementation for the tunnel (library name)."
    )
    tunnel_fallback: bool = Field(
        default=True,
        description="Carry the tunnel over TLS/TCP on the relay's HTTPS port when QUIC cannot "
        "connect, e.g. UDP blocked (on/off).",
    )
    quic_probe_timeout_s: float = Field(
        default=5.0,
        gt=0,
        description="How long a QUIC attempt may take before the TLS/TCP fallback is tried; also "
        "the limit of each QUIC re-probe (seconds).",
    )
    quic_reprobe_interval_s: float = Field(
        default=120.0,
        gt=0,
        description="While on the TLS/TCP fallback, how often QUIC is tried again; doubled each "
        "time QUIC fails again soon after coming back (seconds).",
    )
    quic_reprobe_max_s: float = Field(
        default=1800.0,
        gt=0,
        description="Longest wait between QUIC re-probes after repeated relapses (seconds).",
    )
    live_queue_bytes: int = Field(
        default=4 * 1024 * 1024,
        gt=0,
        description="Media a slow viewer may have queued before frames are skipped to the "
        "next keyframe (bytes).",
    )
    restart_command: str = Field(
        default="systemctl restart rmon-agent",
        description="Command line the 'restart' command runs to restart the agent through its "
        "service manager (DEV-2); split like a shell would, run without a shell, with the "
        "command id in RMON_COMMAND_ID (command line).",
    )
    event_spool_max_age_s: float = Field(
        default=7 * 86400.0,
        gt=0,
        description="Events the relay has not stored are kept this long, then dropped oldest "
        "first with a spool_overflow event (seconds).",
    )
    event_spool_max_bytes: int = Field(
        default=100 * 1024 * 1024,
        gt=0,
        description="Most space the unsent events may take before the oldest are dropped (bytes).",
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

    def override_for(self, xaddr: str) -> CameraOverride:
        """The installer's settings for the camera at ``xaddr`` (all defaults if none)."""
        return next((c for c in self.cameras if c.xaddr == xaddr), CameraOverride(xaddr=xaddr))

    def credentials_for(self, xaddr: str) -> tuple[str, str]:
        """Return (username, password) for a camera: its override or the defaults."""
        cam = self.override_for(xaddr)
        user = cam.username if cam.username is not None else self.camera_username
        pw = cam.password if cam.password is not None else self.camera_password
        return user, pw.get_secret_value()
