"""Each command kind on the agent, through the real runner, journal and store (DEV-2, DEV-4,
DEV-8): what it does, what it answers, and that a duplicate is answered from the journal.

Frames go through a real ``AgentControl`` opened by a ``ControlPair`` handshake; the test reads
what the agent put on the wire, as the relay would.
"""

from __future__ import annotations

import json
import logging
import random
import shlex
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.alarms import AlarmState
from agent.commands import CameraAccess, CommandKit, CommandRunner, build_handlers
from agent.logs import DeviceLogHandler, Redactor, fetch_payload
from agent.onvif.client import system_reboot
from agent.store import AgentStore
from agent.store.journal import CommandJournal
from agent.store.logbook import LogBook
from relay.web.commands import _decode_entries
from shared import models
from shared.testing import ControlPair
from shared.tunnel import control as ctl
from shared.tunnel.frames import FrameType

CAMERA = "cam-0001"


@dataclass
class Site:
    """An agent's command side over an open in-memory session."""

    runner: CommandRunner
    kit: CommandKit
    pair: ControlPair
    journal: CommandJournal
    ran_file: Path

    def queue(self, write: Any) -> bool:
        write(self.pair.agent)
        return True

    async def run(self, kind: str, target: str = "", **args: Any) -> models.CommandResult:
        """Send one command, wait for it, return the result the agent put on the wire."""
        cmd = command(kind, target, **args)
        self.runner.on_commands((cmd,))
        await self.runner.drain()
        return self.result_of(cmd.id)

    def result_of(self, command_id: str) -> models.CommandResult:
        """The last result for ``command_id`` the agent sent."""
        self.pair.pump()
        found = [
            r
            for f in self.pair.agent_sent
            if f.type is FrameType.COMMAND_RESULTS
            for r in models.CommandResults.model_validate_json(f.payload).results
            if r.id == command_id
        ]
        assert found, f"no result for {command_id}"
        return found[-1]

    def ran(self) -> list[str]:
        """Command ids the restart hook saw (one line per run)."""
        return self.ran_file.read_text().split() if self.ran_file.exists() else []


def command(kind: str, target: str = "", deadline_in: float = 60.0, **args: Any) -> models.Command:
    """A command as the relay sends it."""
    command.counter += 1  # type: ignore[attr-defined]
    return models.Command(
        id=f"cmd-{command.counter}",  # type: ignore[attr-defined]
        kind=kind,
        target=target,
        args=args,
        deadline=time.time() + deadline_in,
    )


command.counter = 0  # type: ignore[attr-defined]


def hook_writing_to(path: Path) -> str:
    """A restart hook that proves it ran: appends the command id to ``path``."""
    script = f'echo "$RMON_COMMAND_ID" >> {shlex.quote(str(path))}'
    return f"sh -c {shlex.quote(script)}"


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    store = AgentStore(tmp_path / "agent")
    journal = CommandJournal(store.db)
    ran = tmp_path / "ran.txt"
    kit = CommandKit(
        restart_command=hook_writing_to(ran),
        cameras=lambda local_id: (
            CameraAccess("http://127.0.0.1:9/onvif/device_service", "admin", "pw")
            if local_id == CAMERA
            else None
        ),
        alarms=AlarmState(time.time),
        logbook=LogBook(store.data_dir / "agent.db"),
        reboot=system_reboot,
        onvif_timeout_s=3.0,
    )
    runner = CommandRunner(journal, build_handlers(kit))
    pair = ControlPair.create("device-1")
    assert pair.handshake(Ed25519PrivateKey.generate()).authenticated
    s = Site(runner, kit, pair, journal, ran)
    runner.opened(s.queue)
    yield s
    await runner.close()
    kit.logbook.close()


# spec: DEV-2
async def test_restart_of_the_agent_runs_the_service_hook_once(site: Site) -> None:
    result = await site.run("restart")
    assert result.outcome == "done"
    assert site.ran() == [result.id]

    # The relay re-sends it after a reconnect: answered from the journal, not run again.
    again = site.journal.get(result.id)
    assert again is not None
    site.runner.on_commands((again.command(),))
    await site.runner.drain()
    assert site.ran() == [result.id]
    assert site.result_of(result.id).outcome == "done"


# spec: DEV-2
async def test_a_failing_or_missing_restart_hook_is_a_failed_command(site: Site) -> None:
    site.kit.restart_command = f"{shlex.quote(sys.executable)} -c 'import sys; sys.exit(3)'"
    failed = await site.run("restart")
    assert failed.outcome == "failed"
    assert "exited with 3" in failed.error

    site.kit.restart_command = "/nonexistent/rmon-restart-hook"
    missing = await site.run("restart")
    assert missing.outcome == "failed"
    assert "could not start" in missing.error


