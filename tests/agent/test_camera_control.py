"""Preset numbering and area-zoom geometry of ``agent.camera_control`` (pure, no camera)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.camera_control import PresetSlots, area_zoom_translation
from agent.onvif.models import Preset
from shared import models


# spec: LIVE-5
def test_camera_presets_take_the_lowest_free_slots_and_keep_them(tmp_path: Path) -> None:
    """Numbers follow the camera's order once, then stay put when others vanish or appear."""
    slots = PresetSlots(tmp_path / "p.json")
    listed = slots.reconcile("cam", [Preset("home", "Home"), Preset("a", "A"), Preset("b", "B")])
    assert [(p["slot"], p["token"]) for p in listed] == [(1, "home"), (2, "a"), (3, "b")]
    listed = slots.reconcile("cam", [Preset("home", "Home"), Preset("b", "B"), Preset("c", "C")])
    assert [(p["slot"], p["token"]) for p in listed] == [(1, "home"), (2, "c"), (3, "b")]
    reloaded = PresetSlots(tmp_path / "p.json")
    assert reloaded.token("cam", 3) == "b"


# spec: LIVE-5
def test_rename_is_kept_by_the_agent_and_replaced_tokens_stay_hidden(tmp_path: Path) -> None:
    """A rename shows over the camera's name; a token replaced by re-registering never returns."""
    slots = PresetSlots(tmp_path / "p.json")
    slots.reconcile("cam", [Preset("home", "Home"), Preset("a", "A")])
    slots.rename("cam", 2, "Front door")
    slots.assign("cam", 1, "new-home", "Home 2")
    listed = slots.reconcile(
        "cam", [Preset("home", "Home"), Preset("a", "A"), Preset("new-home", "Home 2")]
    )
    assert [(p["slot"], p["token"], p["name"]) for p in listed] == [
        (1, "new-home", "Home 2"),
        (2, "a", "Front door"),
    ]


def test_at_most_ten_slots(tmp_path: Path) -> None:
    """A camera with more presets shows only ten (LIVE-5: up to 10)."""
    slots = PresetSlots(tmp_path / "p.json")
    listed = slots.reconcile("cam", [Preset(f"t{i}", f"P{i}") for i in range(15)])
    assert [p["slot"] for p in listed] == list(range(1, 11))


def test_unreadable_file_starts_empty(tmp_path: Path) -> None:
    """A damaged map is rebuilt from the camera instead of failing every request."""
    (tmp_path / "p.json").write_text("{not json")
    assert PresetSlots(tmp_path / "p.json").reconcile("cam", [Preset("x", "X")])[0]["slot"] == 1


# spec: LIVE-5
@pytest.mark.parametrize(
    ("action", "rect", "expected"),
    [
        ("area_zoom", (0.5, 0.5, 0.0, 0.0), (0.0, 0.0, 1.0)),  # a point in the middle: zoom in
        ("area_zoom", (0.0, 0.0, 1.0, 1.0), (0.0, 0.0, 0.0)),  # the whole image: nothing to do
        ("area_zoom", (0.5, 0.0, 0.5, 0.5), (0.25, 0.25, 0.5)),  # top-right quarter
        ("centre", (0.75, 1.0, 0.0, 0.0), (0.25, -0.5, 0.0)),  # click lower right: no zoom
    ],
)
def test_area_zoom_translation(
    action: str, rect: tuple[float, float, float, float], expected: tuple[float, float, float]
) -> None:
    """Centre offset becomes pan/tilt (up is positive), a smaller rectangle zooms further."""
    x, y, w, h = rect
    args = models.PtzArgs.model_validate({"action": action, "x": x, "y": y, "w": w, "h": h})
    assert area_zoom_translation(args) == pytest.approx(expected)


def test_ptz_args_bounds() -> None:
    """Speeds outside -1..1 and fractions outside 0..1 never reach the camera."""
    with pytest.raises(ValidationError):
        models.PtzArgs(action="move", pan=1.5)
    with pytest.raises(ValidationError):
        models.PtzArgs(action="area_zoom", x=-0.1)
    with pytest.raises(ValidationError):
        models.PresetArgs(op="set", slot=11)
