"""The README documents every command and every setting the code has."""

from __future__ import annotations

from pathlib import Path

import typer.main
from pydantic import BaseModel

from service.cli import app
from service.settings import Settings

README = Path(__file__).resolve().parents[1] / "README.md"


def environment_variables() -> list[str]:
    """Every GIVFLEET_ environment variable the settings read."""
    names = []
    for name, field in Settings.model_fields.items():
        group = field.annotation
        if isinstance(group, type) and issubclass(group, BaseModel):
            names += [f"GIVFLEET_{name.upper()}__{sub.upper()}" for sub in group.model_fields]
        else:
            names.append(f"GIVFLEET_{name.upper()}")
    return names


def test_every_command_has_a_row_in_the_commands_table() -> None:
    text = README.read_text()
    group = typer.main.get_group(app)
    missing = [name for name in group.commands if f"| `givfleet {name}" not in text]
    assert missing == []


def test_every_setting_has_a_row_in_the_configuration_table() -> None:
    text = README.read_text()
    missing = [name for name in environment_variables() if f"| `{name}` |" not in text]
    assert missing == []
