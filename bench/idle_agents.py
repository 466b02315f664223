"""The cost of idle connected agents on one relay: the real relay process's RSS and CPU% over a
window of idle heartbeats, with 0 agents (baseline, same run) and with N agents.

Run it:  .venv/bin/python -m bench.idle_agents [--agents 1000] [--seconds 60] [--heartbeat 10]

The agents are the real ``agent.tunnel.client.TunnelClient`` (real QUIC, the real control
machine, each with its own enrolled Ed25519 identity) run as tasks in this one process; the
devices are enrolled straight into the relay's store to skip 1 000 argon2 logins. Each qh3
client holds 2 file descriptors, so the open-files limit is raised first.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.settings import AgentSettings
from agent.store import Identity
from agent.tunnel.client import TunnelClient
from relay.store import open_store
from shared import models, quic
from shared.tunnel.identity import public_key_raw
from tests.peers import stack

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mib(pid: int) -> float:
    """Resident set size in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def sample(pid: int, seconds: float) -> tuple[float, float]:
    """(RSS MiB at the end, CPU % of one core over the window)."""
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(seconds)
    return rss_mib(pid), 100 * (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)


async def enroll_many(relay: stack.Relay, count: int) -> list[tuple[str, Ed25519PrivateKey]]:
    """Devices written straight into the relay's SQLite store, one key each."""
    store = await open_store(f"sqlite+aiosqlite:///{relay.data_dir / 'relay.db'}")
    try:
        account = await store.get_account_by_email(stack_email())
        assert account is not None
        out = []
        for i in range(count):
            key = Ed25519PrivateKey.generate()
            await store.create_grant(f"bench-{i}", account.id, store.now() + timedelta(hours=1))
            device = await store.enroll_device(
                f"bench-{i}", name=f"site-{i:04d}", public_key=public_key_raw(key).hex(),
                agent_version="bench",
            )  # fmt: skip
            assert device is not None
            out.append((device.id, key))
        return out
    finally:
        await store.close()


def stack_email() -> str:
    return "bench@example.com"


def make_agent(
    relay: stack.Relay, device_id: str, key: Ed25519PrivateKey, hb: float
) -> TunnelClient:
    """A real tunnel client with no cameras."""

    async def no_requests(stream: quic.TunnelStream) -> None:
        stream.reset(quic.RESET_INTERNAL)

    return TunnelClient(
        AgentSettings(heartbeat_interval_s=hb, data_dir=relay.data_dir / "unused"),
        Identity(device_id, relay.url, relay.ca),
        key,
        handle_request=no_requests,
        inventory=lambda: models.Inventory(cameras=[]),
    )


async def run(agents: int, seconds: float, heartbeat: float) -> None:
    """Baseline window, connect the agents, measured window."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * agents + 256)), hard))
    with tempfile.TemporaryDirectory(prefix="rmon-bench-idle-") as tmp:
        relay = stack.start_relay(Path(tmp) / "relay")
        try:
            made = stack.create_account(relay, stack_email(), "Bench", "Idle-agents1!")
            assert made.returncode == 0, made.stdout + made.stderr
            identities = await enroll_many(relay, agents)
            pid = relay.proc.popen.pid
            await asyncio.sleep(2)
            base_rss, base_cpu = await sample(pid, seconds)
            print(f"relay, 0 agents:      RSS {base_rss:7.1f} MiB  CPU {base_cpu:5.2f} % of a core")
            clients = [make_agent(relay, d, k, heartbeat) for d, k in identities]
            tasks = []
            started = time.monotonic()
            for i, client in enumerate(clients):
                tasks.append(asyncio.create_task(client.run_forever()))
                if i % 50 == 49:  # connect in waves, as agents of a fleet would not all at once
                    await asyncio.gather(*(c.connected.wait() for c in clients[: i + 1]))
            await asyncio.wait_for(asyncio.gather(*(c.connected.wait() for c in clients)), 600)
            print(
                f"{agents} agents connected in {time.monotonic() - started:.1f} s", file=sys.stderr
            )
            await asyncio.sleep(heartbeat)  # let the connect burst settle
            rss, cpu = await sample(pid, seconds)
            up = sum(c.status.connected for c in clients)
            print(f"relay, {up} agents:  RSS {rss:7.1f} MiB  CPU {cpu:5.2f} % of a core")
            print(
                f"per idle agent: {1024 * (rss - base_rss) / max(up, 1):.1f} KiB, "
                f"{(cpu - base_cpu) / max(up, 1) * 1000:.2f} % of a core per 1 000 "
                f"(heartbeat {heartbeat} s, window {seconds} s)"
            )
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            relay.proc.stop()


def main() -> None:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--heartbeat", type=float, default=10.0)
    args = parser.parse_args()
    print(
        f"# .venv/bin/python -m bench.idle_agents --agents {args.agents} "
        f"--seconds {args.seconds:g} --heartbeat {args.heartbeat:g}"
    )
    asyncio.run(run(args.agents, args.seconds, args.heartbeat))


if __name__ == "__main__":
    main()
