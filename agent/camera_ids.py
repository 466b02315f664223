"""Stable local ids for cameras, kept in the agent's data dir.

The relay knows a camera by the id the agent gives it (``local_id``): its name, shares, folders
and events hang on that id, so it must not change while the camera stays the same camera. The
id used to be a hash of serial number and XAddr. A camera refusing our credentials cannot tell
its serial number, so it got the hash of its XAddr alone — and a different id, a second camera
on the relay, once the installer fixed the password.

Here the first id a camera gets is kept: each record holds what identified the camera (serial
and manufacturer, WS-Discovery endpoint reference, XAddr) and later sightings are matched
against it in that order of trust — a serial survives an address change, an endpoint reference
survives a DHCP renumbering, the XAddr is what a camera that refuses us still has. A match
fills in what the record lacked (the serial once credentials work), so the record is merged,
not duplicated. New ids keep the old formula, so existing installations keep theirs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from agent.onvif.models import CameraDescription

log = logging.getLogger(__name__)

IDS_FILE = "camera_ids.json"


def derived_id(desc: CameraDescription) -> str:
    """The id a never-seen camera gets: from its serial number where it has one, and address."""
    basis = f"{desc.serial_number}|{desc.xaddr}"
    return hashlib.sha256(basis.encode()).hexdigest()[:16]


class CameraIds:
    """Camera id records on disk (``camera_ids.json``)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / IDS_FILE
        self._records: list[dict[str, Any]] = self._load()

    def _load(self) -> list[dict[str, Any]]:
        """The records, or none when missing or unreadable (ids are then derived afresh)."""
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as err:
            log.warning("camera ids unreadable, starting afresh: %s", err)
            return []
        return (
            [r for r in data if isinstance(r, dict) and r.get("id")]
            if isinstance(data, list)
            else []
        )

    def _save(self) -> None:
        """Atomically replace the file."""
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._records, indent=1, sort_keys=True))
        os.replace(tmp, self.path)

    def assign(self, desc: CameraDescription, endpoint: str = "") -> str:
        """The camera's id: its record's if one matches (merging what is new), else a new one."""
        record = self._match(desc, endpoint)
        if record is None:
            record = {"id": derived_id(desc)}
            self._records.append(record)
        record["xaddr"] = desc.xaddr
        if endpoint:
            record["endpoint"] = endpoint
        if serial := _serial(desc):
            record["serial"] = serial
        self._save()
        return str(record["id"])

    def _match(self, desc: CameraDescription, endpoint: str) -> dict[str, Any] | None:
        """The record of this camera: by serial number, endpoint reference, then XAddr.

        A record whose serial differs from a known serial is another camera even at the same
        address (a camera was swapped).
        """
        serial = _serial(desc)
        candidates = [r for r in self._records if not serial or r.get("serial") in (None, serial)]
        keys = [("serial", serial), ("endpoint", endpoint), ("xaddr", desc.xaddr)]
        for key, value in keys:
            for record in candidates:
                if value and record.get(key) == value:
                    return record
        return None


def _serial(desc: CameraDescription) -> str:
    """Manufacturer and serial number, or "" when the camera did not tell (serials are unique
    per manufacturer only)."""
    return f"{desc.manufacturer}|{desc.serial_number}" if desc.serial_number else ""
