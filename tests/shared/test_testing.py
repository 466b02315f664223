"""The test doubles themselves: the fake clock and the in-memory control pair."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.testing import ControlPair, FakeClock
from shared.tunnel.control import ControlEvent


def test_fake_clock_moves_only_forward() -> None:
    clock = FakeClock(5.0)
    assert clock.now() == clock() == 5.0
    assert clock.advance(2.5) == 7.5
    assert clock.now() == 7.5
    with pytest.raises(ValueError, match="back"):
        clock.advance(-1)


def _pieces_seen(chop_seed: int | None, key: Ed25519PrivateKey) -> list[int]:
    pair = ControlPair.create(chop_seed=chop_seed)
    sizes: list[int] = []
    feed = pair.relay.receive_data

    def spy(data: bytes, now: float) -> list[ControlEvent]:
        sizes.append(len(data))
        return feed(data, now)

    pair.relay.receive_data = spy  # type: ignore[method-assign]
    assert pair.handshake(key).authenticated
    return sizes


def test_chopping_splits_writes_reproducibly(device_key: Ed25519PrivateKey) -> None:
    whole = _pieces_seen(None, device_key)
    chopped = _pieces_seen(42, device_key)
    assert len(whole) == 2  # HELLO, AUTH
    assert len(chopped) > len(whole)
    assert sum(chopped) == sum(whole)
    assert _pieces_seen(42, device_key) == chopped


def test_advance_without_a_session_is_quiet() -> None:
    pair = ControlPair.create()
    assert pair.advance(5) == ([], [])
    assert pair.clock.now() == 1_005.0
