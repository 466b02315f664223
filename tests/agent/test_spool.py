"""The agent's event spool: numbers only rise (across restarts and deletions), and the bounds
drop the oldest events with a spool_overflow event instead of losing them silently."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.store import AgentStore
from agent.store.spool import MAX_EVENT_PAYLOAD, OVERFLOW_KIND, EventSpool, EventTooLarge
from shared.testing import FakeClock

WEEK = 7 * 86400.0


def _spool(path: Path, clock: FakeClock, **bounds: float) -> EventSpool:
    limits = {"max_age_s": WEEK, "max_bytes": 100 * 1024 * 1024, **bounds}
    return EventSpool(AgentStore(path).db, clock=clock, **limits)  # type: ignore[arg-type]


def test_sequence_numbers_never_repeat_after_ack_or_restart(tmp_path: Path) -> None:
    clock = FakeClock()
    spool = _spool(tmp_path, clock)
    first = [spool.append("motion", "cam", {"n": n}) for n in range(5)]
    assert first == sorted(first)
    assert spool.ack(first[-1]) == 5
    assert len(spool) == 0

    again = _spool(tmp_path, clock)  # the agent restarted with an empty spool
    seq = again.append("motion", "cam", {})
    assert seq > first[-1], "a reused number would be dropped by the relay as a duplicate"


def test_the_size_bound_drops_the_oldest_and_says_so(tmp_path: Path) -> None:
    spool = _spool(tmp_path, FakeClock(), max_bytes=20_000)
    seqs = [spool.append("motion", "cam", {"pad": "x" * 900, "n": n}) for n in range(40)]
    assert spool.bytes <= 20_000
    kept = spool.batch(limit=1000)
    overflow = [e for e in kept if e.kind == OVERFLOW_KIND]
    assert overflow, "dropping events must leave a trace"
    motions = [e.payload["n"] for e in kept if e.kind == "motion"]
    assert motions == list(range(40 - len(motions), 40)), "the newest are kept, oldest go first"
    dropped = sum(e.payload["dropped"] for e in overflow)
    assert dropped == 40 - len(motions)
    assert min(e.payload["first_seq"] for e in overflow) == seqs[0]


def test_the_age_bound_drops_week_old_events(tmp_path: Path) -> None:
    clock = FakeClock()
    spool = _spool(tmp_path, clock)
    spool.append("motion", "cam", {"n": 0})
    clock.advance(WEEK + 61)
    spool.append("motion", "cam", {"n": 1})
    kinds = [(e.kind, e.payload.get("n")) for e in spool.batch()]
    assert kinds == [("motion", 1), (OVERFLOW_KIND, None)]


def test_an_oversized_event_is_refused(tmp_path: Path) -> None:
    spool = _spool(tmp_path, FakeClock())
    with pytest.raises(EventTooLarge):
        spool.append("dump", "", {"blob": "x" * MAX_EVENT_PAYLOAD})
    assert len(spool) == 0
