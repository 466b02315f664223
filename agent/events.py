"""The agent's event spool sender: ``raise_event`` spools, the sender drains in order.

Stop-and-wait by batch: one EVENTS frame (up to ``models.MAX_BATCH`` events) is in flight at a
time; the relay's cumulative EVENTS_ACK deletes it from the spool and releases the next batch.
After a reconnect the first unacknowledged event is sent again — the relay's (device, seq)
uniqueness makes that replay harmless. One batch per round trip keeps the relay's write per
frame one short transaction; a 1000-event backlog is four round trips.
"""

from __future__ import annotations

import logging
from typing import Any

from agent.commands import Queue
from agent.store.spool import EventSpool

log = logging.getLogger(__name__)


class AgentEvents:
    """``raise_event`` for the rest of the agent; spooling and replay underneath."""

    def __init__(self, spool: EventSpool) -> None:
        self.spool = spool
        self._queue: Queue | None = None
        #: Highest seq sent in the batch now awaiting its ack (0: none in flight).
        self._in_flight = 0

    def raise_event(
        self, kind: str, camera: str = "", payload: dict[str, Any] | None = None
    ) -> int:
        """Spool an event durably and send it when the tunnel allows; returns its seq."""
        seq = self.spool.append(kind, camera, payload or {})
        self._pump()
        return seq

    def opened(self, queue: Queue) -> None:
        """A session is open: replay from the oldest unacknowledged event."""
        self._queue, self._in_flight = queue, 0
        self._pump()

    def closed(self) -> None:
        """The session ended: whatever was in flight will be sent again."""
        self._queue, self._in_flight = None, 0

    def on_ack(self, up_to: int) -> None:
        """The relay stored every event up to ``up_to``."""
        self.spool.ack(up_to)
        if up_to >= self._in_flight:
            self._in_flight = 0
            self._pump()

    def _pump(self) -> None:
        """Send the next batch if none is in flight."""
        if self._queue is None or self._in_flight:
            return
        batch = self.spool.batch()
        if batch and self._queue(lambda control: control.send_events(batch)):
            self._in_flight = batch[-1].seq
