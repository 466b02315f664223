"""Coverage-guided fuzzing (atheris/libFuzzer) of the frame decoder and both control machines.

Not part of the test suite: run it by hand for as long as you like, e.g.

    .venv/bin/python tests/fuzz/fuzz_control.py -max_len=8192 -runs=1000000
    .venv/bin/python tests/fuzz/fuzz_control.py -max_total_time=600 corpus_dir/

The first input byte picks a machine and state (agent/relay, fresh/handshaking/open), the rest is
fed as control-stream bytes cut into pieces. The decoder may raise only FrameError; the machines
may raise nothing (garbage becomes a PeerError and an ERROR frame for the peer). Hypothesis runs
the same properties in the suite (tests/shared/test_fuzz.py); this explores by coverage.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from shared.testing import ControlPair
    from shared.tunnel.control import PeerError, _ControlBase
    from shared.tunnel.errors import FrameError
    from shared.tunnel.frames import FrameDecoder
    from shared.tunnel.identity import NONCE_SIZE, public_key_raw

KEY = Ed25519PrivateKey.generate()


def _machine(choice: int) -> tuple[ControlPair, _ControlBase]:
    """One of six machine/state combinations."""
    pair = ControlPair.create()
    side, state = divmod(choice % 6, 3)
    if state == 1:  # handshaking
        pair.agent.start(pair.clock.now())
        pair.pump()
        if side == 0:
            pair.relay.challenge(public_key_raw(KEY), bytes(NONCE_SIZE))
    elif state == 2:  # open
        pair.handshake(KEY)
    machine: _ControlBase = pair.relay if side == 0 else pair.agent
    machine.data_to_send()
    return pair, machine


def test_one_input(data: bytes) -> None:
    """One libFuzzer input: decoder then control machine."""
    if not data:
        return
    fdp = atheris.FuzzedDataProvider(data)
    choice, cut = fdp.ConsumeIntInRange(0, 255), fdp.ConsumeIntInRange(1, 512)
    body = fdp.ConsumeBytes(fdp.remaining_bytes())
    pieces = [body[i : i + cut] for i in range(0, len(body), cut)]
    decoder = FrameDecoder()
    try:
        for piece in pieces:
            decoder.feed(piece)
    except FrameError:
        pass
    pair, machine = _machine(choice)
    for piece in pieces:
        events = machine.receive_data(piece, pair.clock.now())
        events += machine.handle_timer(pair.clock.advance(0.5))
        if any(isinstance(e, PeerError) and not e.sent_by_peer for e in events):
            assert machine.closed


def main() -> None:
    """Hand argv to libFuzzer."""
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
