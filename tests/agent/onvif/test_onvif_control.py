"""ControlSession (PTZ, presets, home, imaging, network) against real ipycam cameras.

ipycam offers PTZ (ContinuousMove, Stop, RelativeMove, GotoHomePosition, presets) but no Imaging
service: focus and imaging must come back as absent capabilities and OnvifUnsupported, not as
crashes. Positions are read back with GetStatus, which is what the camera reports.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from agent.onvif.control import ControlSession
from agent.onvif.errors import OnvifAuthError, OnvifUnreachable, OnvifUnsupported
from agent.onvif.models import PtzPosition
from tests.agent.onvif.onvif_site import PASSWORD, USER, CameraSite

pytestmark = pytest.mark.netns

NEAR = 0.02


@pytest.fixture
async def session(camera_site: CameraSite) -> AsyncIterator[ControlSession]:
    """A control session on the open camera, starting from home."""
    sess = ControlSession(camera_site.open.xaddr, "", "", timeout=5)
    await sess.goto_home()
    yield sess
    await sess.stop()
    await sess.goto_home()
    await sess.close()


async def _wait_position(
    sess: ControlSession, cond: str, check: object, timeout: float = 5.0
) -> PtzPosition:
    """Poll GetStatus until ``check(position)`` holds."""
    assert callable(check)
    deadline = time.monotonic() + timeout
    while True:
        pos = await sess.status()
        if check(pos):
            return pos
        assert time.monotonic() < deadline, f"position never {cond}: {pos}"
        await asyncio.sleep(0.02)


def _close(a: PtzPosition, b: PtzPosition) -> bool:
    return abs(a.pan - b.pan) < NEAR and abs(a.tilt - b.tilt) < NEAR and abs(a.zoom - b.zoom) < NEAR


# spec: LIVE-5, CAM-3
async def test_capabilities_of_ipycam(session: ControlSession) -> None:
    """PTZ with home, relative move and 10 presets; no Imaging service means no focus/fields."""
    caps = await session.capabilities()
    assert (caps.ptz, caps.home, caps.relative_move) == (True, True, True)
    assert caps.max_presets == 10
    assert not caps.focus
    assert caps.imaging_fields == ()
    assert caps.names() == ["ptz", "relative_move", "home", "presets"]


# spec: LIVE-5
async def test_continuous_move_then_stop_holds_position(session: ControlSession) -> None:
    """ContinuousMove pans right until Stop; after Stop the position no longer changes."""
    await session.continuous_move(0.5, 0.0, 0.0)
    await _wait_position(session, "panned right", lambda p: p.pan > 0.1)
    await session.stop()
    stopped = await session.status()
    window = time.monotonic() + 0.3  # observe a still camera over a few of its 60 Hz ticks
    while time.monotonic() < window:
        assert _close(await session.status(), stopped)
        await asyncio.sleep(0.05)
    assert stopped.tilt == pytest.approx(0.0, abs=NEAR)


# spec: LIVE-5
async def test_relative_move_and_home(session: ControlSession) -> None:
    """RelativeMove translates by the given amounts; GotoHomePosition returns to 0,0,0."""
    await session.relative_move(0.2, -0.1, 0.3)
    moved = await session.status()
    assert _close(moved, PtzPosition(0.2, -0.1, 0.3))
    await session.goto_home()
    assert _close(await session.status(), PtzPosition(0.0, 0.0, 0.0))


# spec: LIVE-5
async def test_preset_register_overwrite_and_goto(session: ControlSession) -> None:
    """SetPreset stores the position; SetPreset with its token overwrites it; GotoPreset returns."""
    await session.relative_move(0.3, 0.2, 0.0)
    token = await session.set_preset("Gate")
    assert (token, "Gate") in [(p.token, p.name) for p in await session.presets()]
    await session.relative_move(-0.5, 0.0, 0.0)
    again = await session.set_preset("Gate west", token)
    assert again == token
    listed = [(p.token, p.name) for p in await session.presets()]
    assert listed.count((token, "Gate west")) == 1
    assert (token, "Gate") not in listed
    await session.goto_home()
    await session.goto_preset(token)
    assert _close(await session.status(), PtzPosition(-0.2, 0.2, 0.0))


# spec: CAM-3
async def test_imaging_and_focus_unsupported_on_ipycam(session: ControlSession) -> None:
    """No Imaging service: imaging and focus raise OnvifUnsupported, PTZ keeps working."""
    with pytest.raises(OnvifUnsupported):
        await session.imaging()
    with pytest.raises(OnvifUnsupported):
        await session.set_imaging({"brightness": 50.0})
    with pytest.raises(OnvifUnsupported):
        await session.focus("far")
    await session.relative_move(0.1, 0.0, 0.0)
    assert (await session.status()).pan == pytest.approx(0.1, abs=NEAR)


# spec: DEV-1
async def test_network_falls_back_to_the_xaddr_host(
    session: ControlSession, camera_site: CameraSite
) -> None:
    """ipycam refuses GetNetworkInterfaces: the address comes from the XAddr, MAC unknown."""
    net = await session.network()
    assert net.address == camera_site.ns_ip
    assert net.mac is None


async def test_wrong_password_is_an_auth_error(camera_site: CameraSite) -> None:
    """Credentials refused by the camera surface as OnvifAuthError, never a zeep fault."""
    sess = ControlSession(camera_site.auth.xaddr, USER, "Wrong-" + PASSWORD, timeout=5)
    try:
        with pytest.raises(OnvifAuthError) as err:
            await sess.continuous_move(0.1, 0.0, 0.0)
        assert PASSWORD not in str(err.value)
    finally:
        await sess.close()
    good = ControlSession(camera_site.auth.xaddr, USER, PASSWORD, timeout=5)
    try:
        await good.relative_move(0.0, 0.0, 0.0)
        assert (await good.capabilities()).ptz
    finally:
        await good.close()


async def test_silent_camera_is_unreachable_within_the_timeout(camera_site: CameraSite) -> None:
    """An address nobody answers on gives OnvifUnreachable after the timeout, not a hang."""
    xaddr = f"http://{camera_site.silent_ip}:8080/onvif/device_service"
    sess = ControlSession(xaddr, "", "", timeout=1.0)
    started = time.monotonic()
    with pytest.raises(OnvifUnreachable):
        await sess.stop()
    assert time.monotonic() - started < 3
    await sess.close()
