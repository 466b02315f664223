"""The retention sweep (EVT-2: event history kept one month): the command plane's periodic
sweep deletes device events older than the retention and commands that finished before it,
never an open command, on the real store under a fake clock."""

from __future__ import annotations

from datetime import timedelta

from relay.auth import token_hash
from relay.store import Store
from relay.store.commands import CommandStore
from relay.tunnel.commands import CommandPlane, Retention
from shared import models
from tests.relay.conftest import FakeClock

DAY = 86400.0


async def _device(store: Store) -> str:
    owner = await store.create_account("ret@example.com", "Ret", "x", role="subscriber")
    await store.create_grant(token_hash("g"), owner.id, store.now() + timedelta(days=1))
    device = await store.enroll_device(
        token_hash("g"), name="site", public_key="00" * 32, agent_version="t"
    )
    assert device is not None
    return device.id


# spec: EVT-2
async def test_sweep_deletes_what_is_past_retention_and_nothing_open(
    store: Store, clock: FakeClock
) -> None:
    device = await _device(store)
    commands = CommandStore(store.engine, clock=store.clock)
    plane = CommandPlane(
        commands,
        lambda _: None,
        retention=Retention(events=timedelta(days=31), commands=timedelta(days=31), every_s=0),
    )
    start = clock.now.timestamp()
    old_events = [models.Event(seq=n, kind="camera_motion", at=start) for n in (1, 2)]
    await commands.store_events(device, old_events)
    deadline = clock.now + timedelta(days=400)
    finished = await commands.create(device, "alarm_reset", deadline=deadline, state="sent")
    still_open = await commands.create(device, "log_fetch", deadline=deadline, state="sent")
    await commands.record_results(
        device, [models.CommandResult(id=finished.id, outcome="done", finished_at=start)]
    )

    clock.advance(30 * DAY)  # inside the month: nothing goes
    await commands.store_events(
        device, [models.Event(seq=3, kind="camera_tamper", at=clock.now.timestamp())]
    )
    await plane.sweep()
    assert [e.seq for e in await commands.list_events(device)] == [1, 2, 3]
    assert await commands.get(finished.id) is not None

    clock.advance(2 * DAY)  # 32 days after the first events and the finished command
    await plane.sweep()
    assert [e.seq for e in await commands.list_events(device)] == [3]
    assert await commands.get(finished.id) is None
    kept = await commands.get(still_open.id)
    assert kept is not None
    assert kept.state == "sent"  # open commands are never pruned
