"""10 000 commands through random cuts and restarts: none runs twice, none is silently lost.

A randomized model test with a fixed seed (issue 3, acceptance): the real sans-I/O control
machines, the real relay store and command plane, the real agent journal and runner; only the
transport is in memory so 10 000 commands take seconds. Steps, drawn at random: submit a burst of
commands, deliver frames, let blocked commands finish, let time pass (deadlines, the expiry
sweep), cut the link losing what was in flight, reconnect, restart the relay from its database,
restart the agent from its store (killing the commands it was running).

``runs`` counts executions outside both processes — it is the world the commands act on, so it
survives every restart — and proves at-most-once; the final states prove nothing was lost.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path
from typing import Any

from agent.commands import CommandFailed
from relay.store.commands import TERMINAL
from shared import models
from tests.relay.plane_kit import PlaneHarness

SEED = 20250103
TOTAL = 10_000
#: Weights of the random steps.
STEPS = {
    "submit": 30,
    "deliver": 30,
    "release": 10,
    "time": 10,
    "cut": 5,
    "reconnect": 8,
    "restart_relay": 3,
    "restart_agent": 3,
}


class World:
    """What the commands act on: counts every execution, can hold executions open."""

    def __init__(self) -> None:
        self.runs: Counter[str] = Counter()
        self.gate = asyncio.Event()

    async def work(self, cmd: models.Command) -> dict[str, Any]:
        """The command kind under test: side effect first, then maybe wait, maybe fail."""
        self.runs[cmd.id] += 1
        if cmd.args.get("block"):
            await self.gate.wait()
        if cmd.args.get("fail"):
            raise CommandFailed("asked to fail")
        return {"ran": True}

    def release(self) -> None:
        """Let every blocked execution finish; later ones block on a fresh gate."""
        self.gate.set()
        self.gate = asyncio.Event()


async def _step(name: str, h: PlaneHarness, world: World, rng: random.Random) -> list[str]:
    """Run one step; returns the ids of commands it submitted."""
    match name:
        case "submit" if h.relay is not None:
            return [
                await h.submit(
                    "work",
                    seconds=rng.uniform(5, 60),
                    block=rng.random() < 0.3,
                    fail=rng.random() < 0.05,
                )
                for _ in range(rng.randint(1, 25))
            ]
        case "deliver":
            await h.deliver()
        case "release":
            world.release()
            await asyncio.sleep(0)
        case "time" if h.relay is not None:
            h.time.advance(rng.uniform(0, 10))
            await h.relay.sweep()
        case "cut":
            h.cut()
        case "reconnect" if not h.up and h.relay is not None and h.agent is not None:
            await h.connect()
        case "restart_relay":
            await h.stop_relay()
            await h.start_relay()
        case "restart_agent":
            await h.stop_agent()
            h.start_agent()
    return []


async def _settle(h: PlaneHarness, world: World) -> None:
    """Bring everything home: link up, every execution finished and reported, stragglers
    expired by the sweep once past every deadline."""
    if not h.up:
        await h.connect()
    for _ in range(5):
        await h.deliver()
        world.release()
        assert h.runner is not None
        await h.runner.drain()
        await h.deliver()
    h.time.advance(120)  # past every deadline (at most 60 s)
    assert h.relay is not None
    await h.relay.sweep()
    await h.deliver()


# spec: DEV-2
# spec: DEV-4
async def test_ten_thousand_commands_through_cuts_and_restarts(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    world = World()
    h = PlaneHarness(tmp_path, {"work": world.work})
    await h.start_relay()
    h.start_agent()
    await h.connect()
    wanted: dict[str, dict[str, Any]] = {}
    names, weights = list(STEPS), list(STEPS.values())
    while len(wanted) < TOTAL:
        for command_id in await _step(rng.choices(names, weights)[0], h, world, rng):
            wanted[command_id] = {}
    await _settle(h, world)

    assert h.commands is not None
    rows = {cid: await h.commands.get(cid) for cid in wanted}
    states = Counter(row.state for row in rows.values() if row is not None)
    assert max(world.runs.values()) == 1, "a command ran twice"
    assert sum(states.values()) == len(wanted)
    assert set(states) <= set(TERMINAL), f"not every command ended: {states}"
    for cid, row in rows.items():
        assert row is not None
        ran = world.runs[cid]
        if row.state in ("done", "failed", "unknown_outcome"):
            assert ran == 1, f"{row.state} but ran {ran} times"
        else:
            assert ran == 0, "an expired command ran"
        assert (row.state == "failed") <= bool(row.args.get("fail")), "failed without reason"
    # The run exercised every ending, or the faults were too gentle to prove anything.
    assert {"done", "failed", "expired", "unknown_outcome"} <= set(states), states
    await h.stop_agent()
    await h.stop_relay()