# spec: DEV-2
async def test_an_agent_killed_by_its_own_restart_reports_done_others_unknown(
    tmp_path: Path,
) -> None:
    """A row left running means the process died mid-command: a self-restart succeeded, any
    other command's outcome is unknown — and neither is run again."""
    store = AgentStore(tmp_path / "agent")
    journal = CommandJournal(store.db)
    restart, reboot = command("restart"), command("restart", CAMERA)
    journal.admit([restart, reboot], time.time())  # journalled, then the process died

    runs: list[str] = []

    async def count(cmd: models.Command) -> dict[str, Any]:
        runs.append(cmd.id)
        return {}

    runner = CommandRunner(CommandJournal(store.db), {"restart": count})
    ended = {e.id: e for e in runner.recover()}
    assert ended[restart.id].state == "done"
    assert ended[reboot.id].state == "unknown_outcome"
    runner.on_commands((restart, reboot))  # the relay re-sends both
    await runner.drain()
    assert runs == []


# spec: DEV-2
async def test_restart_of_an_unknown_or_unreachable_camera_fails(site: Site) -> None:
    unknown = await site.run("restart", "no-such-camera")
    assert unknown.outcome == "failed"
    assert "no such camera" in unknown.error
    # Port 9 on loopback refuses the connection: the reboot never left, so "failed", not
    # "unknown" (nothing can have happened).
    unreachable = await site.run("restart", CAMERA)
    assert unreachable.outcome == "failed"
    assert "reboot failed" in unreachable.error


# spec: DEV-4
async def test_alarm_reset_and_error_recovery_clear_the_active_state(site: Site) -> None:
    alarms = site.kit.alarms
    alarms.raise_alarm(CAMERA, "motion")
    alarms.raise_alarm("other", "tamper")
    alarms.raise_error("agent", "disk-full")

    one = await site.run("alarm_reset", CAMERA)
    assert (one.outcome, one.result) == ("done", {"cleared": 1})
    assert list(alarms.alarms) == [("other", "tamper")]
    rest = await site.run("alarm_reset")
    assert rest.result == {"cleared": 1}
    assert not alarms.alarms
    assert alarms.errors  # alarm reset leaves errors alone

    recovered = await site.run("error_recovery")
    assert (recovered.outcome, recovered.result) == ("done", {"cleared": 1})
    assert not alarms.errors


# spec: DEV-8
async def test_log_fetch_returns_the_newest_entries_with_the_local_offset(site: Site) -> None:
    handler = DeviceLogHandler(site.kit.logbook, Redactor(["hunter2"]))
    logger = logging.getLogger("agent.test.fetch")
    logger.addHandler(handler)
    try:
        logger.error("camera login failed with password hunter2")
        logger.warning("second")
    finally:
        logger.removeHandler(handler)

    result = await site.run("log_fetch", type="error")
    assert result.outcome == "done"
    entries = _decode_entries(result.result)
    assert [e["message"] for e in entries] == [
        "second",
        "camera login failed with password ***",
    ]
    assert all("utc_offset_s" in e for e in entries)
    assert "hunter2" not in json.dumps(result.result)

    bad = await site.run("log_fetch", type="secrets")
    assert bad.outcome == "failed"
    assert "unknown log type" in bad.error


async def test_unknown_kinds_fail_and_late_commands_expire_without_running(site: Site) -> None:
    unknown = await site.run("format_disk")
    assert unknown.outcome == "failed"
    assert "unsupported command kind" in unknown.error

    late = await site.run("restart", deadline_in=-1.0)
    assert late.outcome == "expired"
    assert site.ran() == []


async def test_the_agent_acknowledges_before_it_acts(site: Site) -> None:
    cmd = command("alarm_reset")
    site.runner.on_commands((cmd,))
    site.pair.pump()
    acks = [f for f in site.pair.agent_sent if f.type is FrameType.COMMAND_ACKS]
    assert models.CommandAcks.model_validate_json(acks[-1].payload).acks[0].id == cmd.id
    entry = site.journal.get(cmd.id)
    assert entry is not None
    assert entry.state == "running"  # journalled before the handler ran
    await site.runner.drain()
    site.pair.pump()
    assert isinstance(site.pair.relay_events[-1], ctl.CommandResultsReceived)


def test_fetch_payload_stays_inside_a_control_frame(tmp_path: Path) -> None:
    """1000 error entries of incompressible text still fit: the oldest are left out."""
    book = LogBook(tmp_path / "logs.db")
    rng = random.Random(7)
    for _ in range(1000):
        book.add("error", _entry(rng.randbytes(1000).hex()))
    payload = fetch_payload(book, "error")
    assert payload["truncated"]
    assert 0 < payload["count"] < 1000
    assert len(json.dumps(payload)) < 192 * 1024
    book.close()


def _entry(message: str) -> Any:
    from agent.store.logbook import LogEntry

    return LogEntry(at=time.time(), utc_offset_s=0, level="ERROR", logger="t", message=message)
