"""Which transport the tunnel uses: QUIC when it works, TLS/TCP when UDP is blocked (sans-I/O).

Pure on purpose (time comes in as ``now``) so the choice is tested with a fake clock. The rules:

* **QUIC first.** A new connection tries QUIC with a short probe timeout, then TLS/TCP.
* **Fallback is a finding, not a guess.** Only when a TLS/TCP session *authenticates* after QUIC
  failed does the policy decide UDP is blocked and stay on TCP (mode ``FALLBACK``). If TCP fails
  too, the relay is simply down and the next attempt starts with QUIC again, so a relay restart
  never strands an agent on the fallback.
* **Re-probe while on TCP.** Every ``holddown`` seconds a QUIC handshake is tried beside the
  running TCP session; the agent moves only after that handshake completed, and the move counts
  only once the QUIC session authenticates.
* **No flapping.** If QUIC fails again within one hold-down of having come back (a path that
  lets a handshake through and then drops), the hold-down doubles, up to ``max_holddown_s``;
  a QUIC session that held longer than the hold-down resets it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, StrEnum


class Transport(StrEnum):
    """The tunnel's carriers, by the name shown in status and logs."""

    QUIC = "quic"
    TCP = "tcp"


class Mode(Enum):
    """What the policy believes about the path to the relay."""

    QUIC = "quic"  # UDP works (or has not been shown not to)
    FALLBACK = "fallback"  # QUIC failed while TCP worked: UDP looks blocked


@dataclass
class TransportPolicy:
    """Decides the transport order of each connection attempt and when to re-probe QUIC."""

    reprobe_interval_s: float
    max_holddown_s: float
    fallback_enabled: bool = True
    mode: Mode = Mode.QUIC
    #: Current wait between QUIC re-probes while on the fallback (seconds).
    holddown_s: float = 0.0
    #: When the next re-probe is due (fallback mode only).
    next_probe_at: float = 0.0
    #: When QUIC last authenticated (or a probe handshake succeeded), for the flap rule.
    quic_since: float | None = None
    #: Whether the last QUIC attempt failed (so an authenticated TCP session means fallback).
    quic_failed: bool = False

    def __post_init__(self) -> None:
        self.holddown_s = self.holddown_s or self.reprobe_interval_s

    def attempt_order(self) -> list[Transport]:
        """Transports to try, in order, for the next connection attempt."""
        if self.mode is Mode.FALLBACK:
            return [Transport.TCP]
        return [Transport.QUIC, Transport.TCP] if self.fallback_enabled else [Transport.QUIC]

    def connect_failed(self, transport: Transport, now: float) -> None:
        """A connection attempt over ``transport`` failed before authenticating."""
        if transport is Transport.QUIC:
            self.quic_failed = True

    def authenticated(self, transport: Transport, now: float) -> None:
        """A session over ``transport`` authenticated."""
        if transport is Transport.QUIC:
            self.mode, self.quic_failed = Mode.QUIC, False
            self.quic_since = now if self.quic_since is None else self.quic_since
            return
        if self.quic_failed or self.mode is Mode.FALLBACK:
            self._enter_fallback(now)

    def quic_session_ended(self, now: float) -> None:
        """An authenticated QUIC session ended; a long one proves the path and resets hold-down."""
        if self.quic_since is not None and now - self.quic_since >= self.holddown_s:
            self.holddown_s = self.reprobe_interval_s

    def probe_due(self, now: float) -> bool:
        """Whether a QUIC re-probe should start now (only while on the fallback)."""
        return self.mode is Mode.FALLBACK and now >= self.next_probe_at

    def seconds_to_probe(self, now: float) -> float:
        """How long until the next re-probe (for the caller's timer)."""
        return max(0.0, self.next_probe_at - now)

    def probe_failed(self, now: float) -> None:
        """A re-probe's QUIC handshake failed: stay on TCP, try again after the hold-down."""
        self.next_probe_at = now + self.holddown_s

    def probe_succeeded(self, now: float) -> None:
        """A re-probe's QUIC handshake completed: move to QUIC (auth must still succeed)."""
        self.mode, self.quic_failed, self.quic_since = Mode.QUIC, False, now

    def _enter_fallback(self, now: float) -> None:
        """TCP works where QUIC did not: stay on TCP, and back off if QUIC just relapsed."""
        if self.quic_since is not None and now - self.quic_since < self.holddown_s:
            self.holddown_s = min(self.holddown_s * 2, self.max_holddown_s)
        elif self.quic_since is not None:
            self.holddown_s = self.reprobe_interval_s
        self.mode, self.quic_since = Mode.FALLBACK, None
        self.next_probe_at = now + self.holddown_s
