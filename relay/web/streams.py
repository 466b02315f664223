"""Open viewer streams per (account, camera), so that revoking access ends them at once.

Authorisation is checked against the store when a live stream opens; a stream that is already
running would otherwise outlive a revoked share or a deleted user. Every live WebSocket
registers here and waits on its :class:`asyncio.Event` beside the media; the share, delete and
permission paths call :meth:`StreamRegistry.revoke`, which sets the events of the streams that
lost access, and the handler closes the socket (issue 5: within 2 s; here it is immediate).

This registry is in-process: it reaches the streams of THIS relay only. With several relays
behind one store a revocation made on relay A must reach streams on relay B: that needs the
store (a ``revocations`` row each relay polls, as the command plane's sweep does) or a
notification channel (PostgreSQL ``LISTEN/NOTIFY``). Until then each handler also re-checks
its access against the store every ``RECHECK_S`` seconds, which bounds the delay on other
relays without any cross-relay machinery.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

#: How often an open stream re-reads its authorisation from the store (seconds).
RECHECK_S = 1.0


class StreamRegistry:
    """(account id, camera id) → the revocation events of that viewer's open streams."""

    def __init__(self) -> None:
        self._open: dict[tuple[str, str], set[asyncio.Event]] = {}

    @contextmanager
    def watch(self, account_id: str, camera_id: str) -> Iterator[asyncio.Event]:
        """Register one open stream for as long as the ``with`` block runs."""
        key = (account_id, camera_id)
        event = asyncio.Event()
        self._open.setdefault(key, set()).add(event)
        try:
            yield event
        finally:
            streams = self._open.get(key, set())
            streams.discard(event)
            if not streams:
                self._open.pop(key, None)

    def revoke(self, account_id: str, camera_ids: Iterable[str] | None = None) -> int:
        """End the account's streams of these cameras (all cameras when None); how many."""
        wanted = None if camera_ids is None else set(camera_ids)
        ended = 0
        for (account, camera), events in list(self._open.items()):
            if account == account_id and (wanted is None or camera in wanted):
                for event in events:
                    event.set()
                    ended += 1
        return ended

    def revoke_accounts(self, account_ids: Iterable[str]) -> int:
        """End every stream of these accounts (a subscriber deactivated, groups changed)."""
        return sum(self.revoke(account_id) for account_id in set(account_ids))

    def count(self, account_id: str, camera_id: str) -> int:
        """Open streams of one viewer on one camera (for tests and metrics)."""
        return len(self._open.get((account_id, camera_id), ()))
