"""packaging/examples/*.toml say they list every setting with its default: keep that true.

Each field of the settings class must appear as a key (or a commented-out key), and the file
must load through the settings class itself, so a renamed field or a wrong type is caught here
rather than by an installer whose relay refuses to start.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from agent.settings import AgentSettings
from relay.settings import RelaySettings

EXAMPLES = Path(__file__).resolve().parents[1] / "packaging" / "examples"


@pytest.mark.parametrize(
    ("name", "settings"), [("relay.toml", RelaySettings), ("agent.toml", AgentSettings)]
)
def test_example_lists_every_setting_and_loads(name: str, settings: type[BaseSettings]) -> None:
    text = (EXAMPLES / name).read_text()
    missing = [
        field
        for field in settings.model_fields
        if field != "cameras" and not re.search(rf"^(# )?{field} =", text, re.MULTILINE)
    ]
    assert not missing, f"{name} lacks {missing}"
    values = tomllib.loads(text)
    loaded = settings.model_validate(values)
    for field in set(values) - {"cameras", "data_dir"}:  # data_dir: the packaged path
        default = settings.model_fields[field].get_default(call_default_factory=True)
        assert getattr(loaded, field) == default, f"{name}: {field} is not the default"
