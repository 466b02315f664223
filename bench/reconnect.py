"""Reconnect time after a relay restart: SIGKILL the real relay process, start it again on the
same port, and time "relay listening again" → "agent authenticated" (as the relay's devices API
reports it), p50/p95 over N runs.

Run it:  .venv/bin/python -m bench.reconnect [--runs 20] [--profile default|fast|both]

Profiles: ``default`` is the agent's shipped settings (10 s heartbeat, so a killed relay is
noticed within 15 s); ``fast`` is the tests' 2 s heartbeat and 2 s backoff cap. The relay comes
back in ~1-2 s, so with defaults most of the wait is the agent noticing the old relay is gone
(a restarted QUIC server cannot tell the agent: it knows none of the old connection ids).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from tests.peers.restarts import RestartRig, percentile

PROFILES = {
    "default": {},
    "fast": {"RMON_AGENT_HEARTBEAT_INTERVAL_S": "2", "RMON_AGENT_RECONNECT_MAX_BACKOFF_S": "2"},
}
QUIET = {
    "RMON_AGENT_DISCOVERY_INTERVAL_S": "3600",
    "RMON_AGENT_DISCOVERY_INTERFACES": '["127.0.0.1"]',
}


def measure(profile: str, runs: int) -> list[float]:
    """Restart the relay ``runs`` times under one agent profile; seconds per return."""
    with tempfile.TemporaryDirectory(prefix="rmon-bench-reconnect-") as tmp:
        rig = RestartRig(Path(tmp), {**QUIET, **PROFILES[profile]})
        try:
            rig.start()
            for i in range(runs):
                took = rig.restart(timeout=90)
                print(f"  {profile} run {i + 1}/{runs}: {took:.2f} s", file=sys.stderr)
        finally:
            rig.stop()
        return rig.times


def main() -> None:
    """Measure and print one line per profile."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--profile", choices=[*PROFILES, "both"], default="both")
    args = parser.parse_args()
    profiles = list(PROFILES) if args.profile == "both" else [args.profile]
    print(f"# .venv/bin/python -m bench.reconnect --runs {args.runs} --profile {args.profile}")
    for profile in profiles:
        times = measure(profile, args.runs)
        print(
            f"{profile:8} runs {len(times):3}  p50 {statistics.median(times):6.2f} s  "
            f"p95 {percentile(times, 95):6.2f} s  max {max(times):6.2f} s"
        )


if __name__ == "__main__":
    main()
