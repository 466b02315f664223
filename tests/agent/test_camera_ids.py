"""Camera ids stay put: a camera that refused our credentials keeps its id once they are fixed
(and across agent restarts), against the FAKE ONVIF camera with WS-UsernameToken checks."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from agent.app import describe_camera
from agent.camera_ids import IDS_FILE, CameraIds, derived_id
from agent.onvif.models import CameraDescription
from tests.peers.fake_onvif_camera import FakeOnvifCamera

USER, PASSWORD = "admin", "Ids-test-pass-3"
ENDPOINT = "urn:uuid:5f5a69c2-e0ae-504f-829b-00c0ffee0001"


# spec: DEV-10, DEV-1
async def test_id_survives_restart_and_fixed_credentials(tmp_path: Path) -> None:
    cam = FakeOnvifCamera(username=USER, password=PASSWORD)
    await cam.start()
    try:
        refused = await describe_camera(cam.xaddr, USER, "wrong", timeout=5)
        assert refused is not None
        assert refused.serial_number == ""  # it would not tell: the id cannot use it
        first = CameraIds(tmp_path).assign(refused, ENDPOINT)
        assert CameraIds(tmp_path).assign(refused, ENDPOINT) == first  # agent restarted
        fixed = await describe_camera(cam.xaddr, USER, PASSWORD, timeout=5)
        assert fixed is not None
        assert fixed.serial_number
        ids = CameraIds(tmp_path)
        assert ids.assign(fixed, ENDPOINT) == first  # merged, not a second camera
    finally:
        await cam.stop()
    assert derived_id(fixed) != first  # what the old formula would have done
    assert f"HIKVISION|{fixed.serial_number}" in (tmp_path / IDS_FILE).read_text()
    # Readdressed by DHCP, with a new endpoint reference: the serial still finds it.
    moved = replace(fixed, xaddr="http://198.51.100.7/onvif/device_service")
    assert CameraIds(tmp_path).assign(moved, "urn:uuid:other") == first


def test_a_swapped_camera_at_the_same_address_is_another_camera(tmp_path: Path) -> None:
    xaddr = "http://198.51.100.8/onvif/device_service"
    old = CameraDescription(xaddr, "Acme", "A1", "1", "SN-1", "", None, ())
    new = replace(old, serial_number="SN-2")
    ids = CameraIds(tmp_path)
    assert ids.assign(old) != ids.assign(new)
    assert ids.assign(old) == derived_id(old)  # existing installations keep their ids


def test_unreadable_file_starts_afresh(tmp_path: Path) -> None:
    (tmp_path / IDS_FILE).write_text("{not json")
    desc = CameraDescription("http://198.51.100.9/onvif", "", "", "", "", "", None, ())
    assert CameraIds(tmp_path).assign(desc) == derived_id(desc)


# spec: USER-6
def test_privacy_guard_setting_reaches_the_inventory() -> None:
    """The installer marks a privacy-guard camera in the settings; the relay sees the capability
    it filters shared users by (relay.permissions.privacy_fits)."""
    from agent.app import Camera
    from agent.settings import AgentSettings, CameraOverride

    xaddr = "http://198.51.100.7/onvif/device_service"
    settings = AgentSettings(cameras=[CameraOverride(xaddr=xaddr, privacy_guard=True)])
    desc = CameraDescription(xaddr, "Acme", "A1", "1", "SN-7", "", None, ())
    assert not settings.override_for("http://198.51.100.8/onvif").privacy_guard
    guarded = settings.override_for(xaddr).privacy_guard
    cam = Camera("cam-7", desc, None, "", "", "", privacy_guard=guarded)
    assert "privacy_guard" in cam.inventory().capabilities
    plain = Camera("cam-8", desc, None, "", "", "")
    assert "privacy_guard" not in plain.inventory().capabilities
