"""The agent's local store (sqlite-utils): identity after enrollment, and later spools.

The device key lives in its own 0600 file beside the database so a copy of the database alone
(for support) never carries the key. The subscriber's password is never written anywhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


@dataclass(frozen=True)
class Identity:
    """What enrollment left behind: our device id and where our relay is."""

    device_id: str
    relay_url: str
    relay_ca: Path | None


class AgentStore:
    """Thin wrapper over the agent's SQLite file and key file in the data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.db = sqlite_utils.Database(data_dir / "agent.db")
        self.db.execute("PRAGMA journal_mode=WAL")

    @property
    def key_path(self) -> Path:
        """The Ed25519 device key (PEM, 0600)."""
        return self.data_dir / "device.key"

    @property
    def ca_path(self) -> Path:
        """The relay CA pinned at enrollment, when one was given."""
        return self.data_dir / "relay-ca.pem"

    def load_identity(self) -> Identity | None:
        """The enrolled identity, or None before ``register``."""
        if "meta" not in self.db.table_names():
            return None
        meta = {row["key"]: row["value"] for row in self.db.table("meta").rows}
        if "device_id" not in meta or not self.key_path.exists():
            return None
        ca = self.ca_path if self.ca_path.exists() else None
        return Identity(meta["device_id"], meta["relay_url"], ca)

    def save_identity(
        self, device_id: str, relay_url: str, key: Ed25519PrivateKey, ca_pem: bytes | None
    ) -> Identity:
        """Persist a successful enrollment: key first, then the record that points at it."""
        _write_private(self.key_path, key)
        if ca_pem is not None:
            self.ca_path.write_bytes(ca_pem)
        elif self.ca_path.exists():
            self.ca_path.unlink()
        rows = [{"key": "device_id", "value": device_id}, {"key": "relay_url", "value": relay_url}]
        self.db.table("meta").upsert_all(rows, pk="key")
        return Identity(device_id, relay_url, self.ca_path if ca_pem is not None else None)

    def load_key(self) -> Ed25519PrivateKey:
        """The device key made at enrollment."""
        key = serialization.load_pem_private_key(self.key_path.read_bytes(), None)
        if not isinstance(key, Ed25519PrivateKey):
            raise TypeError("device.key is not an Ed25519 key")
        return key

    def forget_identity(self) -> None:
        """Unregister locally: drop the key and the identity record."""
        if "meta" in self.db.table_names():
            self.db.table("meta").delete_where("key in ('device_id', 'relay_url')")
        for path in (self.key_path, self.ca_path):
            path.unlink(missing_ok=True)


def _write_private(path: Path, key: Ed25519PrivateKey) -> None:
    """Write the key readable by the agent's user only."""
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
