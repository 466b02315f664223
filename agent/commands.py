"""The agent's half of the command plane: journal first, run at most once, report until stored.

For each COMMANDS frame the runner journals every id in one transaction *before* acting
(``agent.store.journal``), acknowledges them, and starts only the commands that transaction
inserted. Duplicates are answered from the journal (their result, or "in progress"). Results
are written to the journal, then sent; they are sent again on every reconnect until the relay
acknowledges them. If the process dies mid-command, the next start ends it as
``unknown_outcome`` — never re-run.

Kinds (DEV-2, DEV-4, DEV-8): ``restart`` (the agent through its service-manager hook, or a camera
through ONVIF SystemReboot), ``alarm_reset``, ``error_recovery``, ``log_fetch``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, get_args

from agent.alarms import AlarmState
from agent.logs import fetch_payload
from agent.onvif.errors import OnvifError, OnvifOutcomeUnknown
from agent.store.journal import CommandJournal, JournalEntry
from agent.store.logbook import LogBook, LogCategory
from shared import models
from shared.tunnel import control as ctl

log = logging.getLogger(__name__)

Handler = Callable[[models.Command], Awaitable[dict[str, Any]]]
#: How the runner puts frames on the control stream: False when no session is open.
Queue = Callable[[Callable[[ctl.AgentControl], None]], bool]
#: ``kind:target`` keys whose row left running by a dead process means success.
RESTARTS_ITSELF = frozenset({"restart:"})
#: Longest a command may run before it is given up as unknown (seconds): a hung hook or camera
#: must not hold its id "in progress" forever.
RUN_LIMIT_S = 120.0
#: Reported journal rows are kept this long for answering late duplicates (seconds).
JOURNAL_KEEP_S = 30 * 86400.0
#: Stderr of a failed restart hook kept in the error text (characters).
HOOK_OUTPUT_TAIL = 300


class CommandFailed(Exception):
    """A handler's refusal or failure, with a message for the viewer."""


class OutcomeUnknown(Exception):
    """The action may or may not have happened (a camera that dropped the connection while
    rebooting); reported as ``unknown_outcome``, never retried."""


class CommandRunner:
    """Runs journalled commands and reports their results."""

    def __init__(
        self,
        journal: CommandJournal,
        handlers: Mapping[str, Handler],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.journal = journal
        self.handlers = dict(handlers)
        self._clock = clock
        self._queue: Queue | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        #: Runs started by this process, per command id (the tests' at-most-once counter).
        self.started: dict[str, int] = {}

    def recover(self) -> list[JournalEntry]:
        """At start-up: end what a dead process left running, forget old reported rows."""
        now = self._clock()
        ended = self.journal.recover(now, completed_by_restart=RESTARTS_ITSELF)
        for entry in ended:
            log.warning(
                "command %s (%s) ended as %s at start-up", entry.id, entry.kind, entry.state
            )
        self.journal.prune(now - JOURNAL_KEEP_S)
        return ended

    def opened(self, queue: Queue) -> None:
        """A session is open: send every result the relay has not acknowledged."""
        self._queue = queue
        results = [entry.to_result() for entry in self.journal.unreported()]
        if results:
            queue(lambda c: c.send_results(results))

    def closed(self) -> None:
        """The session ended: results wait in the journal (running commands go on)."""
        self._queue = None

    def on_commands(self, commands: tuple[models.Command, ...]) -> None:
        """Journal, acknowledge, and start the commands seen for the first time."""
        acks: list[models.CommandAck] = []
        results: list[models.CommandResult] = []
        for admission in self.journal.admit(commands, self._clock()):
            entry = admission.entry
            if entry.terminal:
                results.append(entry.to_result())
            elif admission.new:
                acks.append(models.CommandAck(id=entry.id, state="acknowledged"))
                self._start(entry)
            else:
                acks.append(models.CommandAck(id=entry.id, state="in_progress"))
        self._send(acks, results)

    def on_results_acked(self, ids: tuple[str, ...]) -> None:
        """The relay stored these results."""
        self.journal.mark_reported(ids)

    def _start(self, entry: JournalEntry) -> None:
        """Run one newly journalled command in its own task."""
        self.started[entry.id] = self.started.get(entry.id, 0) + 1
        log.info("command %s: %s %s", entry.id, entry.kind, entry.target or "agent")
        task = asyncio.get_running_loop().create_task(self._run(entry))
        self._tasks[entry.id] = task
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        """A command task ended: drop it from the running set."""
        for command_id, running in list(self._tasks.items()):
            if running is task:
                del self._tasks[command_id]

    async def _run(self, entry: JournalEntry) -> None:
        """Execute, journal the outcome, report it. Cancellation (the process stopping) leaves
        the row running: the next start reports it as unknown."""
        outcome, result, error = await self._execute(entry)
        if outcome != "done":
            log.warning("command %s (%s) %s: %s", entry.id, entry.kind, outcome, error)
        ended = self.journal.finish(entry.id, outcome, self._clock(), result=result, error=error)
        if ended is not None:
            self._send([], [ended.to_result()])

    async def _execute(self, entry: JournalEntry) -> tuple[str, dict[str, Any], str]:
        """(outcome, result, error) of running the handler once."""
        handler = self.handlers.get(entry.kind)
        if handler is None:
            return "failed", {}, f"unsupported command kind: {entry.kind}"
        try:
            async with asyncio.timeout(RUN_LIMIT_S):
                return "done", await handler(entry.command()), ""
        except CommandFailed as err:
            return "failed", {}, str(err)
        except OutcomeUnknown as err:
            return "unknown_outcome", {}, str(err)
        except TimeoutError:
            return "unknown_outcome", {}, f"no outcome within {RUN_LIMIT_S:g} s"
        except Exception as err:
            log.exception("command %s (%s) crashed", entry.id, entry.kind)
            return "failed", {}, f"internal error: {type(err).__name__}"

    def _send(self, acks: list[models.CommandAck], results: list[models.CommandResult]) -> None:
        """Queue acks and results if a session is open (results are re-sent on reconnect)."""
        if self._queue is None or not (acks or results):
            return

        def write(control: ctl.AgentControl) -> None:
            if acks:
                control.ack_commands(acks)
            if results:
                control.send_results(results)

        self._queue(write)

    async def drain(self) -> None:
        """Wait for every running command to finish (tests, graceful stop)."""
        while self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def close(self) -> None:
        """Cancel running commands: like a process exit, their rows stay running."""
        for task in list(self._tasks.values()):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)


