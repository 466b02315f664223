"""The agent's active alarm and error state (DEV-4): what "alarm reset" and "error recovery" clear.

An *alarm* is a condition a camera or the agent signalled that someone should look at (motion in
a guarded zone, tampering, a disk full); an *error* is a fault the agent is in (a recorder write
failure, a camera it cannot reach). Both stay active until cleared: by the condition's owner, or
by a viewer's reset/recovery command. Held in memory: a restarted agent starts clean, which is
what a manual restart of a recorder does too.

``observe`` is fed every event the agent raises, so the state follows the event stream: a
camera event that turns *on* (or a stateless pulse) latches an alarm — turning off does not
clear it, as a recorder's alarm stays until reset, so a short motion burst is not missed; a
camera failure is an error until the camera recovers or a viewer runs error recovery.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent.camera_health import FAILURE_KIND, RECOVERY_KIND
from agent.onvif.event_parsers import CAMERA_SITE_ALARM

log = logging.getLogger(__name__)

#: Agent event kinds that are errors of their camera, and the kinds that end them.
ERROR_KINDS = {FAILURE_KIND: RECOVERY_KIND}


@dataclass(frozen=True)
class Condition:
    """One active alarm or error."""

    source: str  # a camera local_id, or "agent"
    code: str
    message: str
    since: float


class AlarmState:
    """Active alarms and errors, keyed by (source, code) so a repeated signal is one condition."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.alarms: dict[tuple[str, str], Condition] = {}
        self.errors: dict[tuple[str, str], Condition] = {}

    def raise_alarm(self, source: str, code: str, message: str = "") -> None:
        """Mark an alarm active (kept from its first signal)."""
        self.alarms.setdefault((source, code), Condition(source, code, message, self._clock()))

    def raise_error(self, source: str, code: str, message: str = "") -> None:
        """Mark an error active."""
        self.errors.setdefault((source, code), Condition(source, code, message, self._clock()))

    def observe(self, kind: str, camera: str, payload: dict[str, Any]) -> None:
        """Update the state from one raised event (see the module docstring)."""
        source = camera or "agent"
        if payload.get("class") == CAMERA_SITE_ALARM and _turns_on(payload):
            self.raise_alarm(source, kind, str(payload.get("topic", "")))
        elif kind in ERROR_KINDS:
            self.raise_error(source, kind, str(payload.get("reason", "")))
        for error, ended_by in ERROR_KINDS.items():
            if kind == ended_by and self.errors.pop((source, error), None):
                log.info("error %s of %s ended by %s", error, source, kind)

    def reset_alarms(self, source: str | None = None) -> int:
        """Clear active alarms (of one source, or all); returns how many were cleared."""
        return _clear(self.alarms, source, "alarm")

    def recover_errors(self, source: str | None = None) -> int:
        """Clear active errors (of one source, or all); returns how many were cleared."""
        return _clear(self.errors, source, "error")


def _turns_on(payload: dict[str, Any]) -> bool:
    """A camera event that starts something: a state going true, or a stateless pulse (a line
    crossing) — but not the state snapshot a fresh subscription opens with ("Initialized")."""
    state = payload.get("state")
    return state is True or (state is None and payload.get("operation") != "Initialized")


def _clear(table: dict[tuple[str, str], Condition], source: str | None, what: str) -> int:
    """Remove matching conditions and log each (operation log)."""
    keys = [k for k in table if source is None or k[0] == source]
    for key in keys:
        cond = table.pop(key)
        log.info("%s %s of %s cleared", what, cond.code, cond.source)
    return len(keys)
