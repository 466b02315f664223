"""Camera restart (DEV-2) against a real ONVIF camera (ipycam in a network namespace).

ipycam has no SystemReboot: it answers "Action not supported", which must come back as a failed
command with the camera's reason — proof that the request reached the camera over ONVIF and
that a refusal is not mistaken for an unknown outcome. A camera address nobody answers on is a
failure too: the request never left, so nothing can have happened.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from agent.alarms import AlarmState
from agent.commands import CameraAccess, CommandKit, CommandRunner, build_handlers
from agent.onvif.client import system_reboot
from agent.onvif.errors import OnvifUnsupported
from agent.store import AgentStore
from agent.store.journal import CommandJournal
from agent.store.logbook import LogBook
from shared import models
from tests.agent.onvif.onvif_site import PASSWORD, USER, CameraSite


# spec: DEV-2
async def test_system_reboot_reaches_the_camera_and_its_refusal_is_reported(
    camera_site: CameraSite,
) -> None:
    with pytest.raises(OnvifUnsupported) as refused:
        await system_reboot(camera_site.auth.xaddr, USER, PASSWORD, timeout=10)
    assert PASSWORD not in str(refused.value)


# spec: DEV-2
async def test_a_camera_restart_command_ends_failed_with_the_reason(
    camera_site: CameraSite, tmp_path: Path
) -> None:
    store = AgentStore(tmp_path / "agent")
    cams = {
        "cam": CameraAccess(camera_site.auth.xaddr, USER, PASSWORD),
        "gone": CameraAccess(f"http://{camera_site.silent_ip}/onvif/device_service", USER, "x"),
    }
    kit = CommandKit(
        restart_command="true",
        cameras=cams.get,
        alarms=AlarmState(time.time),
        logbook=LogBook(tmp_path / "logs.db"),
        reboot=system_reboot,
        onvif_timeout_s=2.0,
    )
    journal = CommandJournal(store.db)
    runner = CommandRunner(journal, build_handlers(kit))
    commands = [
        models.Command(id=f"reboot-{t}", kind="restart", target=t, deadline=time.time() + 60)
        for t in cams
    ]
    runner.on_commands(tuple(commands))
    await runner.drain()
    refused, silent = (journal.get(c.id) for c in commands)
    assert refused is not None
    assert silent is not None
    assert refused.state == "failed"
    assert "not supported" in refused.error.lower()
    assert PASSWORD not in refused.error
    assert silent.state == "failed"
    kit.logbook.close()