# --- the kinds -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CameraAccess:
    """What a camera command needs: its ONVIF address and credentials."""

    xaddr: str
    username: str
    password: str


Reboot = Callable[..., Awaitable[str]]


@dataclass
class CommandKit:
    """Everything the command kinds act on."""

    restart_command: str
    cameras: Callable[[str], CameraAccess | None]
    alarms: AlarmState
    logbook: LogBook
    reboot: Reboot
    onvif_timeout_s: float = 10.0


def build_handlers(kit: CommandKit) -> dict[str, Handler]:
    """The handler of every kind this agent supports."""

    async def restart(cmd: models.Command) -> dict[str, Any]:
        if cmd.target:
            return await _reboot_camera(kit, cmd.target)
        return await _run_restart_hook(kit.restart_command, cmd.id)

    async def alarm_reset(cmd: models.Command) -> dict[str, Any]:
        return {"cleared": kit.alarms.reset_alarms(cmd.target or None)}

    async def error_recovery(cmd: models.Command) -> dict[str, Any]:
        return {"cleared": kit.alarms.recover_errors(cmd.target or None)}

    async def log_fetch(cmd: models.Command) -> dict[str, Any]:
        category = cmd.args.get("type", "error")
        if category not in get_args(LogCategory):
            raise CommandFailed(f"unknown log type: {category!r}")
        return await asyncio.to_thread(fetch_payload, kit.logbook, category)

    return {
        "restart": restart,
        "alarm_reset": alarm_reset,
        "error_recovery": error_recovery,
        "log_fetch": log_fetch,
    }


async def _run_restart_hook(command: str, command_id: str) -> dict[str, Any]:
    """Run the service-manager hook (``systemctl restart rmon-agent`` by default).

    A hook that restarts us kills this process mid-call; the journal row left running then
    counts as done at the next start. The command id is in ``RMON_COMMAND_ID`` for the hook.
    """
    argv = shlex.split(command)
    if not argv:
        raise CommandFailed("no restart hook is configured")
    env = {**os.environ, "RMON_COMMAND_ID": command_id}
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
    except OSError as err:
        raise CommandFailed(f"restart hook could not start: {err.strerror}") from err
    _, stderr = await proc.communicate()
    if proc.returncode != 0:
        tail = stderr.decode(errors="replace").strip()[-HOOK_OUTPUT_TAIL:]
        raise CommandFailed(f"restart hook exited with {proc.returncode}: {tail}")
    return {"returncode": 0}


async def _reboot_camera(kit: CommandKit, local_id: str) -> dict[str, Any]:
    """ONVIF SystemReboot of one camera of this site."""
    cam = kit.cameras(local_id)
    if cam is None:
        raise CommandFailed("no such camera on this site")
    try:
        message = await kit.reboot(
            cam.xaddr, cam.username, cam.password, timeout=kit.onvif_timeout_s
        )
    except OnvifOutcomeUnknown as err:
        # Cameras often drop the connection as they go down, before answering.
        raise OutcomeUnknown(f"camera did not answer the reboot request: {err}") from err
    except OnvifError as err:
        raise CommandFailed(f"camera reboot failed: {err}") from err
    return {"message": message[:500]}
