"""What the tunnel client hands the command plane and the event spool: session up, session down,
and their frames."""

from __future__ import annotations

from agent.commands import CommandRunner, Queue
from agent.events import AgentEvents
from shared.tunnel import control as ctl


class AgentPlane:
    """The command runner and the event sender behind one interface for ``TunnelClient``."""

    def __init__(self, commands: CommandRunner, events: AgentEvents) -> None:
        self.commands = commands
        self.events = events

    def opened(self, queue: Queue) -> None:
        """An authenticated session can carry plane frames."""
        self.commands.opened(queue)
        self.events.opened(queue)

    def closed(self) -> None:
        """The session is gone."""
        self.commands.closed()
        self.events.closed()

    def handle(self, event: ctl.PlaneEvent) -> None:
        """One plane frame from the relay."""
        match event:
            case ctl.CommandsReceived(commands=commands):
                self.commands.on_commands(commands)
            case ctl.ResultsAcked(ids=ids):
                self.commands.on_results_acked(ids)
            case ctl.EventsAcked(up_to=up_to):
                self.events.on_ack(up_to)
            case _:
                pass  # relay-bound frames never reach an agent (the control machine refuses them)
