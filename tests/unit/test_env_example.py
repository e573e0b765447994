"""``.env.example`` names every setting, with its real default, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec

from todo_service.core.settings import Settings

EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"
ASSIGNMENT = re.compile(r"^#? ?([A-Z][A-Z0-9_]*)=(.*)$")


def example_values() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in EXAMPLE.read_text().splitlines():
        if match := ASSIGNMENT.match(line):
            assert match[1] not in values, f"{match[1]} appears twice"
            values[match[1]] = match[2]
    return values


def test_every_setting_is_in_the_example_and_nothing_else() -> None:
    fields = {name.upper() for name in Settings.__struct_fields__}
    assert set(example_values()) == fields


def test_the_example_values_are_the_defaults() -> None:
    """Uncommenting every line must change nothing: each value is the setting's default."""
    settings = Settings.from_env(example_values(), env_file=None)
    defaults = Settings()
    for field in msgspec.structs.fields(Settings):
        assert getattr(settings, field.name) == getattr(defaults, field.name), field.name.upper()
