"""The agent's transport choice (agent/tunnel/transport.py) on a fake clock: probe, fallback,
re-probe, return, and no flapping when the UDP path comes and goes."""

from __future__ import annotations

from agent.tunnel.transport import Mode, Transport, TransportPolicy
from shared.testing import FakeClock

BASE, CAP = 120.0, 960.0


def _policy() -> TransportPolicy:
    return TransportPolicy(reprobe_interval_s=BASE, max_holddown_s=CAP)


def _fall_back(policy: TransportPolicy, clock: FakeClock) -> None:
    """One connection attempt with UDP blocked: QUIC fails, TCP authenticates."""
    assert policy.attempt_order()[0] is Transport.QUIC
    clock.advance(5)  # the probe timeout
    policy.connect_failed(Transport.QUIC, clock())
    policy.authenticated(Transport.TCP, clock())


def test_quic_first_then_tcp_and_fallback_only_once_tcp_authenticates() -> None:
    """A fresh agent tries QUIC, then TCP; fallback mode needs TCP to have worked."""
    clock, policy = FakeClock(), _policy()
    assert policy.attempt_order() == [Transport.QUIC, Transport.TCP]
    policy.connect_failed(Transport.QUIC, clock())
    policy.connect_failed(Transport.TCP, clock())
    assert policy.mode is Mode.QUIC  # both failed: the relay is down, not UDP blocked
    assert policy.attempt_order() == [Transport.QUIC, Transport.TCP]

    _fall_back(policy, clock)
    assert policy.mode is Mode.FALLBACK
    assert policy.attempt_order() == [Transport.TCP]  # reconnects stay on TCP meanwhile


def test_without_the_fallback_setting_only_quic_is_tried() -> None:
    policy = TransportPolicy(reprobe_interval_s=BASE, max_holddown_s=CAP, fallback_enabled=False)
    assert policy.attempt_order() == [Transport.QUIC]


def test_reprobe_is_due_every_interval_while_on_tcp_and_a_success_moves_back() -> None:
    """Failed probes keep the interval; a completed handshake moves to QUIC."""
    clock, policy = FakeClock(), _policy()
    _fall_back(policy, clock)
    assert not policy.probe_due(clock())
    assert policy.seconds_to_probe(clock()) == BASE
    for _ in range(3):
        clock.advance(BASE)
        assert policy.probe_due(clock())
        policy.probe_failed(clock())
        assert not policy.probe_due(clock())
        assert policy.mode is Mode.FALLBACK
    clock.advance(BASE)
    assert policy.probe_due(clock())
    policy.probe_succeeded(clock())
    policy.authenticated(Transport.QUIC, clock())
    assert policy.mode is Mode.QUIC
    assert policy.attempt_order()[0] is Transport.QUIC
    assert not policy.probe_due(clock.advance(10 * BASE))  # no probing while on QUIC


def test_a_path_that_keeps_relapsing_is_probed_ever_less_often() -> None:
    """No flapping: each relapse within one hold-down doubles it, up to the cap."""
    clock, policy = FakeClock(), _policy()
    _fall_back(policy, clock)
    moves = []
    for _ in range(8):
        clock.advance(policy.seconds_to_probe(clock()))
        policy.probe_succeeded(clock())  # the handshake gets through ...
        policy.authenticated(Transport.QUIC, clock())
        clock.advance(20)  # ... and UDP dies again 20 s later
        policy.quic_session_ended(clock())
        _fall_back(policy, clock)
        moves.append(policy.holddown_s)
    assert moves == [240, 480, 960, 960, 960, 960, 960, 960]


def test_a_move_that_fails_before_auth_counts_as_a_relapse() -> None:
    """Handshake ok, then the session dies before authenticating: back to TCP, hold-down x2."""
    clock, policy = FakeClock(), _policy()
    _fall_back(policy, clock)
    clock.advance(BASE)
    policy.probe_succeeded(clock())
    clock.advance(5)
    policy.connect_failed(Transport.QUIC, clock())  # what the client reports for a pre-auth end
    _fall_back(policy, clock)
    assert policy.holddown_s == 2 * BASE


def test_quic_that_held_resets_the_hold_down() -> None:
    """After a long healthy QUIC spell, a new outage starts again from the base interval."""
    clock, policy = FakeClock(), _policy()
    _fall_back(policy, clock)
    for _ in range(2):  # two quick relapses: 480 s
        clock.advance(policy.seconds_to_probe(clock()))
        policy.probe_succeeded(clock())
        policy.authenticated(Transport.QUIC, clock())
        clock.advance(1)
        policy.quic_session_ended(clock())
        _fall_back(policy, clock)
    assert policy.holddown_s == 4 * BASE
    clock.advance(policy.seconds_to_probe(clock()))
    policy.probe_succeeded(clock())
    policy.authenticated(Transport.QUIC, clock())
    clock.advance(3600)  # QUIC held for an hour
    policy.quic_session_ended(clock())
    _fall_back(policy, clock)
    assert policy.holddown_s == BASE
    assert policy.seconds_to_probe(clock()) == BASE


def test_a_relay_restart_while_on_quic_does_not_strand_the_agent_on_tcp() -> None:
    """QUIC and TCP both refused while the relay restarts; QUIC is still first afterwards."""
    clock, policy = FakeClock(), _policy()
    policy.authenticated(Transport.QUIC, clock())
    clock.advance(600)
    policy.quic_session_ended(clock())
    for _ in range(5):
        policy.connect_failed(Transport.QUIC, clock.advance(5))
        policy.connect_failed(Transport.TCP, clock())
    policy.authenticated(Transport.QUIC, clock.advance(1))
    assert policy.mode is Mode.QUIC
    assert not policy.quic_failed
